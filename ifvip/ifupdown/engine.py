"""Transactional ifup and exact ifdown: plans carried out under ifupdown's locks and state.

The public API (used by `ifvip ifup`/`ifdown` and in-process by the daemon for managed
stanzas). Run it in the network namespace to configure (sysctls are /proc/sys files):

    result = await engine.ifup(plans, state_dir="/run/network")
    result = await engine.ifdown(plans, state_dir="/run/network")

`plans` are `plan.Plan`s, one per target `PHYS=LOGICAL` (the planner builds them:
`command.prepare(Options(...))` gives an Invocation whose entries carry them; `ifup`
needs start plans, `ifdown` stop plans). Options: `force` (ifupdown's `--force`: ignore
the state), `verbose` (print each command as ifupdown -v does), `prog` (message prefix,
`ifup`/`ifdown`), `err` (where messages go, default stderr), `kernel` (a `netlink.Kernel`
to use instead of opening one; Kernel() works in the caller's namespace), `lock_timeout`,
`hook_timeout`, `quiet_already` (ifup -a: no "already configured"), `handle_signals`
(a command line's: SIGTERM/SIGHUP cancel an ifup, which then undoes its work, and are
held off during an ifdown; a daemon leaves it False and cancels the task itself, with
the same undo). The `Result` says which
targets were brought up/down (`done`), which failed (`failed`, with the message), which were
skipped as already configured / not configured (`skipped`), and the exit status ifupdown
would give (`exit_code`: 0, or 1 if any target failed).

ifup of one target (specs/ifupdown.md §3.1, §7, §8; DESIGN.md §4):
  1. take the per-interface lock (`ifstate.PHYS`), skip it if the state already says up;
  2. apply the plan's steps in order (consecutive netlink ops pipelined), keeping every op
     as applied (`previous` filled);
  3. on the first failure that counts (not `ignore_failure`), undo everything applied for
     this interface, newest first, record nothing, and say which line failed:
     `ifup: path:line: up ip route add …: File exists`, `ifup: failed to bring up PHYS`;
  4. on success write the journal (state.py, 0600) and the ifstate files. The journal
     holds what ifdown undoes: every applied op that has an inverse, as applied (hooks
     and if-*.d scripts have none; ifdown runs the down hooks and scripts instead).

ifdown of one target (§3.2): the stop plan's steps run in their phases (if-down.d, `down`
lines, …, `post-down` lines, failures ignored as ifupdown does), except that with a journal
each stanza's *method* steps (and the link-level steps) are replaced by the inverses of
what that stanza's ifup applied, newest first: addresses and routes added by hooks go,
sysctls, MTU and MAC get their old values back, what a `down` line already deleted is not
deleted again, and a delete finding nothing is no error (so no "address not found" noise
for dual-stack). Without a journal (`--force` with no state, or state left by the real
ifupdown) the plan's own down commands run, as ifupdown's. The journal is matched to the
file by the stanzas' names, families and methods; if the file changed since ifup, all of
it is undone after the last stanza.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from dataclasses import field
from typing import IO, Any, Final

from ifvip.ifupdown.executor import HOOK_TIMEOUT, NetlinkExecutor, OpError
from ifvip.ifupdown.netlink import Kernel
from ifvip.ifupdown.plan import (
    AddAddress,
    AddRoute,
    AddRule,
    DelAddress,
    DelLink,
    DelRoute,
    DelRule,
    FlushAddresses,
    NoOp,
    Op,
    Plan,
    StanzaPlan,
    Step,
    op_from_dict,
)
from ifvip.ifupdown.state import LOCK_TIMEOUT, StateDir, StateError
from ifvip.record import record

JOURNAL_VERSION: Final = 1
_LOCK_POLL: Final = 0.05  # seconds between two tries of a busy per-interface lock
# A delete that finds nothing: the thing is already gone, which is what ifdown wants.
_GONE: Final = frozenset({errno.ENOENT, errno.EADDRNOTAVAIL, errno.ESRCH, errno.ENODEV})
_DELETES: Final = (DelAddress, DelRoute, DelRule, DelLink, FlushAddresses)
_BATCH: Final = (AddAddress, DelAddress, AddRoute, DelRoute, AddRule, DelRule)
# The words of the stanza line a step comes from, for messages (`up ip route add ...`).
_STAGE_WORDS: Final = {
    "pre-up": "pre-up",
    "up": "up",
    "post-up": "post-up",
    "down": "down",
    "pre-down": "pre-down",
    "post-down": "post-down",
}


@record(kw_only=False, frozen=False)
class Result:
    """What an ifup/ifdown did; `exit_code` is ifupdown's (0, or 1 if a target failed)."""

    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


class _StanzaFailedError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _describe(step: Step, error: OpError) -> str:
    """`path:line: up ip route add ...: File exists`."""
    op = step.op
    word = _STAGE_WORDS.get(step.stage)
    command = op.render().strip()
    if word and not command.startswith(word + " "):
        command = f"{word} {command}"
    return f"{op.where()}: {command}: {error.reason}"


@contextlib.asynccontextmanager
async def _kernel(kernel: Kernel | None) -> AsyncIterator[Kernel]:
    if kernel is not None:
        yield kernel
        return
    async with Kernel() as opened:
        yield opened


@contextlib.contextmanager
def _signals(enabled: bool, *, cancel: bool = True) -> Iterator[None]:
    """SIGTERM, SIGHUP and SIGINT cancel the running ifup, once: it then undoes its work,
    and further signals are held off until the undo is done (a second Ctrl-C must not
    leave half an undo). An ifdown (`cancel` False) finishes regardless of SIGTERM and
    SIGHUP, since half a down helps nobody; SIGINT stays as it was for it."""
    if not enabled:
        yield
        return
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    numbers = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT) if cancel else (
        signal.SIGTERM, signal.SIGHUP)  # fmt: skip
    previous = {number: signal.getsignal(number) for number in numbers}
    fired = False

    def first_only() -> None:
        nonlocal fired
        if cancel and not fired:
            fired = True
            task.cancel()

    for number in numbers:
        loop.add_signal_handler(number, first_only)
    try:
        yield
    finally:
        for number in numbers:
            loop.remove_signal_handler(number)
            # Interrupted, the command only says so and exits: more signals are ignored
            # for that moment, so that the exit status and message are the undo's.
            handler = signal.SIG_IGN if fired else previous[number]
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(number, handler)  # asyncio.run's SIGINT handler, if not fired


@contextlib.asynccontextmanager
async def _locked(
    state: StateDir, physical: str, timeout: float, say: Callable[[str], None]
) -> AsyncIterator[None]:
    """Hold the per-interface lock for the whole block, waiting for it as ifupdown does
    (`waiting for lock on PATH`, then wait), without blocking the event loop; at most
    `timeout` seconds. A cancelled wait takes nothing."""
    held = state.try_lock(physical)
    if held is None:
        say(f"waiting for lock on {state.lock_path(physical)}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while held is None:
            if loop.time() >= deadline:
                raise StateError(
                    f"timed out after {timeout:.0f} s waiting for lock on "
                    f"{state.lock_path(physical)}"
                )
            await asyncio.sleep(_LOCK_POLL)
            held = state.try_lock(physical)
    try:
        yield
    finally:
        held.release()


class _Run:
    """One ifup or ifdown invocation: the executor, the output, the options."""

    def __init__(
        self,
        executor: NetlinkExecutor,
        *,
        prog: str,
        err: IO[str],
        verbose: bool,
    ) -> None:
        self.executor = executor
        self.prog = prog
        self.err = err
        self.verbose = verbose
        # What this ifdown's own down lines already deleted: no need to undo it twice.
        self.removed: set[tuple[Any, ...]] = set()

    def say(self, message: str) -> None:
        self.err.write(f"{self.prog}: {message}\n")
        self.err.flush()

    def show(self, op: Op) -> None:
        if self.verbose and not isinstance(op, NoOp):
            self.err.write(op.render() + "\n")
            self.err.flush()

    # ------------------------------------------------------------ up

    async def up(self, plan: Plan, record: Callable[[list[dict[str, Any]]], None]) -> None:
        """Apply `plan`, giving `record` the journal entries of each run of ops applied;
        on failure undo everything first."""
        applied: list[tuple[int, Op]] = []  # (stanza index or -1/-2 for link steps, op)
        parts: list[tuple[int, Sequence[Step]]] = [(-1, plan.before)]
        parts += [(i, stanza.steps) for i, stanza in enumerate(plan.stanzas)]
        parts.append((-2, plan.after))
        try:
            for part, steps in parts:
                if part >= 0 and self.verbose:
                    stanza = plan.stanzas[part]
                    self.say(
                        f"configuring interface {plan.physical}={plan.logical} ({stanza.family})"
                    )
                await self._apply_steps(part, steps, applied, record)
        except _StanzaFailedError as failure:
            self.say(failure.message)
            await _to_the_end(self.undo([op for _, op in applied]))
            raise
        except (asyncio.CancelledError, Exception):
            # SIGINT/SIGTERM (ifupdown's "interrupted"), or a journal that cannot be
            # written: leave nothing half-done either.
            await _to_the_end(self.undo([op for _, op in applied]))
            raise

    async def _apply_steps(
        self,
        part: int,
        steps: Sequence[Step],
        applied: list[tuple[int, Op]],
        record: Callable[[list[dict[str, Any]]], None],
    ) -> None:
        index = 0
        while index < len(steps):
            # A run of netlink ops goes to the kernel in one go (same result, one round).
            end = index
            while end < len(steps) and _batchable(steps[end].op):
                end += 1
            run = steps[index : max(end, index + 1)]
            for step in run:
                self.show(step.op)
            # stop: a failure ends the run there, as ifupdown stops at a failing line.
            results = await self.executor.apply_batch([step.op for step in run], stop=True)
            failure: str | None = None
            done: list[Op] = []
            for step, result in zip(run, results, strict=True):
                if isinstance(result, OpError):
                    if step.op.ignore_failure:
                        continue
                    if failure is None:
                        failure = _describe(step, result)
                else:
                    done.append(result)
            applied.extend((part, op) for op in done)
            if failure is None:
                undoable = [op for op in done if op.inverse() is not None]
                record([{"stanza": part, "op": op.to_dict()} for op in undoable])
            else:
                raise _StanzaFailedError(failure)
            index += len(run)

    async def undo(self, ops: Sequence[Op]) -> None:
        """The inverses of `ops`, newest first; what is already gone is no error."""
        inverses = [
            inverse
            for op in reversed(ops)
            if (inverse := op.inverse()) is not None and _identity(inverse) not in self.removed
        ]
        # One batch, nothing read first: an undo records nothing (no address dump per delete).
        results = await self.executor.apply_batch(inverses, record=False)
        for inverse, result in zip(inverses, results, strict=True):
            self.show(inverse)
            if isinstance(result, OpError) and not _gone(inverse, result):
                self.say(f"cannot undo {inverse.render()}: {result.reason}")

    # ------------------------------------------------------------ down

    async def down(self, plan: Plan, journal: list[dict[str, Any]] | None) -> None:
        """Run the stop plan; with a journal its method steps become the recorded inverses."""
        by_stanza: dict[int, list[Op]] = {}
        for entry in journal or []:
            by_stanza.setdefault(int(entry["stanza"]), []).append(op_from_dict(entry["op"]))
        consumed: set[int] = set()
        # With a journal, the link-level steps are undone from it like the methods.
        replaced = ("method", "link") if journal is not None else ()
        await self._down_steps([step for step in plan.before if step.stage not in replaced])
        for index, stanza in enumerate(plan.stanzas):
            if self.verbose:
                self.say(f"configuring interface {plan.physical}={plan.logical} ({stanza.family})")
            mine = by_stanza.get(index, [])
            consumed.add(index)
            done = False
            pending: list[Step] = []  # steps run together, so netlink ones go in one batch
            for step in stanza.steps:
                if journal is not None and step.stage == "method":
                    await self._down_steps(pending)
                    pending = []
                    if not done:
                        await self.undo(mine)
                        done = True
                    continue
                pending.append(step)
            await self._down_steps(pending)
            if journal is not None and not done:
                await self.undo(mine)
        if journal is not None:
            # The link-level steps, and stanzas no longer where they were in the file.
            await self.undo(
                [op for part, ops in by_stanza.items() if part not in consumed for op in ops]
            )
        await self._down_steps([step for step in plan.after if step.stage not in replaced])

    async def _down_steps(self, steps: Sequence[Step]) -> None:
        ops = [step.op for step in steps]
        for op in ops:
            self.show(op)
        for op, result in zip(ops, await self.executor.apply_batch(ops), strict=True):
            gone = isinstance(result, OpError) and _gone(op, result)
            if isinstance(result, OpError) and not gone:
                if not op.ignore_failure:
                    self.say(f"{op.where()}: {op.render().strip()}: {result.reason}")
            elif (key := _identity(op)) is not None:
                self.removed.add(key)  # deleted, or found already gone: not again


async def _to_the_end(undo: Coroutine[Any, Any, None]) -> None:
    """Run an undo to its end whatever comes: a second SIGINT/SIGTERM (or the daemon
    cancelling again) while it runs is held off until it is done, then the cancellation
    goes on. Half an undo is what the undo exists to prevent."""
    task = asyncio.ensure_future(undo)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done() and task.cancelled():
                raise
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    task.result()


def _batchable(op: Op) -> bool:
    # A replace reads the route it overwrites first, so it is not sent blind.
    return isinstance(op, _BATCH) and not (isinstance(op, AddRoute) and op.replace)


def _identity(op: Op) -> tuple[Any, ...] | None:
    """What a delete removes, so that a down line and a journal inverse that remove the
    same thing are recognised as one (None: not a delete)."""
    if isinstance(op, DelAddress):
        return ("address", op.ifname.split(":", 1)[0], op.address)
    if isinstance(op, DelRoute):
        table = 254 if op.table is None else op.table
        return ("route", op.family, op.dst, table, op.metric, op.gateway, op.dev)
    if isinstance(op, DelRule):
        return ("rule", op.family, op.priority, op.src, op.dst, op.table, op.iifname,
                op.oifname, op.fwmark)  # fmt: skip
    return None


def _gone(op: Op, error: OpError) -> bool:
    return isinstance(op, _DELETES) and error.errno in _GONE


def _stanza_key(stanza: StanzaPlan) -> list[str]:
    return [stanza.logical, stanza.family, stanza.method]


async def ifup(
    plans: Sequence[Plan],
    *,
    state_dir: str = "/run/network",
    force: bool = False,
    verbose: bool = False,
    prog: str = "ifup",
    err: IO[str] | None = None,
    kernel: Kernel | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
    hook_timeout: float = HOOK_TIMEOUT,
    quiet_already: bool = False,
    handle_signals: bool = False,
) -> Result:
    """Bring each plan's target up, transactionally (see the module docstring)."""
    out = err if err is not None else sys.stderr
    result = Result()
    state = StateDir.open(state_dir)
    with _signals(handle_signals):
        async with _kernel(kernel) as k:
            executor = NetlinkExecutor(k, hook_timeout=hook_timeout)
            run = _Run(executor, prog=prog, err=out, verbose=verbose)
            for plan in plans:
                target = f"{plan.physical}={plan.logical}"
                try:
                    async with _locked(state, plan.physical, lock_timeout, run.say):
                        if not force and state.logical(plan.physical) is not None:
                            if not quiet_already:
                                run.say(f"interface {plan.physical} already configured")
                            result.skipped.append(target)
                            continue
                        await _up_one(run, plan, state, result)
                except StateError as exc:
                    run.say(str(exc))
                    result.failed[target] = str(exc)
    return result


async def _up_one(run: _Run, plan: Plan, state: StateDir, result: Result) -> None:
    target = f"{plan.physical}={plan.logical}"
    # `--force` over an interface that is up: what that ifup recorded stays recorded (its
    # entries are undone last on ifdown), and a failure here leaves the state as it was.
    before = state.logical(plan.physical)
    old = state.read_journal(plan.physical) if before is not None else None
    earlier = (old or [])[1:]
    # ifupdown records the interface before running anything (specs §7).
    state.record(plan.physical, plan.logical)
    head = {
        "version": JOURNAL_VERSION,
        "logical": plan.logical,
        "stanzas": [_stanza_key(s) for s in plan.stanzas],
    }
    state.write_journal(plan.physical, [head, *({**e, "stanza": -3} for e in earlier)])

    def restore() -> None:
        state.record(plan.physical, before)
        if old is None:
            state.drop_journal(plan.physical)
        else:
            state.write_journal(plan.physical, old)

    try:
        with state.journal_appender(plan.physical) as append:
            await run.up(plan, append)
    except _StanzaFailedError as failure:
        restore()
        run.say(f"failed to bring up {plan.physical}")
        result.failed[target] = failure.message
        return
    except (asyncio.CancelledError, Exception):
        restore()  # undone (see _Run.up)
        raise
    result.done.append(target)


def _journal_for(state: StateDir, plan: Plan) -> list[dict[str, Any]] | None:
    """The journal of this target's last ifup, if it matches the plan's logical name."""
    entries = state.read_journal(plan.physical)
    if not entries:
        return None
    head, *body = entries
    if head.get("version") != JOURNAL_VERSION or head.get("logical") != plan.logical:
        return None
    if head.get("stanzas") != [_stanza_key(s) for s in plan.stanzas]:
        # The file changed since ifup: undo everything at the end, in the link-level slot.
        return [{**entry, "stanza": -3} for entry in body]
    return body


async def ifdown(
    plans: Sequence[Plan],
    *,
    state_dir: str = "/run/network",
    force: bool = False,
    verbose: bool = False,
    prog: str = "ifdown",
    err: IO[str] | None = None,
    kernel: Kernel | None = None,
    lock_timeout: float = LOCK_TIMEOUT,
    hook_timeout: float = HOOK_TIMEOUT,
    use_journal: bool = True,
    handle_signals: bool = False,
) -> Result:
    """Bring each plan's target down, exactly undoing its ifup when a journal exists.

    The plans must be for the logical name the state records (the caller reads it with
    `StateDir.logical()`; ifupdown's ifdown uses the recorded name, specs §8).
    """
    out = err if err is not None else sys.stderr
    result = Result()
    state = StateDir.open(state_dir)
    with _signals(handle_signals, cancel=False):
        async with _kernel(kernel) as k:
            executor = NetlinkExecutor(k, hook_timeout=hook_timeout, record=False)
            run = _Run(executor, prog=prog, err=out, verbose=verbose)
            for plan in plans:
                target = f"{plan.physical}={plan.logical}"
                try:
                    async with _locked(state, plan.physical, lock_timeout, run.say):
                        if not force and state.logical(plan.physical) is None:
                            run.say(f"interface {plan.physical} not configured")
                            result.skipped.append(target)
                            continue
                        journal = _journal_for(state, plan) if use_journal else None
                        await run.down(plan, journal)
                        state.record(plan.physical, None)
                        state.drop_journal(plan.physical)
                        result.done.append(target)
                except StateError as exc:
                    run.say(str(exc))
                    result.failed[target] = str(exc)
    return result


__all__ = ["Result", "ifdown", "ifup"]
