"""The engine on hand-made plans in a namespace: journal, exact undo, rollback.

Independent of the planner: the plans are built here from ops, as the planner would.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ifvip.ifupdown.plan import (
    AddAddress,
    AddRoute,
    Op,
    Plan,
    SetLink,
    Shell,
    StanzaPlan,
    Step,
    WriteSysctl,
)
from ifvip.interfaces.model import Origin
from tests.netns.kernelstate import (
    IFVIP,
    Twins,
    engine_argv,
    engine_payload,
    run_engine,
    snapshot,
)
from tests.programs import AS_ROOT

pytestmark = [
    pytest.mark.root,
    AS_ROOT,
]

HERE = Origin("/etc/network/interfaces", 7)
ENV = (("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), ("IFACE", "eth0"))


def _stanza(family: str, steps: list[tuple[str, Op]]) -> StanzaPlan:
    return StanzaPlan(
        "eth0", family, "static", None, tuple(Step(op, "post-up", stage) for stage, op in steps)
    )


def _up_plan(*extra: tuple[str, Op]) -> Plan:
    inet = _stanza(
        "inet",
        [
            ("method", AddAddress(ifname="eth0", address="198.51.100.10/24", label="eth0",
                                  broadcast="198.51.100.255")),
            ("method", SetLink(ifname="eth0", mtu=1400, up=True)),
            ("method", AddRoute(family=4, dst=None, gateway="198.51.100.1", dev="eth0",
                                onlink=True)),
            ("up", AddAddress(ifname="eth0", address="203.0.113.5/24", origin=HERE)),
            ("up", AddRoute(family=4, dst="203.0.113.128/25", gateway="198.51.100.1",
                            dev="eth0", table=100, origin=HERE)),
        ],
    )  # fmt: skip
    inet6 = _stanza(
        "inet6",
        [
            ("pre-up", WriteSysctl(name="net.ipv6.conf.eth0.accept_dad", value="0")),
            ("method", WriteSysctl(name="net.ipv6.conf.eth0.autoconf", value="0")),
            ("method", AddAddress(ifname="eth0", address="2001:db8::10/64")),
            ("method", AddRoute(family=6, gateway="2001:db8::1", dev="eth0", replace=True,
                                onlink=True)),
            *extra,
        ],
    )  # fmt: skip
    return Plan("eth0", "eth0", "start", stanzas=(inet, inet6))


def _down_plan() -> Plan:
    # What the planner's down plan has in the method slots; with a journal they are replaced.
    inet = _stanza("inet", [("method", SetLink(ifname="eth0", up=False))])
    inet6 = _stanza("inet6", [("method", SetLink(ifname="eth0", up=False))])
    return Plan("eth0", "eth0", "stop", stanzas=(inet, inet6))


def test_ifup_journals_and_ifdown_undoes_exactly(tmp_path: Path) -> None:
    with Twins(1) as twins:
        (ns,) = twins.names
        before = snapshot(ns)
        done = run_engine(ns, "ifup", [_up_plan()], tmp_path)
        assert done.returncode == 0, done.stderr
        up = snapshot(ns)
        assert "+ addresses ('eth0', 2, '203.0.113.5'" in before.diff(up)
        assert "~ sysctl net/ipv6/conf/eth0/accept_dad: 1 -> 0" in before.diff(up)
        assert (tmp_path / "ifstate").read_text() == "eth0=eth0\n"
        journal = tmp_path / "ifvip-journal.eth0.jsonl"
        assert journal.stat().st_mode & 0o777 == 0o600
        lines = journal.read_text().splitlines()
        ops = [json.loads(line)["op"]["op"] for line in lines[1:]]
        assert ops.count("AddAddress") == 3 and ops.count("WriteSysctl") == 2

        done = run_engine(ns, "ifdown", [_down_plan()], tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""  # no "address not found" noise
        assert snapshot(ns).diff(before) == ""
        assert (tmp_path / "ifstate").read_text() == ""
        assert (tmp_path / "ifstate.eth0").read_text() == ""
        assert not journal.exists()


@pytest.mark.parametrize("position", ["first", "middle", "last"])
def test_failed_ifup_undoes_everything(tmp_path: Path, position: str) -> None:
    failing = ("up", Shell(command="exit 3", env=ENV, origin=HERE, text="exit 3"))
    plan = _up_plan(failing)
    inet, inet6 = plan.stanzas
    if position == "first":
        inet = StanzaPlan("eth0", "inet", "static", None, (Step(failing[1], "pre-up", "pre-up"),
                                                           *inet.steps))  # fmt: skip
        inet6 = _up_plan().stanzas[1]
    elif position == "middle":
        inet6 = _up_plan().stanzas[1]
        steps = (*inet.steps, Step(failing[1], "post-up", "up"))
        inet = StanzaPlan("eth0", "inet", "static", None, steps)
    plan = Plan("eth0", "eth0", "start", stanzas=(inet, inet6))
    with Twins(1) as twins:
        (ns,) = twins.names
        before = snapshot(ns)
        done = run_engine(ns, "ifup", [plan], tmp_path)
        assert done.returncode == 1
        assert "ifup: /etc/network/interfaces:7: " in done.stderr
        assert "exit 3: exit status 3" in done.stderr
        assert "failed to bring up eth0" in done.stderr
        assert snapshot(ns).diff(before) == ""
        assert (tmp_path / "ifstate").read_text() == ""
        assert not (tmp_path / "ifvip-journal.eth0.jsonl").exists()


def test_kernel_error_names_the_line(tmp_path: Path) -> None:
    text = "ip route add 203.0.113.128/25 via 198.51.100.1 table 100"
    dup = ("up", AddRoute(family=4, dst="203.0.113.128/25", gateway="198.51.100.1",
                          dev="eth0", table=100, origin=HERE, text=text))  # fmt: skip
    with Twins(1) as twins:
        (ns,) = twins.names
        before = snapshot(ns)
        done = run_engine(ns, "ifup", [_up_plan(dup)], tmp_path)
        assert done.returncode == 1
        assert (
            "ifup: /etc/network/interfaces:7: up ip route add 203.0.113.128/25 via "
            "198.51.100.1 table 100: File exists"
        ) in done.stderr
        assert snapshot(ns).diff(before) == ""


@contextlib.contextmanager
def _engine_until(
    ns: str, payload: str, marker: Path, *, stderr: int
) -> Iterator[subprocess.Popen[str]]:
    """The engine child in `ns`, given `payload`, once its hook has made `marker`; it is
    killed on the way out if still running."""
    with subprocess.Popen(
        engine_argv(ns),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
    ) as child:
        try:
            assert child.stdin is not None
            child.stdin.write(payload)
            child.stdin.close()
            deadline = time.monotonic() + 30
            while not marker.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert marker.exists(), "the hook never started"
            yield child
        finally:
            if child.poll() is None:
                child.kill()


def test_sigterm_during_ifup_undoes_it(tmp_path: Path) -> None:
    """ifupdown stops on SIGTERM and leaves what it did; ifvip undoes it first."""
    marker = tmp_path / "hook-started"
    slow = ("up", Shell(command=f"touch {marker}; sleep 30", env=ENV, origin=HERE))
    with Twins(1) as twins:
        (ns,) = twins.names
        before = snapshot(ns)
        payload = engine_payload("ifup", [_up_plan(slow)], tmp_path, False)
        with _engine_until(ns, payload, marker, stderr=subprocess.PIPE) as child:
            assert "203.0.113.5" in before.diff(snapshot(ns))  # applied so far
            child.send_signal(signal.SIGTERM)
            child.wait(timeout=20)
            assert child.stderr is not None
            assert child.returncode == 130, child.stderr.read()
        assert snapshot(ns).diff(before) == ""
        assert (tmp_path / "ifstate").read_text() == ""
        assert not (tmp_path / "ifvip-journal.eth0.jsonl").exists()


def test_ifup_killed_half_way_is_undone_by_ifdown(tmp_path: Path) -> None:
    """The journal is written as the ifup goes: after a SIGKILL, ifdown still knows what
    was applied and undoes it exactly."""
    marker = tmp_path / "hook-pid"
    slow = ("up", Shell(command=f"echo $$ > {marker}; exec sleep 30", env=ENV, origin=HERE))
    with Twins(1) as twins:
        (ns,) = twins.names
        before = snapshot(ns)
        payload = engine_payload("ifup", [_up_plan(slow)], tmp_path, False)
        try:
            with _engine_until(ns, payload, marker, stderr=subprocess.DEVNULL) as child:
                child.kill()
                child.wait(timeout=20)
        finally:
            time.sleep(0.1)  # the hook left behind by the killed engine: ours, by PID
            if marker.exists() and marker.read_text().strip().isdigit():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(marker.read_text()), signal.SIGKILL)
        assert "203.0.113.5" in before.diff(snapshot(ns))  # left half-applied
        assert (tmp_path / "ifstate").read_text() == "eth0=eth0\n"
        done = run_engine(ns, "ifdown", [_down_plan()], tmp_path)
        assert done.returncode == 0, done.stderr
        assert snapshot(ns).diff(before) == ""


def test_sigterm_to_ifvip_ifup_undoes_it(tmp_path: Path) -> None:
    """The command line handles SIGTERM as the engine does: `ifvip ifup` stops, undoes
    what it applied (addresses, routes, the link), records nothing and exits 1."""
    marker = tmp_path / "hook-started"
    config = tmp_path / "interfaces"
    config.write_text(
        "iface eth0 inet static\n"
        "    address 203.0.113.5/24\n"
        "    up ip route add 198.51.100.0/26 via 203.0.113.1 dev $IFACE table 100\n"
        f"    up touch {marker}; sleep 30\n"
    )
    state = tmp_path / "state"
    with Twins(1) as twins:
        (ns,) = twins.names
        before = snapshot(ns)
        argv = ["ip", "netns", "exec", ns, *IFVIP, "ifup", "-i", str(config)]
        argv += [f"--state-dir={state}", "--no-scripts", "eth0"]
        with subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        ) as child:
            try:
                deadline = time.monotonic() + 30
                while not marker.exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert marker.exists(), "the hook never started"
                applied = before.diff(snapshot(ns))
                assert "203.0.113.5" in applied and "198.51.100.0" in applied
                child.send_signal(signal.SIGTERM)
                child.wait(timeout=20)
                assert child.stderr is not None
                err = child.stderr.read()
                assert child.returncode == 1, err
                assert "ifup: interrupted" in err
            finally:
                if child.poll() is None:
                    child.kill()
        assert snapshot(ns).diff(before) == ""
        assert (state / "ifstate").read_text() == ""
        assert not (state / "ifvip-journal.eth0.jsonl").exists()


def test_more_signals_during_the_undo_do_not_cut_it_short(tmp_path: Path) -> None:
    """SIGTERM stops a big ifup; the SIGINTs and SIGTERMs that follow while it undoes its
    work (an impatient operator, a supervisor) wait for the undo's end: nothing is left,
    and "what it had done was undone" is true."""
    marker = tmp_path / "hook-started"
    config = tmp_path / "interfaces"
    v4 = [f"198.51.100.{n}/24" for n in range(10, 250)]
    v6 = [f"2001:db8:1::{n:x}/64" for n in range(0x100, 0x100 + 360)]
    lines = [f"    up ip addr add {a} dev $IFACE" for a in v4]
    lines += [f"    up ip -6 addr add {a} dev $IFACE nodad" for a in v6]
    config.write_text(
        "iface eth0 inet static\n    address 203.0.113.5/24\n"
        + "\n".join(lines)
        + f"\n    up touch {marker}; sleep 30\n"
    )
    state = tmp_path / "state"
    with Twins(1) as twins:
        (ns,) = twins.names
        before = snapshot(ns)
        argv = ["ip", "netns", "exec", ns, *IFVIP, "ifup", "-i", str(config)]
        argv += [f"--state-dir={state}", "--no-scripts", "eth0"]
        with subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        ) as child:
            try:
                deadline = time.monotonic() + 60
                while not marker.exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert marker.exists(), "the hook never started"
                child.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + 120
                sent = 0
                while child.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.01)
                    with contextlib.suppress(ProcessLookupError):
                        child.send_signal(signal.SIGINT if sent % 2 else signal.SIGTERM)
                    sent += 1
                child.wait(timeout=20)
                assert child.stderr is not None
                err = child.stderr.read()
                assert child.returncode == 1, err
                assert "ifup: interrupted: what it had done was undone" in err
                assert "Traceback" not in err
            finally:
                if child.poll() is None:
                    child.kill()
        assert snapshot(ns).diff(before) == ""
        assert (state / "ifstate").read_text() == ""
        assert not (state / "ifvip-journal.eth0.jsonl").exists()
