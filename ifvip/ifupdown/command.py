"""`ifup`/`ifdown` as commands: read, check, select, then print (`-n`) or apply.

ifvip is strict where ifupdown is not (DESIGN.md §4), at the scope of the failure: an
error that makes ifupdown refuse the file stops the command before anything is applied;
a stanza whose options are invalid (or that misses a required option) fails that
interface only, nothing of it applied and every problem said as `path:line:col: message`,
and the other interfaces come up, exit status 1 as ifupdown's. Otherwise the messages and
the exit status are ifupdown's (specs/ifupdown.md §11, §12).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import field
from pathlib import Path
from typing import IO, Final

from ifvip.hookenv import HOOK_PATH
from ifvip.ifupdown.invocation import Invocation, Request, select
from ifvip.ifupdown.methods import IF_DIR, Settings
from ifvip.ifupdown.state import DEFAULT_STATE_DIR, StateDir, StateError
from ifvip.interfaces.cache import load
from ifvip.interfaces.check import check, file_errors, invalid_stanzas
from ifvip.interfaces.model import InterfacesFile
from ifvip.interfaces.patterns import SystemView
from ifvip.interfaces.query import MappingRunner
from ifvip.interfaces.system import mapping_error
from ifvip.record import record

EXIT_FAILURE: Final = 1
HELPERS: Final = {
    "wait-for-ll6.sh": "/lib/ifupdown/wait-for-ll6.sh",
    "settle-dad.sh": "/lib/ifupdown/settle-dad.sh",
}


@record(kw_only=False)
class Options:
    up: bool
    path: str = "/etc/network/interfaces"
    state_dir: str = DEFAULT_STATE_DIR
    all_mode: bool = False
    allow: str | None = None
    no_act: bool = False
    verbose: bool = False
    force: bool = False
    no_scripts: bool = False
    no_loopback: bool = False
    ignore_errors: bool = False
    exclude: tuple[str, ...] = ()
    overrides: tuple[tuple[str, str], ...] = ()
    targets: tuple[str, ...] = ()
    scripts_dir: str = IF_DIR
    caller_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def prog(self) -> str:
        return "ifup" if self.up else "ifdown"


def installed(program: str) -> bool:
    """Whether ifupdown would find `program` (dhclient, udhcpc, ...) or its helper script."""
    helper = HELPERS.get(program)
    if helper is not None:
        return os.access(helper, os.X_OK)
    import shutil  # noqa: PLC0415 - most files name no such program (shutil: 2 ms)

    return shutil.which(program, path=HOOK_PATH) is not None


RT_TABLES: Final = ("/etc/iproute2/rt_tables", "/usr/share/iproute2/rt_tables")


def read_rt_tables(paths: tuple[str, ...] = RT_TABLES) -> dict[str, int]:
    """Route table names as `ip` resolves them (rt_tables, then rt_tables.d/*.conf), so a
    hook's `table NAME` means the same natively as in the shell."""
    tables: dict[str, int] = {}
    base = next((p for p in paths if os.path.exists(p)), None)
    if base is None:
        return tables
    conf = os.path.join(base + ".d")
    extra = sorted(os.path.join(conf, n) for n in (os.listdir(conf) if os.path.isdir(conf) else ()))
    for path in [base, *(p for p in extra if p.endswith(".conf"))]:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            words = line.split("#", 1)[0].split()
            if len(words) >= 2:
                try:
                    tables[words[1]] = int(words[0], 0)
                except ValueError:
                    continue
    return tables


def source_messages(defn: InterfacesFile) -> list[str]:
    """ifupdown's -v `reading directory D` / `parsing file F` lines for `source` and
    `source-directory`, from the look-ups the loader recorded in reading order. A file is
    announced even when the recursion guard then skips it, as ifupdown does."""
    deps = defn.dependencies
    read = {d.key for d in deps if d.kind == "file"}
    messages: list[str] = []
    for index, dep in enumerate(deps):
        if dep.kind != "wordexp":
            continue
        words = [str(w) for w in dep.answer or ()]
        listings = {d.key: d.answer for d in deps[index + 1 : index + 1 + len(words)]
                    if d.kind == "directory"}  # fmt: skip
        for word in words:
            if word in listings:
                messages.append(f"reading directory {word}")
                messages.extend(f"parsing file {word}/{name}" for name in listings[word] or ())
            elif word in read:
                messages.append(f"parsing file {word}")
    return messages


def _settled(state: StateDir, prog: str, err: IO[str]) -> Callable[[str], str | None]:
    def lookup(physical: str) -> str | None:
        return state.settled_logical(physical, waiting=lambda said: _say(err, prog, said))

    return lookup


def _say(err: IO[str], prog: str, message: str) -> None:
    err.write(f"{prog}: {message}\n")
    err.flush()


def prepare(
    opts: Options,
    *,
    system: SystemView,
    run_mapping: MappingRunner,
    available: Callable[[str], bool],
    err: IO[str],
    wait_for_locks: bool = False,
) -> Invocation | int:
    """Read, check and select: the invocation, or the exit status when it stops here.

    `wait_for_locks` (the command line's): a target's state is read under its lock, as
    ifupdown reads it, waiting for another ifup/ifdown of it first; blocking, so not for
    a caller on an event loop (the engine itself waits for the lock without blocking)."""
    prog = opts.prog
    defn = load(opts.path, no_loopback=opts.no_loopback)
    if opts.verbose:
        for message in source_messages(defn):
            err.write(f"{prog}: {message}\n")
    problems = file_errors(check(defn))
    for diagnostic in defn.diagnostics:
        # ifupdown's own warnings and parse errors, in its `FILE:LINE: message` form (an
        # error scoped to a stanza is said when that interface fails).
        if diagnostic.warning or diagnostic in problems:
            err.write(f"{prog}: {diagnostic.path}:{diagnostic.line}: {diagnostic.msg}\n")
    if not defn.ifupdown_ok:
        err.write(f'{prog}: couldn\'t read interfaces file "{opts.path}"\n')
        return EXIT_FAILURE
    if problems:
        for problem in problems:
            if problem not in defn.diagnostics:
                err.write(f"{prog}: {problem}\n")
        err.write(f"{prog}: {opts.path} has errors: nothing was done\n")
        return EXIT_FAILURE
    try:
        state = StateDir.open(opts.state_dir, create=not opts.no_act)
        configured = state.configured()
        # Reading fails early here rather than half-way through the targets.
        for physical, _logical in configured:
            state.logical(physical)
        # A target's state is read under its lock (ifupdown waits for a running command).
        lookup = _settled(state, prog, err) if wait_for_locks else state.logical
    except StateError as exc:
        err.write(f"{prog}: {exc}\n")
        return EXIT_FAILURE
    settings = Settings(
        verbose=opts.verbose,
        no_scripts=opts.no_scripts,
        do_all=opts.all_mode,
        cls=opts.allow or ("auto" if opts.all_mode else None),
        overrides=opts.overrides,
        scripts_dir=opts.scripts_dir,
        ignore_errors=opts.ignore_errors,
        caller_env=opts.caller_env,
        available=available,
        rt_tables=read_rt_tables(),
        # A dry run prints a stanza with invalid values as ifupdown's -n does (neither
        # validates them); the real ifup fails it before applying anything of it.
        invalid={} if opts.no_act or not opts.up else invalid_stanzas(defn),
    )
    request = Request(
        up=opts.up,
        targets=opts.targets,
        all_mode=opts.all_mode,
        allow=opts.allow,
        exclude=opts.exclude,
        force=opts.force,
        no_act=opts.no_act,
    )
    inv = select(defn, request, settings, system, run_mapping, lookup, configured, mapping_error)
    if inv.usage_error is not None:
        err.write(f"{prog}: {inv.usage_error}\n")
        return EXIT_FAILURE
    return inv


def run(
    opts: Options,
    *,
    system: SystemView,
    run_mapping: MappingRunner,
    available: Callable[[str], bool] = installed,
    err: IO[str] | None = None,
) -> int:
    """The whole command; returns the exit status."""
    out = err if err is not None else sys.stderr
    inv = prepare(
        opts,
        system=system,
        run_mapping=run_mapping,
        available=available,
        err=out,
        wait_for_locks=not opts.no_act,
    )
    if isinstance(inv, int):
        return inv
    if opts.no_act:
        from ifvip.ifupdown.dryrun import print_invocation  # noqa: PLC0415 - only for -n

        return asyncio.run(print_invocation(inv, out, prog=opts.prog, verbose=opts.verbose))
    try:
        return asyncio.run(_apply(inv, opts, out))
    except asyncio.CancelledError:
        # SIGTERM/SIGHUP during an ifup (the engine's handle_signals): its work is undone.
        out.write(f"{opts.prog}: interrupted: what it had done was undone\n")
        return EXIT_FAILURE


async def _apply(inv: Invocation, opts: Options, out: IO[str]) -> int:
    # Loading modules makes objects that live until exit: no collector passes over them
    # while they load (about 5 ms of an ifup), nor later in its full scans, which a file of
    # a thousand stanzas sets off again and again (frozen).
    gc.disable()
    try:
        from ifvip.ifupdown import engine  # noqa: PLC0415 - needs pyroute2
        from ifvip.ifupdown.executor import NetlinkExecutor, OpError  # noqa: PLC0415
        from ifvip.ifupdown.netlink import Kernel, preload  # noqa: PLC0415
        from ifvip.ifupdown.readonly import (  # noqa: PLC0415
            adapt,
            current_value,
            mounted_readonly,
        )

        preload()
    except ImportError as exc:  # pragma: no cover - a broken installation
        out.write(f"{opts.prog}: the netlink engine is not available: {exc}\n")
        return EXIT_FAILURE
    finally:
        gc.freeze()
        gc.enable()
    status = 0
    async with Kernel() as kernel:
        executor = NetlinkExecutor(kernel)
        for op in [*inv.renames, *(s.op for s in inv.prologue)]:
            if opts.verbose:
                out.write(op.render() + "\n")
            try:
                await executor.apply(op)
            except OpError as exc:
                out.write(f"{opts.prog}: {op.render()}: {exc.reason}\n")
                if inv.prologue and op is inv.prologue[0].op and opts.up:
                    out.write(f"{opts.prog}: pre-up script failed\n")
                    return EXIT_FAILURE
        for entry in inv.entries:
            for message in entry.before:
                out.write(f"{opts.prog}: {message}\n")
            if entry.failed:
                status = 1
            if entry.plan is None:
                continue
            if entry.refusal is not None:
                # This interface fails, nothing of it applied; the others still come up.
                refusal = entry.refusal
                for message in refusal.messages:
                    text = message if refusal.error is None else str(refusal.error)
                    out.write(f"{opts.prog}: {text}\n")
                word = "up" if opts.up else "down"
                out.write(f"{opts.prog}: failed to bring {word} {entry.plan.physical}\n")
                status = 1
                continue
            for stanza in entry.plan.stanzas:
                for message in stanza.messages:
                    out.write(f"{opts.prog}: {message}\n")
            plan = entry.plan
            if opts.up:
                # Docker's read-only /proc/sys: accept_dad 0 hooks become nodad addresses,
                # other sysctl writes fail this interface before anything is applied.
                adapted = adapt(plan, mounted_readonly, current_value)
                for line in (*adapted.warnings, *adapted.errors):
                    out.write(f"{opts.prog}: {line}\n")
                if adapted.errors:
                    out.write(f"{opts.prog}: failed to bring up {plan.physical}\n")
                    status = 1
                    continue
                plan = adapted.plan
            call = engine.ifup if opts.up else engine.ifdown
            kwargs = {"quiet_already": entry.quiet_already} if opts.up else {}
            result = await call(
                [plan],
                state_dir=opts.state_dir,
                force=opts.force,
                verbose=opts.verbose,
                prog=opts.prog,
                err=out,
                kernel=kernel,
                handle_signals=True,  # SIGTERM undoes an ifup, waits for an ifdown
                **kwargs,
            )
            status = max(status, result.exit_code)
        for step in inv.epilogue:
            if opts.verbose:
                out.write(step.op.render() + "\n")
            try:
                await executor.apply(step.op)
            except OpError as exc:
                out.write(f"{opts.prog}: {step.op.render()}: {exc.reason}\n")
                if opts.up:
                    out.write(f"{opts.prog}: post-up script failed\n")
                    status = 1
    return status
