"""The daemon's ifup/ifdown of managed stanzas (`--manage`, Debian's `IFACE:ucarp`).

`CommandEngine` runs the in-process ifup/ifdown engine exactly as `ifvip ifup`/`ifvip
ifdown` do, with four things a daemon needs on top:

- **Off the event loop.** Reading the file, pyparsing on a cache miss and planning run in a
  worker thread; the loop keeps sending adverts meanwhile.
- **Structured failures.** A failed ifup raises `ActionError` whose text is the failing line
  (`path:line: command: reason`, the engine's own words): the runtime turns it into a fault
  that `ifvip status`, `/healthz` and the metrics show.
- **The dead man's switch.** Every address the ifup adds (the method's and those of native
  `ip addr add` hooks) gets a finite lifetime, as ifvip's own VIPs do, and `refresh()`
  extends it on every advert: the host of a SIGKILLed or frozen daemon stops answering for
  them by itself. The kernel removes, with an expired address, its prefix route and the
  routes that use it as source; links, MTUs, sysctls and other routes stay until the next
  start's BACKUP step (`down()`) removes them.
- **Converging without a journal.** `down()` of a stanza that the state does not record as
  up (a container restarted with an empty /run, a state dir lost) still removes what the
  interfaces file declares for it: ifdown --force from the file, then the inverse of every
  address, route, rule and link its ifup would add (what is not there is skipped), and the
  per-link sysctls it writes set back to `conf.default`'s value, what a new link gets. So a
  later MASTER ifup starts from a clean interface.

Where /proc/sys is read-only (readonly.py), an `accept_dad` 0 hook becomes `nodad` addresses
and any other sysctl write fails the ifup before anything is applied.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import ipaddress
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from ifvip.daemon.roles import GONE, SCRIPT_TIMEOUT, InterfacesEngine
from ifvip.daemon.settings import ConfigProblems

if TYPE_CHECKING:  # the engine and the planner load on first use (a VIP-only daemon never)
    from ifvip.ifupdown.netlink import Kernel
    from ifvip.ifupdown.plan import AddAddress, Op, Plan, WriteSysctl

log = logging.getLogger("ifvip")

ENGINE_MODULE: Final = "ifvip.ifupdown.engine"
IFSTATE_DIR: Final = "/run/network"  # ifupdown's state, shared with ifvip ifup/ifdown


class ActionError(RuntimeError):
    """A MASTER or BACKUP action that failed; `str()` is the line to show (no secrets)."""


@dataclasses.dataclass(frozen=True)
class Prepared:
    plans: tuple[Plan, ...]
    said: tuple[str, ...]  # what `prepare` wrote (ifupdown's messages)


def with_lifetime(plan: Plan, seconds: int) -> Plan:
    """Every address the plan adds, with a lifetime of `seconds` (shorter ones kept)."""
    from ifvip.ifupdown.plan import AddAddress  # noqa: PLC0415

    def one(op: Op) -> Op:
        if not isinstance(op, AddAddress):
            return op
        valid = seconds if op.valid_lft is None else min(op.valid_lft, seconds)
        preferred = valid if op.preferred_lft is None else min(op.preferred_lft, valid)
        return dataclasses.replace(op, valid_lft=valid, preferred_lft=preferred)

    return plan.rewritten(lambda step: dataclasses.replace(step, op=one(step.op)))


def link_defaults(ops: Sequence[Op]) -> list[WriteSysctl]:
    """The per-link sysctls `ops` write, set back to what a new link gets (`conf.default`):
    without a journal, the value before the ifup is not known, and that is the one a link
    made anew would have."""
    from ifvip.ifupdown.plan import WriteSysctl  # noqa: PLC0415
    from ifvip.ifupdown.readonly import current_value  # noqa: PLC0415

    resets: list[WriteSysctl] = []
    seen: set[str] = set()
    for op in ops:
        if not isinstance(op, WriteSysctl) or op.name in seen:
            continue
        parts = op.name.split(".")
        if len(parts) != 5 or parts[:2] != ["net", parts[1]] or parts[2] != "conf":
            continue
        if parts[1] not in ("ipv4", "ipv6") or parts[3] in ("all", "default"):
            continue
        seen.add(op.name)
        default = current_value(".".join([*parts[:3], "default", parts[4]]))
        if default is not None and current_value(op.name) not in (None, default):
            resets.append(WriteSysctl(name=op.name, value=default, origin=op.origin))
    return resets


def _said(out: io.StringIO) -> tuple[str, ...]:
    return tuple(line for line in out.getvalue().splitlines() if line)


class CommandEngine:
    """`ifup`/`ifdown` of one target at a time, in-process, as `ifvip ifup`/`ifdown`."""

    def __init__(
        self,
        path: str,
        state_dir: str | None = None,
        hook_timeout: float = SCRIPT_TIMEOUT,
        kernel: Kernel | None = None,
    ) -> None:
        self.path = path
        self.state_dir = state_dir or IFSTATE_DIR
        self.hook_timeout = hook_timeout  # seconds one if-*.d hook or up/down command may run
        self._kernel = kernel
        self._added: dict[str, tuple[AddAddress, ...]] = {}  # logical → addresses it added

    # ---------------------------------------------------------------- the seam

    async def up(self, logical: str, lifetime: int | None = None) -> None:
        from ifvip.ifupdown import engine  # noqa: PLC0415
        from ifvip.ifupdown.plan import AddAddress  # noqa: PLC0415
        from ifvip.ifupdown.readonly import adapt, current_value, mounted_readonly  # noqa: PLC0415

        prepared = await self._prepare(True, logical)
        plans = []
        for plan in prepared.plans:
            adapted = adapt(plan, mounted_readonly, current_value)
            if adapted.errors:
                raise ActionError("; ".join(adapted.errors))
            for warning in adapted.warnings:
                log.warning("%s", warning)
            plans.append(
                adapted.plan if lifetime is None else with_lifetime(adapted.plan, lifetime)
            )
        out = io.StringIO()
        for plan in plans:
            result = await engine.ifup(
                [plan],
                state_dir=self.state_dir,
                prog="ifup",
                err=out,
                kernel=await self._kernel_for_engine(),
                hook_timeout=self.hook_timeout,
            )
            if result.failed:
                raise ActionError("; ".join(result.failed.values()))
        self._added[logical] = tuple(
            op for plan in plans for op in plan.ops() if isinstance(op, AddAddress)
        )
        for line in [*prepared.said, *_said(out)]:
            log.info("%s", line)

    async def down(self, logical: str) -> None:
        """ifdown LOGICAL exactly as recorded, or, without a record, converge from the file."""
        from ifvip.ifupdown import engine  # noqa: PLC0415
        from ifvip.ifupdown.state import StateDir  # noqa: PLC0415

        self._added.pop(logical, None)
        physical = logical.split("=", 1)[0]
        state = StateDir.open(self.state_dir, create=False)
        recorded = state.logical(physical) is not None and bool(state.read_journal(physical))
        prepared = await self._prepare(False, logical, force=True)
        out = io.StringIO()
        failures: list[str] = []
        for plan in prepared.plans:
            result = await engine.ifdown(
                [plan],
                state_dir=self.state_dir,
                force=True,
                prog="ifdown",
                err=out,
                kernel=await self._kernel_for_engine(),
                hook_timeout=self.hook_timeout,
            )
            failures += result.failed.values()
        if not recorded:
            failures += await self._undo_file(logical)
        for line in [*prepared.said, *_said(out)]:
            log.info("%s", line)
        if failures:
            raise ActionError("; ".join(failures))

    async def refresh(self, logical: str, lifetime: int) -> None:
        """Extend the lifetime of every address `up(logical)` added (re-adding a lost one)."""
        kernel = await self._kernel_for_engine()
        for op in self._added.get(logical, ()):
            await kernel.add_address(
                op.ifname,
                ipaddress.ip_interface(op.address),
                label=op.label,
                broadcast=op.broadcast,
                peer=op.peer,
                nodad=op.nodad,
                preferred=min(lifetime, op.preferred_lft or lifetime),
                valid=lifetime,
                replace=True,
            )

    # ---------------------------------------------------------------- the work

    async def _kernel_for_engine(self) -> Kernel:
        if self._kernel is None:
            from ifvip.ifupdown.netlink import Kernel  # noqa: PLC0415

            self._kernel = Kernel()
        return self._kernel

    async def _prepare(self, up: bool, target: str, *, force: bool = False) -> Prepared:
        """Read the file and plan, in a worker thread: the loop keeps sending adverts."""
        return await asyncio.to_thread(self._prepare_now, up, target, force)

    def _prepare_now(self, up: bool, target: str, force: bool) -> Prepared:
        from ifvip.ifupdown.command import Options, installed, prepare  # noqa: PLC0415
        from ifvip.interfaces.system import live_system, run_mapping  # noqa: PLC0415

        out = io.StringIO()
        opts = Options(
            up=up, path=self.path, state_dir=self.state_dir, targets=(target,), force=force
        )
        inv = prepare(
            opts, system=live_system(), run_mapping=run_mapping, available=installed, err=out
        )
        if isinstance(inv, int):
            raise ActionError("; ".join(_said(out)) or f"{opts.prog} {target}: refused")
        refused = [e.refusal for e in inv.entries if e.refusal is not None]
        if refused:
            # The stanza's own problems (`path:line:col: ...`), as `ifvip check` names them.
            said = [str(r.error) if r.error else "; ".join(r.messages) for r in refused]
            raise ActionError("; ".join(said) or f"{opts.prog} {target}: refused")
        failed = [m for e in inv.entries if e.failed for m in e.before]
        if failed or not inv.plans():
            raise ActionError("; ".join(failed) or f"{opts.prog} {target}: no stanza to bring up")
        return Prepared(tuple(inv.plans()), _said(out))

    async def _undo_file(self, logical: str) -> list[str]:
        """Remove what ifup LOGICAL would add (addresses, routes, rules, links), newest
        first, skipping what is not there: the converge step when no journal says more."""
        from ifvip.ifupdown.executor import NetlinkExecutor, OpError  # noqa: PLC0415
        from ifvip.ifupdown.plan import AddAddress, AddLink, AddRoute, AddRule  # noqa: PLC0415

        prepared = await self._prepare(True, logical, force=True)
        ops = [op for plan in prepared.plans for op in plan.ops()]
        undo = [
            inverse
            for op in ops
            if isinstance(op, AddAddress | AddRoute | AddRule | AddLink)
            and (inverse := op.inverse()) is not None
        ]
        executor = NetlinkExecutor(await self._kernel_for_engine(), record=False)
        failures = []
        for op in reversed(undo):
            try:
                await executor.apply(op)
            except OpError as exc:
                if exc.errno not in GONE:
                    failures.append(f"{op.where()}: {op.render()}: {exc.reason}")
        for reset in link_defaults(ops):
            try:
                await executor.apply(reset)
            except OpError as exc:  # best effort: e.g. a read-only /proc/sys
                log.debug("%s: %s", reset.render(), exc.reason)
        return failures


EngineFactory = Callable[[str], InterfacesEngine]  # interfaces file → engine


def engine_factory(
    state_dir: str | None = None, hook_timeout: float = SCRIPT_TIMEOUT
) -> EngineFactory:
    """The in-process ifup/ifdown engine, or a config error when it is not available.

    The engine (the planner, the interfaces reader) is imported on the first call, when a
    group manages stanzas: a daemon that only moves VIPs never loads it."""

    def make(path: str) -> InterfacesEngine:
        import importlib  # noqa: PLC0415

        try:
            importlib.import_module(ENGINE_MODULE)
        except ImportError:
            raise ConfigProblems(
                [f"--manage: managed stanzas need the ifup engine ({ENGINE_MODULE})"]
            ) from None
        return CommandEngine(path, state_dir, hook_timeout)

    return make
