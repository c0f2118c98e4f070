"""Status snapshot: JSON form, table, SIGUSR1 file, unix-socket server and `ifvip status`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ifvip.cli import cli
from ifvip.daemon.carp.config import build_carp_group
from ifvip.daemon.carp.speaker import CarpSpeaker
from ifvip.daemon.checks import Hysteresis, ProbeResult, TcpCheck, observe
from ifvip.daemon.runtime import Group
from ifvip.daemon.settings import Vip
from ifvip.daemon.status import (
    CheckStatus,
    GroupStatus,
    Snapshot,
    StatusServer,
    StatusUnreachable,
    check_statuses,
    daemon_snapshot,
    default_socket,
    fetch,
    group_status,
    render_table,
    write_snapshot,
)

NOW = 1_800_000_000.0


def _group(**changes: Any) -> GroupStatus:
    fields: dict[str, Any] = {
        "protocol": "carp",
        "name": "vhid 7",
        "interface": "eth0",
        "vrid": 7,
        "state": "MASTER",
        "since": NOW - 75,
        "master": "198.51.100.1",
        "advskew": 0,
        "advert_interval": 1.0,
        "vips": ("203.0.113.10/24",),
        "managed": ("eth1",),
        "checks": (
            CheckStatus("tcp *:80", "tcp", True, True, "listening", 12, "listener"),
            CheckStatus("http http://203.0.113.10/", "http", False, False, "HTTP 503", 2),
        ),
        "counters": {
            "adverts_received": 3,
            "adverts_sent": 340,
            "dropped_auth": 2,
            "dropped_ttl": 1,
            "dropped_own": 0,
            "transitions": 2,
        },
    }
    fields.update(changes)
    return GroupStatus(**fields)


def _snapshot(*groups: GroupStatus) -> Snapshot:
    return Snapshot("0.1.0", 4242, NOW - 3600, NOW, groups or (_group(),))


def test_the_snapshot_survives_json() -> None:
    snapshot = _snapshot(_group(), _group(name="vrid 9", protocol="vrrp", priority=150))
    data = json.loads(snapshot.to_json())
    assert data["schema"] == 1 and data["ready"] is True
    assert data["groups"][0]["drops"] == {"auth": 2, "own": 0, "ttl": 1}
    assert Snapshot.from_dict(data) == snapshot


def test_drops_and_auth_failures() -> None:
    group = _group()
    assert group.drops == {"auth": 2, "own": 0, "ttl": 1}
    assert group.auth_failures == 2


def test_ready_means_every_group_settled_past_init() -> None:
    assert _snapshot().ready
    assert not _snapshot(_group(), _group(state="INIT")).ready
    assert not _snapshot(_group(settled=False)).ready
    assert not Snapshot("0.1.0", 1, NOW, NOW, ()).ready


def test_the_table_has_one_row_per_group_and_details_beneath() -> None:
    table = render_table(_snapshot(_group(demoted_by=("health",))), now=NOW)
    lines = table.splitlines()
    assert lines[0].split()[:5] == ["GROUP", "PROTO", "IFACE", "STATE", "SINCE"]
    row = lines[1]
    for cell in ("vhid 7", "carp", "eth0", "MASTER*", "(75s)", "198.51.100.1", "skew 0"):
        assert cell in row
    assert "203.0.113.10/24" in row and "1/2 ok" in row
    assert row.split()[-5:] == ["3", "340", "2", "3", "2"]
    assert "  demoted by: health" in lines
    assert "  manages: eth1" in lines
    assert (
        "  check tcp *:80: healthy (listening, 12 in a row) (local listener: not master)" in lines
    )
    assert "  check http http://203.0.113.10/: FAILING (HTTP 503, 2 in a row)" in lines
    assert "  drops: auth 2, ttl 1" in lines
    assert lines[-1] == "(* demoted, ~ transition running)"


def test_the_table_of_no_group() -> None:
    snapshot = Snapshot("0.1.0", 1, NOW, NOW, ())
    assert render_table(snapshot) == "ifvip 0.1.0 (pid 1): no group configured\n"


def test_check_statuses_come_from_the_hysteresis() -> None:
    h = observe(
        observe(Hysteresis(), ProbeResult(False, "nothing listens", "listener")), ProbeResult(False)
    )
    (status,) = check_statuses([(TcpCheck(None, 80), h)])
    assert status == CheckStatus("tcp *:80", "tcp", False, False, "", 2, "check")
    (fresh,) = check_statuses([(TcpCheck(None, 80), Hysteresis())])
    assert (fresh.healthy, fresh.last, fresh.streak) == (True, None, 0)


class _Role:
    def addresses(self) -> list[str]:
        return ["203.0.113.10"]


def _carp_group() -> Group:
    config = build_carp_group(
        interface="eth0",
        srcip="198.51.100.1",
        vhid="7",
        password="s3cret-pass",
        passfile=None,
        addr="203.0.113.10",
        masklen="24",
        advskew="20",
    )
    return Group(CarpSpeaker(config), _Role(), kernel=None)  # type: ignore[arg-type]


def test_a_runtime_group_becomes_a_status_without_its_password() -> None:
    status = group_status(_carp_group())
    assert (status.protocol, status.name, status.vrid, status.state) == (
        "carp",
        "vhid 7",
        7,
        "INIT",
    )
    assert status.advskew == 20 and status.vips == ("203.0.113.10/24",)
    assert status.advert_interval == pytest.approx(1 + 20 / 256)
    assert "s3cret" not in Snapshot("0.1.0", 1, NOW, NOW, (status,)).to_json()


def test_a_daemon_snapshot_joins_the_check_runners() -> None:
    class Runner:
        demotions = type("D", (), {"sources": frozenset({"health"})})()

        def verdicts(self) -> list[tuple[TcpCheck, Hysteresis]]:
            return [(TcpCheck(None, 80), Hysteresis(healthy=False))]

    daemon = type("Daemon", (), {"groups": [_carp_group()]})()
    snapshot = daemon_snapshot(
        daemon, {"vhid 7": Runner()}, version="0.1.0", started=NOW, now=lambda: NOW + 1
    )
    (group,) = snapshot.groups
    assert group.demoted_by == ("health",)
    assert [c.name for c in group.checks] == ["tcp *:80"] and not group.checks[0].healthy
    assert snapshot.taken == NOW + 1 and snapshot.pid == os.getpid()


# ------------------------------------------------------------------------- the dump


def test_sigusr1_dump_is_written_atomically(tmp_path: Path) -> None:
    path = write_snapshot(_snapshot(), str(tmp_path / "state"))
    assert path == tmp_path / "state" / "status.json"
    assert Snapshot.from_dict(json.loads(path.read_text())) == _snapshot()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    write_snapshot(_snapshot(_group(state="BACKUP")), str(tmp_path / "state"))
    assert json.loads(path.read_text())["groups"][0]["state"] == "BACKUP"
    assert sorted(p.name for p in path.parent.iterdir()) == ["status.json"]


# ------------------------------------------------------------------------- server and client


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, list[Snapshot]]]:
    """A StatusServer on its own loop in a thread; the list holds what it serves."""
    path = default_socket(str(tmp_path / "run"))
    current = [_snapshot()]
    loop = asyncio.new_event_loop()
    server = StatusServer(path, lambda: current[0])
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(server.close())
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield path, current
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def test_the_socket_serves_the_current_snapshot(served: tuple[str, list[Snapshot]]) -> None:
    path, current = served
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert fetch(path) == current[0]
    current[0] = _snapshot(_group(state="BACKUP", master="198.51.100.2"))
    assert fetch(path).groups[0].master == "198.51.100.2"


def test_an_unknown_request_gets_an_error(served: tuple[str, list[Snapshot]]) -> None:
    path, _ = served
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        client.connect(path)
        client.sendall(b"reload\n")
        answer = json.loads(client.recv(4096))
    assert answer == {"error": "unknown request 'reload'; send 'status'"}


def test_a_second_daemon_on_the_same_socket_is_refused(
    served: tuple[str, list[Snapshot]],
) -> None:
    path, _ = served

    async def second() -> None:
        await StatusServer(path, _snapshot).start()

    with pytest.raises(OSError, match="another ifvip serves"):
        asyncio.run(second())


async def _serve_once(path: str) -> Snapshot:
    """Start a status server on `path`, fetch one snapshot from it, close it."""
    server = StatusServer(path, _snapshot)
    await server.start()
    try:
        return await asyncio.to_thread(fetch, path)
    finally:
        await server.close()


def test_a_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = str(tmp_path / "ifvip.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(path)
    stale.close()  # the file stays, nobody listens: a killed daemon's

    assert asyncio.run(_serve_once(path)) == _snapshot()
    assert not os.path.exists(path)


def test_a_regular_file_in_the_way_is_not_removed(tmp_path: Path) -> None:
    path = tmp_path / "ifvip.sock"
    path.write_text("precious\n")
    with pytest.raises(OSError, match="not a socket"):
        asyncio.run(StatusServer(str(path), _snapshot).start())
    assert path.read_text() == "precious\n"


def test_unreachable_daemon_reasons(tmp_path: Path) -> None:
    with pytest.raises(StatusUnreachable, match="does not exist"):
        fetch(str(tmp_path / "none.sock"))
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / "stale.sock"))
    stale.close()
    with pytest.raises(StatusUnreachable, match="stale socket"):
        fetch(str(tmp_path / "stale.sock"))


# ------------------------------------------------------------------------- the command


def test_ifvip_status_prints_the_table_and_json(served: tuple[str, list[Snapshot]]) -> None:
    path, current = served
    runner = CliRunner()
    table = runner.invoke(cli, ["status", "--socket", path])
    assert table.exit_code == 0, table.output
    assert table.output == render_table(current[0])
    as_json = runner.invoke(cli, ["status", "--json", "--socket", path])
    assert Snapshot.from_dict(json.loads(as_json.output)) == current[0]
    state_dir = os.path.dirname(path)
    by_dir = runner.invoke(cli, ["status", "--state-dir", state_dir])
    assert by_dir.exit_code == 0 and "vhid 7" in by_dir.output


def test_ifvip_status_without_a_daemon_exits_1(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["status", "--state-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.startswith("ifvip status: no ifvip daemon: ")
    assert result.output.count("\n") == 1


# ------------------------------------------------------------------------- Operations


def test_operations_dump_and_sigusr2_through_the_union(tmp_path: Path) -> None:
    from ifvip.daemon.checks import CheckConfig, ScriptCheck
    from ifvip.daemon.operations import Operations, OperationsConfig
    from ifvip.election.events import Demote, Promote

    group = _carp_group()
    fed: list[object] = []
    group.feed = fed.append  # type: ignore[method-assign]
    daemon = type("Daemon", (), {"groups": [group]})()
    checks = CheckConfig(checks=(ScriptCheck(("true",)),), timeout=5)
    ops = Operations(OperationsConfig(checks=checks, state_dir=str(tmp_path), status_socket=""))

    async def scenario() -> None:
        await ops.start(daemon)
        ops.toggle_demotion()
        await ops.runners["vhid 7"].round()
        ops.toggle_demotion()
        ops.dump()
        await ops.close()

    asyncio.run(scenario())
    assert fed == [Demote("SIGUSR2"), Promote("SIGUSR2: promoted")]
    dumped = json.loads((tmp_path / "status.json").read_text())
    assert dumped["groups"][0]["checks"][0]["name"] == "script true"
    assert dumped["groups"][0]["checks"][0]["last"] is True
    assert not (tmp_path / "ifvip.sock").exists()  # status_socket "" : none


def test_the_run_options_bundle_feeds_operations_config() -> None:
    """The hook-up the run command needs: @_operations_options, then operations_config()."""
    import click

    from ifvip.cli import _operations_options
    from ifvip.daemon.operations import operations_config
    from ifvip.daemon.policy import parse_policy_options

    seen: dict[str, Any] = {}

    @click.command()
    @_operations_options
    def fake(**options: Any) -> None:
        policy = {k: options.pop(k) for k in list(options) if k.startswith(("rtable", "rule_"))}
        seen["ops"] = operations_config(protocol="carp", state_dir="/run/ifvip-test", **options)
        seen["policy"] = parse_policy_options(
            rtable=policy["rtable"],
            network_length=policy["rtable_network_length"],
            gateway=policy["rtable_gateway"],
            rule_priority=policy["rule_priority"],
            vip=None if policy["rtable"] is None else Vip.parse("203.0.113.10/24"),
        )

    argv = ["--check-tcp", "80", "--check-fall", "3", "--metrics", "203.0.113.1:9165"]
    result = CliRunner().invoke(fake, [*argv, "--nonlocal-bind"], env={"UCARP_RTABLE": "2"})
    assert result.exit_code == 0, result.output
    ops = seen["ops"]
    assert ops.checks.fall == 3 and ops.metrics == ("203.0.113.1", 9165) and ops.nonlocal_bind
    assert seen["policy"].table == 2  # UCARP_RTABLE read as --rtable


def test_operations_config_collects_every_problem() -> None:
    from ifvip.daemon.operations import operations_config
    from ifvip.daemon.settings import ConfigProblems

    with pytest.raises(ConfigProblems) as caught:
        operations_config(check_tcp=["0"], metrics="9165", status_socket="relative.sock")
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "--check-tcp",
        "--metrics",
        "--status-socket",
    ]


def test_daemons_in_named_namespaces_key_their_socket_and_dump(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ifvip.daemon import status_client as status

    named = tmp_path / "netns"
    named.mkdir()
    for name in ("lab-a", "lab-b"):
        (named / name).write_text("")
    inodes = {str(named / "lab-a"): 11, str(named / "lab-b"): 12, "/proc/self/ns/net": 12}
    monkeypatch.setattr(status, "_netns_inode", inodes.get)
    monkeypatch.setattr(status, "NAMED_NETNS", str(named))
    assert default_socket("/run/ifvip") == "/run/ifvip/ifvip.lab-b.sock"
    assert write_snapshot(_snapshot(), str(tmp_path / "s")).name == "status.lab-b.json"
    inodes["/proc/self/ns/net"] = 99  # not a named namespace: a host or a container
    assert default_socket("/run/ifvip") == "/run/ifvip/ifvip.sock"


def test_a_socket_path_longer_than_sun_path_still_works(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = str(deep / "ifvip.sock")
    assert len(path) > 108

    assert asyncio.run(_serve_once(path)) == _snapshot()


def test_a_busy_default_socket_is_a_warning_an_explicit_one_an_error(
    served: tuple[str, list[Snapshot]], caplog: pytest.LogCaptureFixture
) -> None:
    from ifvip.daemon.operations import Operations, OperationsConfig, OperationsError

    path, _ = served
    daemon = type("Daemon", (), {"groups": []})()
    state_dir = os.path.dirname(path)

    async def start(config: OperationsConfig) -> None:
        ops = Operations(config)
        try:
            await ops.start(daemon)
        finally:
            await ops.close()

    asyncio.run(start(OperationsConfig(state_dir=state_dir)))
    assert "no status socket" in caplog.text
    with pytest.raises(OperationsError, match=r"^--status-socket .*: another ifvip serves"):
        asyncio.run(start(OperationsConfig(state_dir=state_dir, status_socket=path)))


# ------------------------------------------------------------------------- hostile clients


def test_a_huge_request_line_gets_an_error_not_an_exception(
    served: tuple[str, list[Snapshot]],
) -> None:
    path, current = served
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        client.connect(path)
        client.sendall(b"s" * 100_000 + b"\n")
        answer = json.loads(client.makefile("rb").readline())
    assert answer == {"error": "request over 4096 bytes; send 'status'"}
    assert fetch(path) == current[0]  # and the server goes on


def test_idle_clients_over_the_limit_are_closed_at_once(
    served: tuple[str, list[Snapshot]],
) -> None:
    """A slowloris flood holds CONNECTIONS_MAX handlers at most: the clients after that
    are closed as they come instead of taking the daemon's descriptors."""
    from ifvip.daemon.status import CONNECTIONS_MAX

    path, current = served
    idle: list[socket.socket] = []
    try:
        for _ in range(CONNECTIONS_MAX):
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            idle.append(client)
            client.connect(path)
            client.sendall(b"st")  # and never the end of the line
        time.sleep(0.2)  # let the server take them all (not a measure: a settling wait)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as extra:
            extra.settimeout(4)  # under CLIENT_TIMEOUT: a served client would wait 5 s
            extra.connect(path)
            assert extra.recv(100) == b""  # closed without an answer
    finally:
        for client in idle:
            client.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the idle handlers end as their clients go
        with contextlib.suppress(StatusUnreachable, ValueError):
            if fetch(path, timeout=1) == current[0]:
                break
        time.sleep(0.05)
    assert fetch(path) == current[0]


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.other: list[dict[str, Any]] = []

    def time(self) -> float:
        return self.now

    def default_exception_handler(self, context: dict[str, Any]) -> None:
        self.other.append(context)


def test_failing_accepts_are_one_line_a_minute_without_traceback() -> None:
    from ifvip.daemon.status import AcceptErrors

    said: list[str] = []
    handler = AcceptErrors(None, interval=60, log=said.append)
    clock = _Clock()
    flood = {
        "message": "socket.accept() out of system resource",
        "exception": OSError(24, "Too many open files"),
        "socket": None,
    }
    for _ in range(5000):
        handler(clock, flood)  # type: ignore[arg-type]
    clock.now += 61
    handler(clock, flood)  # type: ignore[arg-type]
    assert said == [
        "cannot accept connections on ?: Too many open files (1 time); too many clients",
        "cannot accept connections on ?: Too many open files (5000 times in 60 s); "
        "too many clients",
    ]
    handler(clock, {"message": "something else"})  # type: ignore[arg-type]
    assert clock.other == [{"message": "something else"}]


FLOOD_SERVER = """
import asyncio, logging, os, resource, sys
from ifvip.daemon.status import Snapshot, StatusServer

resource.setrlimit(resource.RLIMIT_NOFILE, (40, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
logging.basicConfig(level=logging.INFO, stream=sys.stderr)

async def main() -> None:
    server = StatusServer(sys.argv[1], lambda: Snapshot("v", os.getpid(), 0.0, 0.0, ()))
    await server.start()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # until the test closes stdin
    await server.close()

asyncio.run(main())
"""


def test_a_flood_of_clients_does_not_flood_the_log(tmp_path: Path) -> None:
    """1,100 idle clients against a daemon with few descriptors left: accept() fails with
    EMFILE again and again; the log says so in a line, with no traceback."""
    path = str(tmp_path / "ifvip.sock")
    server = subprocess.Popen(
        [sys.executable, "-c", FLOOD_SERVER, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    clients: list[socket.socket] = []
    try:
        assert server.stdout is not None and server.stdout.readline() == "ready\n"
        for _ in range(1100):
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            clients.append(client)
            client.setblocking(False)
            with contextlib.suppress(BlockingIOError, ConnectionRefusedError, InterruptedError):
                client.connect(path)
        time.sleep(3)  # the server meets the flood for a while (not a measure)
    finally:
        for client in clients:
            client.close()
        _, err = server.communicate(timeout=30)  # closes its stdin: the server ends
    lines = err.splitlines()
    assert "Traceback" not in err, err[:3000]
    assert len(lines) <= 2, err[:3000]


def test_the_table_names_the_sync_group_and_why_it_holds_a_member() -> None:
    reason = "sync group dmz: vrid 52 on eth1 lost its carrier"
    held = _group(name="vrid 51", sync_group="dmz", sync_hold=reason, state="FAULT")
    snapshot = _snapshot(held, _group(name="vrid 52", sync_group="dmz", state="FAULT"))
    lines = render_table(snapshot, now=NOW).splitlines()
    assert "FAULT*" in lines[1] and "FAULT*" not in lines[2]
    assert f"  held back: {reason}" in lines
    assert lines.count("  sync group: dmz") == 2
    assert lines[-1] == "(* demoted or held back by its sync group, ~ transition running)"
    assert Snapshot.from_dict(json.loads(snapshot.to_json())) == snapshot
