"""The undo of an interrupted ifup, on a fake executor: one batch, nothing read first, and a
second cancellation (a second SIGINT/SIGTERM, or the daemon cancelling again) cannot cut it
short."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from typing import Any

import pytest

from ifvip.ifupdown import engine
from ifvip.ifupdown.executor import OpError
from ifvip.ifupdown.plan import AddAddress, DelAddress, Op, Plan, Shell, StanzaPlan, Step

ADDRESSES = [f"198.51.100.{n}/24" for n in range(10, 20)]


class SlowUndo:
    """Applies additions at once, blocks on a hook until cancelled, and blocks the undo's
    batch until `release` is set; remembers how each batch was asked for."""

    def __init__(self) -> None:
        self.undo_started = asyncio.Event()
        self.release = asyncio.Event()
        self.batches: list[tuple[list[Op], bool | None]] = []
        self.undone: list[Op] = []

    async def apply_batch(
        self, ops: Sequence[Op], *, stop: bool = False, record: bool | None = None
    ) -> list[Op | OpError]:
        self.batches.append((list(ops), record))
        if any(isinstance(op, Shell) for op in ops):
            await asyncio.sleep(3600)  # the slow `up` hook: cancelled by the signal
        if ops and all(isinstance(op, DelAddress) for op in ops):
            self.undo_started.set()
            await self.release.wait()
            self.undone += ops
        return list(ops)


def _plan() -> Plan:
    steps = [Step(AddAddress(ifname="eth0", address=a), "post-up", "up") for a in ADDRESSES]
    steps.append(Step(Shell(command="sleep 3600"), "post-up", "up"))
    stanza = StanzaPlan("eth0", "inet", "manual", None, tuple(steps))
    return Plan("eth0", "eth0", "start", stanzas=(stanza,))


async def _interrupted_twice() -> tuple[SlowUndo, bool]:
    executor = SlowUndo()
    run = engine._Run(executor, prog="ifup", err=io.StringIO(), verbose=False)  # type: ignore[arg-type]
    journal: list[dict[str, Any]] = []
    task = asyncio.create_task(run.up(_plan(), journal.extend))
    await asyncio.sleep(0.01)  # the addresses are applied, the hook runs
    task.cancel()  # the first SIGTERM
    await asyncio.wait_for(executor.undo_started.wait(), 5)
    task.cancel()  # a second one, and a third, while the undo runs
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.sleep(0.01)
    ended_early = task.done()
    executor.release.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    return executor, ended_early


def test_a_second_cancel_during_the_undo_waits_for_its_end() -> None:
    executor, ended_early = asyncio.run(_interrupted_twice())
    assert not ended_early, "the ifup gave up its undo half-way"
    assert [op.address for op in executor.undone] == list(reversed(ADDRESSES))  # type: ignore[attr-defined]


def test_the_undo_is_one_batch_that_reads_nothing() -> None:
    executor, _ = asyncio.run(_interrupted_twice())
    undo = [(ops, record) for ops, record in executor.batches if isinstance(ops[0], DelAddress)]
    assert len(undo) == 1
    ops, record = undo[0]
    assert len(ops) == len(ADDRESSES) and record is False
