"""`ifup -n`: an invocation printed the way ifupdown 0.8.41 prints it, changing nothing.

Every op is printed through `DryRunExecutor` (its `render()`, one line per op); around
them come ifupdown's own messages, prefixed `ifup: `/`ifdown: `: with `-v` the
`configuring interface PHYS=LOGICAL (FAMILY)` line before each stanza, and always the
selection messages (unknown interface, already configured, mapping errors) and the check
failures (specs/ifupdown.md §9).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO

from ifvip.ifupdown.invocation import Entry, Invocation
from ifvip.ifupdown.plan import DryRunExecutor, Op, Plan, Step


async def _print_steps(executor: DryRunExecutor, steps: tuple[Step, ...] | list[Step]) -> None:
    for step in steps:
        await executor.apply(step.op)


async def _print_ops(executor: DryRunExecutor, ops: list[Op]) -> None:
    for op in ops:
        await executor.apply(op)


async def print_plan(
    plan: Plan, stream: IO[str], *, prog: str, verbose: bool, entry: Entry | None = None
) -> None:
    executor = DryRunExecutor(stream)
    say = _sayer(stream, prog)
    await _print_steps(executor, plan.before)
    for stanza in plan.stanzas:
        if verbose:
            say(f"configuring interface {plan.physical}={plan.logical} ({stanza.family})")
        for message in stanza.messages:
            say(message)
        await _print_steps(executor, stanza.steps)
    refusal = entry.refusal if entry is not None else None
    if refusal is not None:
        if verbose:
            say(f"configuring interface {plan.physical}={plan.logical} ({refusal.stanza.family})")
        for message in refusal.messages:
            say(message if refusal.error is None else str(refusal.error))
        say(f"failed to bring {'up' if plan.mode == 'start' else 'down'} {plan.physical}")
        return
    await _print_steps(executor, plan.after)


def _sayer(stream: IO[str], prog: str) -> Callable[[str], None]:
    def say(message: str) -> None:
        stream.write(f"{prog}: {message}\n")

    return say


async def print_invocation(inv: Invocation, stream: IO[str], *, prog: str, verbose: bool) -> int:
    """Print what the invocation would do; return ifupdown's exit status for it."""
    executor = DryRunExecutor(stream)
    say = _sayer(stream, prog)
    status = 0
    await _print_ops(executor, inv.renames)
    await _print_steps(executor, inv.prologue)
    for entry in inv.entries:
        for message in entry.before:
            say(message)
        if entry.failed:
            status = 1
        if entry.plan is not None:
            await print_plan(entry.plan, stream, prog=prog, verbose=verbose, entry=entry)
            if entry.refusal is not None:
                status = 1
    await _print_steps(executor, inv.epilogue)
    return status
