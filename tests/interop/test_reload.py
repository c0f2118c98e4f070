"""SIGHUP reloads `ifvip run`'s configuration, and systemd hears about it (sd_notify).

One ifvip in n1 runs two CARP groups from Debian `ucarp-*` stanzas of an interfaces file:
vhid 42 on eth0 (198.51.100.100, the real ucarp in n2 as its backup) and vhid 43 on a macvlan
mv0 (198.51.100.101). A third host (c) captures the adverts; `ip monitor address` in n1
timestamps the VIP's comings and goings. ifvip's $NOTIFY_SOCKET is a real AF_UNIX datagram
socket of this test, as systemd's is. Then the file is edited and SIGHUP sent:

1. vhid 43's advskew changes: vhid 43 restarts with it; vhid 42, unchanged, keeps its VIP
   with no gap and no transition (RELOADING=1 then READY=1 reach the socket);
2. a broken file (vhid out of range, a password too long): every problem is logged, never
   the password, and the running groups stay as they are;
3. vhid 42's password changes: it bows out (ucarp takes over at once) and starts anew with
   the new password, so it now rejects ucarp's adverts as bad digests.
SIGTERM sends STOPPING=1.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ifvip.lab import Lab
from tests.interop.carp_lab import (
    IFVIP,
    VIP,
    AddressMonitor,
    Capture,
    stop,
    ucarp_node,
    until,
)
from tests.programs import INTEROP, NEEDS_UCARP

pytestmark = [*INTEROP, NEEDS_UCARP]

VIP43 = "198.51.100.101"
TOO_LONG = "far-too-long-password-x"  # 23 bytes: over ucarp's 19


@dataclass
class NotifySocket:
    """systemd's side of sd_notify: every datagram, parsed, with its arrival time."""

    path: Path
    messages: list[tuple[float, dict[str, str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.sock.settimeout(0.2)
        self._lock = threading.Lock()
        self._open = True
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        while self._open:
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            with self._lock:
                self.messages.append((time.time(), fields))

    def since(self, t: float) -> list[dict[str, str]]:
        with self._lock:
            return [m for when, m in self.messages if when >= t]

    def has(self, t: float, key: str, value: str | None = None) -> bool:
        return any(key in m and (value is None or m[key] == value) for m in self.since(t))

    def close(self) -> None:
        self._open = False
        self.thread.join(2)
        self.sock.close()


@dataclass
class World:
    lab: Lab
    tmp: Path
    monitor: AddressMonitor
    capture: Capture
    notify: NotifySocket

    def log(self, host: str) -> str:
        return (self.tmp / f"{host}.log").read_text(errors="replace")


@pytest.fixture
def world() -> Iterator[World]:
    with (
        tempfile.TemporaryDirectory(prefix="ifvip-reload-") as tmp,
        Lab(["n1", "n2", "c"], prefix="ifvip-hup") as lab,
    ):
        ns = lab.hosts["n1"].netns
        ip = ["ip", "-n", ns]
        subprocess.run(
            [*ip, "link", "add", "mv0", "link", "eth0", "type", "macvlan", "mode", "bridge"],
            check=True,
            timeout=10,
        )
        subprocess.run([*ip, "addr", "add", "198.51.100.11/24", "dev", "mv0"], check=True)
        subprocess.run([*ip, "link", "set", "mv0", "up"], check=True, timeout=10)
        monitor = AddressMonitor(lab, ["n1"])
        capture = Capture(lab, "c")
        notify = NotifySocket(Path(tmp) / "notify.sock")
        try:
            yield World(lab, Path(tmp), monitor, capture, notify)
        finally:
            notify.close()
            capture.close()
            monitor.close()


def _stanzas(w: World, *, skew43: str = "0", pass42: str = "secret", vid43: str = "43") -> None:
    up, down = w.tmp / "up", w.tmp / "down"
    if not up.exists():
        # The scripts also record whether they inherited $NOTIFY_SOCKET (they must not).
        up.write_text(
            '#!/bin/sh\necho "${NOTIFY_SOCKET:-unset}" >> "$0.env"\nip addr add "$2/24" dev "$1"\n'
        )
        down.write_text('#!/bin/sh\nip addr del "$2/24" dev "$1" 2>/dev/null || true\n')
        up.chmod(0o755)
        down.chmod(0o755)
    text = f"""iface eth0 inet static
  address 198.51.100.1/24
  ucarp-vid 42
  ucarp-vip {VIP}
  ucarp-password {pass42}
  ucarp-upscript {up}
  ucarp-downscript {down}

iface mv0 inet static
  address 198.51.100.11/24
  ucarp-vid {vid43}
  ucarp-vip {VIP43}
  ucarp-password secret2
  ucarp-advskew {skew43}
  ucarp-upscript {up}
  ucarp-downscript {down}
"""
    target = w.tmp / "interfaces"
    staged = w.tmp / "interfaces.new"
    staged.write_text(text)
    staged.replace(target)  # an editor's atomic save


def _entering(text: str, vhid: int) -> int:
    return len(re.findall(rf"\(vhid {vhid}\) Entering \w+ STATE", text))


def _vip_events(w: World, since: float) -> list[bool]:
    return [e.added for e in w.monitor.snapshot() if e.t > since]


def _bowed_out(w: World, src: str, vhid: int, since: float) -> bool:
    """Whether `src` sent vhid's bow-out advert (advbase 255, advskew 255) after `since`."""
    return any(
        f.vhid == vhid and (f.advbase, f.advskew) == (255, 255)
        for f in w.capture.adverts(src, since)
    )


def _hangup(w: World, proc: subprocess.Popen[bytes]) -> float:
    """SIGHUP, then wait for the RELOADING=1 ... READY=1 pair; the time it was sent."""
    sent = time.time()
    proc.send_signal(signal.SIGHUP)
    until(lambda: w.notify.has(sent, "RELOADING", "1"), 5)
    until(lambda: any(m.get("READY") == "1" for m in _after_reloading(w, sent)), 20)
    return sent


def _after_reloading(w: World, t: float) -> list[dict[str, str]]:
    messages = w.notify.since(t)
    first = next((i for i, m in enumerate(messages) if m.get("RELOADING") == "1"), None)
    return [] if first is None else messages[first + 1 :]


def test_sighup_reload_keeps_unchanged_groups_and_applies_changes(world: World) -> None:
    w = world
    _stanzas(w)
    argv = [IFVIP, "run", "--interfaces", str(w.tmp / "interfaces")]
    argv += ["--state-dir", str(w.tmp / "state"), "--status-socket", ""]
    env = {**os.environ, "NOTIFY_SOCKET": str(w.notify.path), "WATCHDOG_USEC": "1000000"}
    started = time.time()
    with open(w.tmp / "n1.log", "ab") as log:
        proc = w.lab.run("n1", argv, stdout=log, stderr=log, env=env)
    until(lambda: w.lab.holds("n1", VIP) and w.lab.holds("n1", VIP43), 10)
    assert w.notify.has(started, "READY", "1")
    until(lambda: w.notify.has(started, "STATUS", "vhid 42 MASTER; vhid 43 MASTER"), 2)
    # Keep-alives at half of WATCHDOG_USEC.
    until(lambda: sum("WATCHDOG" in m for m in w.notify.since(started)) >= 2, 3)
    assert (w.tmp / "up.env").read_text().split() == ["unset", "unset"]
    peer = ucarp_node(w.lab, "n2", w.tmp, "-k", "50")
    time.sleep(2.5)
    assert not w.lab.holds("n2", VIP)

    # 1. vhid 43's advskew changes; vhid 42 is untouched.
    before = w.log("n1")
    _stanzas(w, skew43="100")
    sent = _hangup(w, proc)
    until(
        lambda: any(
            f.vhid == 43 and f.advskew == 100 for f in w.capture.adverts("198.51.100.11", sent)
        ),
        10,
    )
    until(lambda: w.lab.holds("n1", VIP43), 3 + 100 / 256 + 3)
    time.sleep(1.5)
    after = w.log("n1")[len(before) :]
    assert "reload: 1 unchanged (vhid 42 on eth0); 1 changed (vhid 43 on mv0)" in after
    assert _entering(after, 42) == 0, after
    assert _entering(after, 43) >= 2  # BACKUP (bowed out, started anew), then MASTER again
    assert _vip_events(w, sent) == [], "the unchanged group's VIP must not move"
    assert w.lab.holds("n1", VIP) and not w.lab.holds("n2", VIP)
    skews42 = {f.advskew for f in w.capture.adverts("198.51.100.1", sent)}
    assert skews42 == {0}
    assert _bowed_out(w, "198.51.100.11", 43, sent)  # the changed master bowed out first
    assert not _bowed_out(w, "198.51.100.1", 42, sent)

    # 2. A broken file: every problem logged, no password, nothing changes.
    before = w.log("n1")
    _stanzas(w, skew43="100", pass42=TOO_LONG, vid43="300")
    sent = _hangup(w, proc)
    time.sleep(1.0)
    after = w.log("n1")[len(before) :]
    assert "reload:" in after and "vhid" in after and "--pass" in after, after
    assert "running one is kept" in after
    assert TOO_LONG not in after and "secret" not in w.log("n1")
    assert _entering(after, 42) == 0 and _entering(after, 43) == 0
    assert _vip_events(w, sent) == []
    assert proc.poll() is None and w.lab.holds("n1", VIP) and w.lab.holds("n1", VIP43)

    # 3. vhid 42's password changes: bow-out (ucarp takes over at once), then the new group
    #    rejects ucarp's adverts, signed with the old password.
    before = w.log("n1")
    _stanzas(w, skew43="100", pass42="other")
    sent = _hangup(w, proc)
    until(lambda: w.lab.holds("n2", VIP), 2.0)
    until(lambda: "(vhid 42) bad digest from 198.51.100.2" in w.log("n1")[len(before) :], 5)
    after = w.log("n1")[len(before) :]
    assert "1 changed (vhid 42 on eth0)" in after and "1 unchanged (vhid 43 on mv0)" in after
    assert _entering(after, 43) == 0
    assert _bowed_out(w, "198.51.100.1", 42, sent)
    assert "other" not in w.log("n1")

    stopping = time.time()
    stop(proc, signal.SIGTERM)
    assert proc.returncode == 0
    assert w.notify.has(stopping, "STOPPING", "1")
    stop(peer, signal.SIGTERM)


def test_sighup_reload_of_a_vrrp_group(tmp_path: Path) -> None:
    """VRRPv2 with --auth-pass-file: an untouched file keeps the master as it is; a new
    password restarts the group (priority 0, release, BACKUP, then MASTER again)."""
    with Lab(["n1"], prefix="ifvip-hupv") as lab:
        monitor = AddressMonitor(lab, ["n1"])
        notify = NotifySocket(tmp_path / "notify.sock")
        try:
            passfile = tmp_path / "auth"
            passfile.write_text("vrrp-pw\n")
            argv = [IFVIP, "run", "--protocol", "vrrp", "--vrrp-version", "2", "-i", "eth0"]
            argv += ["--vrid", "51", "--vip", f"{VIP}/24", "--auth-pass-file", str(passfile)]
            argv += ["--state-dir", str(tmp_path / "state"), "--status-socket", ""]
            env = {**os.environ, "NOTIFY_SOCKET": str(notify.path)}
            with open(tmp_path / "n1.log", "ab") as log:
                proc = lab.run("n1", argv, stdout=log, stderr=log, env=env)
            text = lambda: (tmp_path / "n1.log").read_text(errors="replace")  # noqa: E731
            until(lambda: lab.holds("n1", VIP), 10)
            until(lambda: notify.has(0, "STATUS", "vrid 51 MASTER"), 2)

            sent = time.time()
            proc.send_signal(signal.SIGHUP)
            until(lambda: "reload: 1 unchanged (vrid 51 on eth0)" in text(), 10)
            until(lambda: notify.has(sent, "READY", "1"), 5)
            time.sleep(1.0)
            # Lifetime refreshes show as address updates; the VIP is never deleted.
            assert [e for e in monitor.snapshot() if e.t > sent and not e.added] == []
            assert text().count("-> MASTER") == 1

            passfile.write_text("other-pw\n")
            sent = time.time()
            proc.send_signal(signal.SIGHUP)
            until(lambda: "1 changed (vrid 51 on eth0)" in text(), 10)
            until(lambda: text().count("-> MASTER") == 2, 10)
            until(lambda: lab.holds("n1", VIP), 2)
            events = [e.added for e in monitor.snapshot() if e.t > sent]
            # Released (bow-out), then added again by the new group.
            assert events.count(False) == 1 and events[-1], events
            assert notify.has(sent, "STATUS", "vrid 51 BACKUP")
            assert "vrrp-pw" not in text() and "other-pw" not in text()
            stop(proc, signal.SIGTERM)
            assert proc.returncode == 0
        finally:
            notify.close()
            monitor.close()
