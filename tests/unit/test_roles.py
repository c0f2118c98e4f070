"""What MASTER/BACKUP mean: roles driven with fakes (engine, kernel), scripts, the VIP journal."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from ifvip.daemon.journal import RunStateDir
from ifvip.daemon.roles import EngineRole, Roles, ScriptRole, VipRole
from ifvip.daemon.settings import Vip
from ifvip.hookenv import HOOK_PATH
from ifvip.ifupdown.netlink import KernelError


class FakeEngine:
    def __init__(self, fail: str | None = None) -> None:
        self.calls: list[str] = []
        self.fail = fail

    async def up(self, logical: str, lifetime: int | None = None) -> None:
        self.calls.append(f"up {logical}" + (f" lifetime {lifetime}" if lifetime else ""))
        if logical == self.fail:
            raise RuntimeError("/etc/network/interfaces:9: up ip route add x: File exists")

    async def down(self, logical: str) -> None:
        self.calls.append(f"down {logical}")

    async def refresh(self, logical: str, lifetime: int) -> None:
        self.calls.append(f"refresh {logical} {lifetime}")


class FakeKernel:
    """Addresses per device; add with replace semantics, del raises like the kernel."""

    def __init__(self) -> None:
        self.addrs: dict[tuple[str, str], int | None] = {}
        self.log: list[str] = []

    async def add_address(self, device: str, address: Any, **kw: Any) -> None:
        self.log.append(f"add {address} {device} valid={kw.get('valid')} replace={kw['replace']}")
        self.addrs[(device, str(address))] = kw.get("valid")

    async def del_address(self, device: str, address: Any) -> None:
        self.log.append(f"del {address} {device}")
        if self.addrs.pop((device, str(address)), "absent") == "absent":
            raise KernelError("del", errno.EADDRNOTAVAIL, "Cannot assign requested address")


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_engine_role_fails_at_the_first_failing_stanza_and_ifdowns_all_in_reverse() -> None:
    """A failing ifup fails the MASTER action with its line (the group's fault); the release
    that follows takes every stanza down, the ones never brought up included."""
    engine = FakeEngine(fail="eth1")
    role = EngineRole("(vhid 1)", engine, ["eth0", "eth1", "eth1:ucarp"])
    with pytest.raises(RuntimeError, match="interfaces:9: up ip route add x: File exists"):
        _run(role.master())
    _run(role.backup(False))
    assert engine.calls == ["up eth0", "up eth1", "down eth1:ucarp", "down eth1", "down eth0"]


def test_engine_role_gives_its_addresses_a_lifetime_that_refresh_extends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The dead man's switch for managed stanzas: refreshed on each advert while held; after
    a silence as long as the lifetime (a frozen daemon) the stanzas go down and up again."""
    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    engine = FakeEngine()
    role = EngineRole("(vhid 1)", engine, ["eth1"], lifetime=7)
    _run(role.refresh())  # not holding: nothing
    _run(role.master())
    clock[0] += 1
    _run(role.refresh())
    clock[0] += 7
    _run(role.refresh())
    _run(role.backup(False))
    _run(role.refresh())  # released: nothing
    assert engine.calls == [
        "up eth1 lifetime 7",
        "refresh eth1 7",
        "down eth1",
        "up eth1 lifetime 7",
        "down eth1",
    ]


def test_state_dir_is_private_and_the_journal_round_trips(tmp_path: Path) -> None:
    state = RunStateDir.open(tmp_path / "state")
    assert stat.S_IMODE(os.stat(state.path).st_mode) == 0o700
    journal = state.journal("carp.1.eth0.42")
    assert journal.read() == []
    journal.write([("eth0", "198.51.100.100/24")])
    assert journal.read() == [("eth0", "198.51.100.100/24")]
    assert stat.S_IMODE(os.stat(journal.path).st_mode) == 0o600
    journal.clear()
    assert journal.read() == []


def _vip_role(tmp_path: Path, lifetime: int | None = 6) -> tuple[VipRole, FakeKernel]:
    kernel = FakeKernel()
    vips = [("eth0", Vip(ipaddress.ip_interface("198.51.100.100/24")))]
    journal = RunStateDir.open(tmp_path).journal("g")
    return VipRole("(vhid 42)", kernel, vips, journal, lifetime), kernel  # type: ignore[arg-type]


def test_vip_role_journals_before_adding_with_a_lifetime_and_refreshes_only_while_held(
    tmp_path: Path,
) -> None:
    role, kernel = _vip_role(tmp_path)
    _run(role.refresh())
    assert kernel.log == []  # not holding: a refresh must never re-add a released VIP
    _run(role.master())
    assert role.journal.read() == [("eth0", "198.51.100.100/24")]
    _run(role.refresh())
    assert kernel.log == [
        "add 198.51.100.100/24 eth0 valid=6 replace=True",
        "add 198.51.100.100/24 eth0 valid=6 replace=True",
    ]
    _run(role.backup(False))
    _run(role.refresh())
    assert kernel.addrs == {}
    assert kernel.log[-1] == "del 198.51.100.100/24 eth0"
    assert role.journal.read() == []


def test_vip_role_recovers_what_a_crashed_run_left(tmp_path: Path) -> None:
    role, kernel = _vip_role(tmp_path)
    _run(role.master())  # ... and the process dies: the journal stays
    fresh, _ = _vip_role(tmp_path)
    fresh.kernel = kernel  # type: ignore[assignment]
    _run(fresh.recover())
    assert kernel.addrs == {}
    assert fresh.journal.read() == []
    _run(fresh.recover())  # idempotent: nothing journaled, nothing removed


def test_permanent_vips_are_not_refreshed(tmp_path: Path) -> None:
    role, kernel = _vip_role(tmp_path, lifetime=None)
    _run(role.master())
    _run(role.refresh())
    assert kernel.log == ["add 198.51.100.100/24 eth0 valid=None replace=True"]


def test_scripts_get_ucarps_arguments_and_a_fixed_path(tmp_path: Path) -> None:
    out = tmp_path / "out"
    script = tmp_path / "up"
    script.write_text(f'#!/bin/sh\necho "$# $1 $2 $3 $PATH" >> {out}\n')
    script.chmod(0o755)
    role = ScriptRole("(vhid 42)", "eth0", "198.51.100.100", str(script), str(script), "EXTRA")
    _run(role.master())
    _run(role.backup(True))
    lines = out.read_text().splitlines()
    assert lines[0] == f"3 eth0 198.51.100.100 EXTRA {HOOK_PATH}"
    assert len(lines) == 2


def test_a_hanging_script_is_killed_after_its_timeout(tmp_path: Path) -> None:
    script = tmp_path / "hang"
    script.write_text("#!/bin/sh\nexec sleep 30\n")
    script.chmod(0o755)
    role = ScriptRole("(vhid 1)", "eth0", "198.51.100.100", str(script), None, timeout=0.2)
    # Killed, and a failed MASTER action: the group's fault, with the reason.
    with pytest.raises(RuntimeError, match=r"hang ran over 0.2 s and was killed"):
        _run(asyncio.wait_for(role.master(), 5))


@pytest.mark.parametrize(("body", "reason"), [("exit 3", "exited with 3"), (None, "cannot run")])
def test_a_failing_up_script_fails_the_master_action(
    tmp_path: Path, body: str | None, reason: str
) -> None:
    script = tmp_path / "up"
    if body is not None:
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
    role = ScriptRole("(vhid 1)", "eth0", "198.51.100.100", str(script), str(script))
    with pytest.raises(RuntimeError, match=reason):
        _run(role.master())
    _run(role.backup(False))  # a failing down-script is logged, never raised


def test_roles_go_up_in_order_and_down_in_reverse(tmp_path: Path) -> None:
    first, second = FakeEngine(), FakeEngine()
    role = Roles(
        [
            EngineRole("(x)", first, ["a"]),
            EngineRole("(x)", second, ["b"], [ipaddress.ip_address("198.51.100.9")]),
        ]
    )
    _run(role.master())
    _run(role.backup(False))
    assert first.calls == ["up a", "down a"] and second.calls == ["up b", "down b"]
    assert role.addresses() == [ipaddress.ip_address("198.51.100.9")]


@pytest.mark.parametrize("missing", ["ifvip.ifupdown.no_such_engine"])
def test_a_missing_engine_is_a_configuration_problem(
    missing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ifvip.daemon import ifup
    from ifvip.daemon.settings import ConfigProblems

    monkeypatch.setattr(ifup, "ENGINE_MODULE", missing)
    factory = ifup.engine_factory()
    with pytest.raises(ConfigProblems) as error:
        factory("/nonexistent/interfaces")
    assert "managed stanzas need the ifup engine" in error.value.problems[0]


class FakeHook:
    """A user's hook (script, ifup) in a shared log; `hold` makes master() wait on it."""

    hook = True

    def __init__(self, log: list[str], hold: asyncio.Event | None = None) -> None:
        self.log = log
        self.hold = hold

    async def recover(self) -> None:
        return None

    async def refresh(self) -> None:
        return None

    async def master(self) -> None:
        self.log.append("hook up")
        if self.hold is not None:
            await self.hold.wait()

    async def backup(self, initial: bool) -> None:
        self.log.append("hook down")

    def addresses(self) -> list[Any]:
        return []


class Ours(FakeHook):
    """ifvip's own part after the VIPs (policy routes): not a hook."""

    hook = False

    async def master(self) -> None:
        self.log.append("routes up")

    async def backup(self, initial: bool) -> None:
        self.log.append("routes down")


def test_vips_go_up_before_the_hooks_and_down_before_them_too(tmp_path: Path) -> None:
    vip, kernel = _vip_role(tmp_path)
    log: list[str] = []
    kernel.log = log
    role = Roles([Roles([FakeHook(log), vip]), Ours(log)])
    _run(role.master())
    _run(role.backup(False))
    adds = [e for e in log if e.startswith("add")]
    dels = [e for e in log if e.startswith("del")]
    assert adds and dels, log
    assert log.index(adds[0]) < log.index("routes up") < log.index("hook up")
    assert log.index("routes down") < log.index(dels[0]) < log.index("hook down")


def test_a_hanging_hook_does_not_delay_the_vip(tmp_path: Path) -> None:
    vip, kernel = _vip_role(tmp_path)
    log: list[str] = []
    kernel.log = log
    role = Roles([FakeHook(log, asyncio.Event()), vip])

    async def main() -> None:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(role.master(), 0.2)

    _run(main())
    assert log[0].startswith("add") and log[-1] == "hook up"


def test_without_our_own_vips_the_hooks_keep_their_place(tmp_path: Path) -> None:
    log: list[str] = []
    role = Roles([FakeHook(log), Ours(log)])  # the hook (ifup) brings the routes' source up
    _run(role.master())
    _run(role.backup(False))
    assert log == ["hook up", "routes up", "routes down", "hook down"]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_cancelled_script_is_killed_with_what_it_started(tmp_path: Path) -> None:
    child = tmp_path / "child"
    script = tmp_path / "hang"
    script.write_text(f"#!/bin/sh\nsleep 300 &\necho $! > {child}\nwait\n")
    script.chmod(0o755)
    role = ScriptRole("(vhid 1)", "eth0", "198.51.100.100", str(script), None, timeout=60)

    async def main() -> None:
        task = asyncio.create_task(role.master())
        for _ in range(250):
            if child.exists() and child.read_text().strip():
                break
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    _run(main())
    pid = int(child.read_text())
    for _ in range(100):
        if not _alive(pid):
            break
        time.sleep(0.02)
    assert not _alive(pid), "the script's child outlived the cancel"


def test_script_timeout_and_hook_bound_reach_the_roles(tmp_path: Path) -> None:
    from ifvip.daemon import ifup

    engine = ifup.engine_factory(str(tmp_path), hook_timeout=7.5)("/nonexistent/interfaces")
    assert isinstance(engine, ifup.CommandEngine) and engine.hook_timeout == 7.5


def test_debian_ucarp_hook_beside_ucarp_stanzas_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from ifvip.daemon.carp.config import build_carp_group, warn_debian_ucarp_hook

    group = build_carp_group(
        interface="eth0",
        srcip="198.51.100.1",
        vhid="42",
        password="secret",
        passfile=None,
        addr="198.51.100.100",
    )
    hook = tmp_path / "ucarp"
    assert not warn_debian_ucarp_hook([group], str(hook))  # not installed
    hook.write_text("#!/bin/sh\n")
    hook.chmod(0o755)
    assert not warn_debian_ucarp_hook([], str(hook))  # no ucarp-* stanza
    with caplog.at_level("WARNING", logger="ifvip"):
        assert warn_debian_ucarp_hook([group], str(hook))
    (record,) = caplog.records
    assert "second speaker" in record.getMessage() and "eth0 (vhid 42)" in record.getMessage()
    assert "secret" not in record.getMessage()
