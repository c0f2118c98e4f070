"""sd_notify: the datagrams systemd's Type=notify expects, over a real AF_UNIX socket."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from ifvip.daemon.sd_notify import Notifier, address, message, watchdog_interval


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A stand-in for systemd: a datagram socket bound to a path, as $NOTIFY_SOCKET names."""
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(5)
        yield sock, path


def _fields(datagram: bytes) -> dict[str, str]:
    assert datagram.endswith(b"\n")
    return dict(line.split("=", 1) for line in datagram.decode().splitlines())


def test_ready_status_and_stopping_reach_the_socket(manager: tuple[socket.socket, str]) -> None:
    sock, path = manager
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready("BACKUP of vhid 42 on eth0")
    assert _fields(sock.recv(4096)) == {
        "READY": "1",
        "STATUS": "BACKUP of vhid 42 on eth0",
    }
    assert notifier.status("MASTER of vhid 42 on eth0")
    assert sock.recv(4096) == b"STATUS=MASTER of vhid 42 on eth0\n"
    assert notifier.stopping("releasing 198.51.100.100")
    assert _fields(sock.recv(4096)) == {"STOPPING": "1", "STATUS": "releasing 198.51.100.100"}
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1\n"
    assert notifier.reloading(123456)
    assert _fields(sock.recv(4096)) == {"RELOADING": "1", "MONOTONIC_USEC": "123456"}


def test_abstract_socket_address() -> None:
    name = f"ifvip-notify-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert Notifier.from_environ({"NOTIFY_SOCKET": "@" + name}).ready()
        assert _fields(sock.recv(4096))["READY"] == "1"


def test_the_variable_is_taken_out_of_the_environment_for_children(tmp_path: Path) -> None:
    env = {"NOTIFY_SOCKET": str(tmp_path / "n"), "PATH": "/bin"}
    Notifier.from_environ(env)
    assert env == {"PATH": "/bin"}
    kept = {"NOTIFY_SOCKET": str(tmp_path / "n")}
    assert Notifier.from_environ(kept, unset=False).address == str(tmp_path / "n")
    assert "NOTIFY_SOCKET" in kept


def test_without_a_manager_nothing_is_sent_and_nothing_raises(tmp_path: Path) -> None:
    assert not Notifier.from_environ({}).enabled
    assert Notifier.from_environ({}).ready() is False
    # A socket that went away (systemd restarted, a stale variable): False, no exception.
    assert Notifier(str(tmp_path / "gone")).ready() is False
    assert Notifier(str(tmp_path / "gone")).stopping() is False


def test_status_is_one_line_and_field_names_are_checked() -> None:
    assert message({"STATUS": "two\nlines"}) == b"STATUS=two lines\n"
    with pytest.raises(ValueError, match="field name"):
        message({"A=B": "1"})
    with pytest.raises(ValueError, match="field name"):
        message({"": "1"})


def test_addresses_systemd_can_give() -> None:
    assert address("/run/systemd/notify") == "/run/systemd/notify"
    assert address("@sd-notify") == "\0sd-notify"
    assert address("relative/path") is None
    assert address("vsock:2:1234") is None
    assert address("") is None
    assert address(None) is None


def test_watchdog_interval_is_half_the_timeout_and_only_for_our_pid() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "10000000"}, 7) == 5.0
    assert watchdog_interval({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "7"}, 7) == 5.0
    assert watchdog_interval({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "8"}, 7) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}, 7) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}, 7) is None
    assert watchdog_interval({}, 7) is None
