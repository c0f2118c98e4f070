"""The failover users actually run, as a scenario matrix (issue 13; RELIABILITY.md).

Two ifvip hosts in namespaces (tests/reliability/scenarios.py): h1 preferred, h2 backup.
Each cell is {CARP, VRRP} x {preempt on both, on h1 only, on none} x {`--vip`, `--manage`
of the seed's DMZ file, Debian's `ucarp-*` stanzas, `-u/-d` scripts} x one event. In
every cell, after the event:

- some host holds within the protocol's bound (a bow-out: one round trip plus the new
  master's own work; a death: master-down + skew plus that work);
- the two hosts hold together only within the documented window (a frozen or dead master's
  addresses go when their lifetime ends; a hand-over overlaps only by the release);
- every host's kernel state equals its reference at the end: the master's is real
  ifupdown's ifup of the stanzas (or the VIP on eth0), without the lifetimes; a backup's
  is its state before anything ran;
- `ifvip status` tells the truth: the holder says MASTER, the other not, a fault is shown
  with its failing line (and status exits 1).

The full product would be 2 x 3 x 4 x 9 cells; these are the ones that differ (the suite
has a 30-minute budget). Merged: preemption is varied where it decides the outcome (the
bow-out after SIGTERM, who ends as master after a restart or a freeze, SIGUSR2); the
`--vip` role's SIGKILL expiry is covered by test_steady_state; `ucarp-*` stanzas are CARP
only; a `--vip` group has no MASTER action that can be made to fail from outside.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable

import pytest

from tests.netns.kernelstate import AF_INET
from tests.programs import INTEROP
from tests.reliability.scenarios import Bounds, Cell, ScenarioLab, Timeline, bounds

pytestmark = INTEROP

H1: frozenset[str] = frozenset({"h1"})
H2: frozenset[str] = frozenset({"h2"})
RELEASE_OVERLAP = 0.6  # s: a hand-over overlaps by at most the old master's release (ifdown)
STOP = 5.0  # s of SIGSTOP

CELLS = [
    # SIGTERM (`docker stop`): the bow-out, taken at once by a preempting backup too.
    *(Cell("carp", "both", r, "term") for r in ("vip", "manage", "ucarp", "scripts")),
    *(Cell("vrrp", "both", r, "term") for r in ("vip", "manage", "scripts")),
    Cell("carp", "one", "vip", "term"),
    Cell("carp", "none", "vip", "term"),
    # SIGKILL (`docker kill`): the dead man's switch covers what MASTER brought up.
    Cell("carp", "both", "manage", "kill"),
    Cell("carp", "both", "ucarp", "kill"),
    Cell("vrrp", "both", "manage", "kill"),
    Cell("carp", "both", "scripts", "kill"),
    # SIGKILL, then a restart at once with an empty state dir (a container's fresh /run).
    *(Cell("carp", "both", r, "kill-restart") for r in ("vip", "manage", "ucarp", "scripts")),
    Cell("vrrp", "both", "manage", "kill-restart"),
    Cell("carp", "none", "manage", "kill-restart"),
    # SIGSTOP 5 s + SIGCONT.
    Cell("carp", "both", "vip", "stop-cont"),
    Cell("vrrp", "none", "manage", "stop-cont"),
    # SIGUSR2 (demote, then promote).
    Cell("carp", "both", "manage", "usr2"),
    Cell("vrrp", "one", "vip", "usr2"),
    # A health check that fails, then recovers.
    Cell("carp", "both", "vip", "check"),
    Cell("vrrp", "both", "manage", "check"),
    # Carrier loss on the master's eth0, then back.
    Cell("carp", "both", "ucarp", "carrier"),
    Cell("vrrp", "both", "manage", "carrier"),
    # h1's MASTER action fails: a fault, not a MASTER.
    Cell("carp", "both", "manage", "action"),
    Cell("carp", "both", "ucarp", "action"),
    Cell("carp", "both", "scripts", "action"),
    Cell("vrrp", "both", "manage", "action"),
    Cell("vrrp", "both", "scripts", "action"),
]


def _overlap(timeline: Timeline) -> float:
    return timeline.longest(lambda h: len(h) == 2)


def _record(lab: ScenarioLab, timeline: Timeline, took: float | None) -> None:
    """The cell's figures for RELIABILITY.md (IFVIP_SCENARIO_REPORT=FILE collects them)."""
    lab.figures.update(
        takeover=took,
        gap=round(timeline.longest(lambda h: not h), 3),
        overlap=round(_overlap(timeline), 3),
    )


def _settle(lab: ScenarioLab, extra: tuple[str, ...] = ()) -> None:
    """h1 first, h2 a second later: h1 is master, h2 backup."""
    lab.start("h1", extra=extra)
    time.sleep(1.0)
    lab.start("h2", extra=extra)
    timeline = lab.watch(12.0, until=lambda h: h == H1)
    assert timeline.last() == H1, f"h1 did not become the sole holder:\n{lab.text('h1')}"
    _until_state(lab, "h2", "BACKUP")


def _until_state(lab: ScenarioLab, host: str, *states: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    state = "?"
    while time.monotonic() < deadline:
        _, snap = lab.status(host)
        groups = snap.get("groups") or [{}]
        state = groups[0].get("state", "?")
        if state in states and groups[0].get("settled", True):
            return state
        time.sleep(0.1)
    raise AssertionError(f"{host} is {state}, not {states}:\n{lab.text(host)}")


def _final(
    lab: ScenarioLab, master: str | None, *, running: tuple[str, ...] = ("h1", "h2")
) -> None:
    """The end state: `master` alone holds, kernel states equal the references, status true."""
    timeline = lab.watch(
        10.0, until=lambda h: h == (frozenset({master}) if master else frozenset())
    )
    want = frozenset({master}) if master else frozenset()
    assert timeline.last() == want, f"holders {set(timeline.last())}, wanted {set(want)}"
    for name, host in lab.hosts.items():
        if name in running:
            _until_state(lab, name, *(("MASTER",) if name == master else ("BACKUP", "FAULT")))
        reference = host.master_ref if name == master else host.backup_ref
        assert reference is not None
        diff = lab.kernel_state(name).diff(reference)
        assert not diff, f"{name} kernel state differs from its reference:\n{diff}"
    for name in running:
        code, snap = lab.status(name)
        (group,) = snap["groups"]
        assert group["state"] == ("MASTER" if name == master else group["state"])
        if name != master:
            assert group["state"] in ("BACKUP", "FAULT")
        if lab.cell.role == "manage":
            assert group["vips"] == ([] if lab.cell.protocol == "carp" else ["198.51.100.100/24"])
        assert code == (1 if group.get("fault") else 0)


# ------------------------------------------------------------------ events


def _term(lab: ScenarioLab, b: Bounds) -> None:
    lab.signal("h1", signal.SIGTERM)
    timeline = lab.watch(b.bow_out + 3.0, until=lambda h: h == H2)
    took = timeline.first(lambda h: "h2" in h)
    _record(lab, timeline, took)
    assert took is not None and took <= b.bow_out, f"h2 took over after {took} s"
    assert timeline.longest(lambda h: not h) <= b.bow_out
    assert _overlap(timeline) <= RELEASE_OVERLAP
    assert lab.wait_exit("h1") == 0
    _final(lab, "h2", running=("h2",))


def _leftovers(lab: ScenarioLab, name: str) -> list[str]:
    """What MASTER brought up that is still on `name`, as far as the kernel drops it with an
    expired address: the stanzas' addresses and the IPv4 routes through them. (The link stays
    up, sysctls keep their values, and an expired IPv6 prefix route stays listed until the
    kernel's garbage collection: the next start removes them.)"""
    host = lab.hosts[name]
    assert host.master_ref is not None and host.backup_ref is not None
    now = lab.kernel_state(name)
    added = [
        row
        for row in host.master_ref.addresses
        if row not in host.backup_ref.addresses and not str(row[2]).startswith("fe80:")
    ]
    routes = [
        row
        for row in host.master_ref.routes
        if row not in host.backup_ref.routes and row[0] == AF_INET
    ]
    return [f"address {r}" for r in added if r in now.addresses] + [
        f"route {r}" for r in routes if r in now.routes
    ]


def _kill(lab: ScenarioLab, b: Bounds) -> None:
    lab.signal("h1", signal.SIGKILL)
    lab.wait_exit("h1")
    expires = lab.cell.role != "scripts"
    timeline = lab.watch(b.expiry + 2.0, until=lambda h: h == H2)
    took = timeline.first(lambda h: "h2" in h)
    _record(lab, timeline, took)
    assert took is not None and took <= b.takeover, f"h2 took over after {took} s"
    if expires:
        # The dead host's addresses go by themselves: both hold only until they expire.
        gone = timeline.first(lambda h: "h1" not in h)
        lab.figures["expired"] = gone
        assert gone is not None and gone <= b.expiry, f"h1 still held {gone} s after death"
        assert _leftovers(lab, "h1") == []
    else:
        # A script's `ip addr add` has no lifetime: like ucarp's, it stays until a restart
        # runs the down script (RELIABILITY.md).
        assert timeline.last() == frozenset({"h1", "h2"})
    # `docker start` again, with the state it had: the start-up BACKUP step cleans the rest.
    lab.start("h1")
    _final(lab, "h1" if lab.cell.preempts("h1") else "h2")


def _kill_restart(lab: ScenarioLab, b: Bounds) -> None:
    lab.signal("h1", signal.SIGKILL)
    lab.wait_exit("h1")
    time.sleep(0.3)
    lab.start("h1", fresh_state=True)  # before the leftovers expire
    timeline = lab.watch(b.takeover + 1.5, until=lambda h: len(h) == 1 and "h1" not in h)
    _record(lab, timeline, timeline.first(lambda h: "h2" in h))
    lab.figures["cleaned"] = timeline.first(lambda h: "h1" not in h)
    # Nobody holds only between the restarted h1's clean-up and the next master's takeover
    # (h2's master-down, or h1 preempting it as soon as it hears h2).
    assert timeline.longest(lambda h: not h) <= b.takeover
    _final(lab, "h1" if lab.cell.preempts("h1") else "h2")
    assert "File exists" not in lab.text("h1")


def _stop_cont(lab: ScenarioLab, b: Bounds) -> None:
    lab.signal("h1", signal.SIGSTOP)
    during = lab.watch(STOP, until=None)
    lab.signal("h1", signal.SIGCONT)
    took = during.first(lambda h: "h2" in h)
    assert took is not None and took <= b.takeover
    after = lab.watch(4.0, until=lambda h: len(h) == 1)
    _record(lab, Timeline(during.samples + after.shifted(STOP).samples), took)
    # Both hold from h2's takeover until the thawed h1 is heard (it still is the better
    # master: h2 yields in either protocol, preempting or not).
    assert _overlap(during) + _overlap(after) <= STOP - took + 1.0
    _final(lab, "h1")


def _usr2(lab: ScenarioLab, b: Bounds) -> None:
    lab.signal("h1", signal.SIGUSR2)
    timeline = lab.watch(b.bow_out + 3.0, until=lambda h: h == H2)
    took = timeline.first(lambda h: "h2" in h)
    _record(lab, timeline, took)
    assert took is not None and took <= b.bow_out
    assert _overlap(timeline) <= RELEASE_OVERLAP
    _final(lab, "h2")
    lab.signal("h1", signal.SIGUSR2)  # promoted again
    _final(lab, "h1" if lab.cell.preempts("h1") else "h2")


def _check(lab: ScenarioLab, b: Bounds) -> None:
    flag = lab.tmp / "fail-h1"
    flag.touch()
    timeline = lab.watch(b.bow_out + 3.0, until=lambda h: h == H2)
    took = timeline.first(lambda h: "h2" in h)
    _record(lab, timeline, took)
    assert took is not None and took <= b.bow_out + 0.6  # + the check's interval
    assert _overlap(timeline) <= RELEASE_OVERLAP
    _final(lab, "h2")
    flag.unlink()
    _final(lab, "h1")


def _carrier(lab: ScenarioLab, b: Bounds) -> None:
    lab.carrier("h1", up=False)
    timeline = lab.watch(b.takeover + 3.0, until=lambda h: h == H2)
    took = timeline.first(lambda h: "h2" in h)
    _record(lab, timeline, took)
    assert took is not None and took <= b.takeover
    assert _overlap(timeline) == 0.0  # h1 releases as its link goes
    _final(lab, "h2")
    lab.carrier("h1", up=True)
    _final(lab, "h1")


def _action(lab: ScenarioLab, b: Bounds) -> None:
    """h1's MASTER action fails (set up in its files): h1 bows out, h2 serves, h1 says why."""
    lab.start("h1")
    time.sleep(1.0)
    lab.start("h2")
    timeline = lab.watch(b.takeover + 5.0, until=lambda h: h == H2)
    _record(lab, timeline, timeline.first(lambda h: h == H2))
    assert timeline.last() == H2, f"holders {set(timeline.last())}:\n{lab.text('h1')}"
    # h1 was briefly master before its action failed; h2 took its bow-out at once.
    gap = timeline.longest(lambda h: not h)
    assert gap <= b.takeover + b.bow_out
    # Out for the backoff (30 s): h2 keeps the VIP, preempting h1 or not.
    assert lab.watch(3.0).longest(lambda h: h != H2) == 0.0
    _final(lab, "h2")
    code, snap = lab.status("h1")
    (group,) = snap["groups"]
    assert code == 1
    fault = group["fault"]
    expected = {"manage": "up /bin/false", "ucarp": "up /bin/false", "scripts": "exited with 1"}
    assert expected[lab.cell.role] in fault, fault
    if lab.cell.role != "scripts":
        assert ":" in fault.split(" ")[0]  # path:line of the failing hook


EVENTS: dict[str, Callable[[ScenarioLab, Bounds], None]] = {
    "term": _term,
    "kill": _kill,
    "kill-restart": _kill_restart,
    "stop-cont": _stop_cont,
    "usr2": _usr2,
    "check": _check,
    "carrier": _carrier,
}


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.id)
def test_scenario(cell: Cell) -> None:
    with ScenarioLab(cell) as lab:
        _run_cell(lab, cell)
        report = os.environ.get("IFVIP_SCENARIO_REPORT")
        if report:
            with open(report, "a") as out:
                out.write(json.dumps({"cell": cell.id, **lab.figures}) + "\n")


def _run_cell(lab: ScenarioLab, cell: Cell) -> None:
    b = bounds(cell)
    if cell.event == "action":
        _action(lab, b)
        return
    if cell.event == "check":
        _settle_with_checks(lab)
    else:
        _settle(lab)
    EVENTS[cell.event](lab, b)


def _settle_with_checks(lab: ScenarioLab) -> None:
    """As _settle, each host with a script check that fails while its flag file exists."""
    options = ("--check-interval", "0.2", "--check-fall", "1", "--check-rise", "1")
    for name in lab.hosts:
        check = f"test ! -e {lab.tmp / f'fail-{name}'}"
        lab.start(name, extra=(*options, "--check-script", check))
        time.sleep(1.0)
    assert lab.watch(12.0, until=lambda h: h == H1).last() == H1
    _until_state(lab, "h2", "BACKUP")


# ------------------------------------------------------------------ SIGTERM inside a job

# s after the MASTER transition is logged: the DMZ job takes about 40 ms here, so every
# 4 ms across it, and twice after it.
OFFSETS = [*(i * 0.004 for i in range(16)), 0.1, 0.25]


@pytest.mark.parametrize("failing", [False, True], ids=["ifup", "failing-ifup"])
def test_sigterm_at_any_moment_of_a_master_job_leaves_the_host_as_before(failing: bool) -> None:
    """A lone host (master at once, deadratio 1) is stopped at many offsets into its managed
    ifup of the DMZ stanzas, a succeeding one and one that fails on its last hook: every
    time, the host ends exactly as it was before the job (issue 13: 1 run in 34 left
    eth1's addresses, link and default route)."""
    cell = Cell("carp", "both", "manage", "action" if failing else "term")
    with ScenarioLab(cell) as lab:
        host = lab.hosts["h1"]
        assert host.backup_ref is not None
        for offset in OFFSETS:
            before = lab.text("h1").count("Entering MASTER STATE")
            lab.start("h1", extra=("-r", "1"))
            deadline = time.monotonic() + 10.0
            while lab.text("h1").count("Entering MASTER STATE") == before:
                assert time.monotonic() < deadline, lab.text("h1")
                time.sleep(0.005)
            time.sleep(offset)
            lab.signal("h1", signal.SIGTERM)
            assert lab.wait_exit("h1") == 0, lab.text("h1")
            diff = lab.kernel_state("h1").diff(host.backup_ref)
            assert not diff, f"SIGTERM {offset:.3f} s into the job left:\n{diff}"
