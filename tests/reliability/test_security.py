"""Nobody let in: TTL and own-source checks, secrets kept out of sight, safe files.

- adverts that do not arrive with TTL 255 are dropped, and so are packets from our own
  source (the hostile-LAN test floods both through real sockets; here each check alone);
- a password given by --passfile, by the environment or by UCARP_PASS_FILE never appears
  in the daemon's logs, status, metrics, errors, repr or /proc/PID/cmdline (what `ps` shows),
  even while peers with another password make it log bad digests;
- up/down scripts run with a fixed PATH, whatever PATH the daemon was started with;
- the state directory is created 0700;
- `ifvip check` warns about passwords in world-readable files.
"""

from __future__ import annotations

import ipaddress
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ifvip.daemon.carp.config import build_carp_group
from ifvip.daemon.settings import ConfigProblems
from ifvip.daemon.transport import Received
from ifvip.election.carp import AdvertReceived, CarpParams, State
from ifvip.election.carp import initial as carp_initial
from ifvip.election.carp import step as carp_step
from ifvip.election.events import Start, Timer, TimerFired
from ifvip.interfaces.check import check, passfile_warning
from ifvip.interfaces.loader import load
from ifvip.wire.carp import CarpAdvert
from tests.programs import AS_ROOT
from tests.reliability.harness import IFVIP, REPO, VHID, VIP, PairLab, until

OWN = ipaddress.IPv4Address("198.51.100.1")
PEER = ipaddress.IPv4Address("198.51.100.2")
GROUP = ipaddress.IPv4Address("224.0.0.18")
# Distinctive, so a grep cannot match anything else.
TOKEN_FILE = "Qx7passfileK2"
TOKEN_ENV = "Zr4environW9"
METRICS = "127.0.0.1:9612"

root = AS_ROOT


def _speaker() -> object:
    speaker = pytest.importorskip("ifvip.daemon.carp.speaker", reason="the CARP speaker")
    config = build_carp_group(
        interface="eth0",
        srcip=str(OWN),
        vhid=str(VHID),
        password="secret",
        passfile=None,
        addr=VIP,
    )
    return speaker.CarpSpeaker(config)


def _genuine(advbase: int = 0, advskew: int = 1) -> bytes:
    return CarpAdvert.build(
        vhid=VHID, advbase=advbase, advskew=advskew, counter=7, password=b"secret", vip=VIP
    ).encode()


@pytest.mark.parametrize("ttl", [0, 1, 64, 128, 254])
def test_a_genuine_advert_not_from_ttl_255_is_dropped(ttl: int) -> None:
    verdict = _speaker().receive(Received(PEER, GROUP, ttl, _genuine()))  # type: ignore[attr-defined]
    assert getattr(verdict, "reason", None) == "ttl"


def test_ttl_255_is_what_makes_the_same_advert_valid() -> None:
    verdict = _speaker().receive(Received(PEER, GROUP, 255, _genuine()))  # type: ignore[attr-defined]
    assert not hasattr(verdict, "reason"), verdict


def test_our_own_source_is_ignored_by_the_receive_checks_and_the_election() -> None:
    verdict = _speaker().receive(Received(OWN, GROUP, 255, _genuine()))  # type: ignore[attr-defined]
    assert getattr(verdict, "reason", None) == "own"
    machine, _ = carp_step(carp_initial(CarpParams(vhid=VHID, own_ip=OWN)), Start(), 0.0)
    machine, _ = carp_step(machine, TimerFired(Timer.MASTER_DOWN), 3.0)
    after, actions = carp_step(machine, AdvertReceived(OWN, 0, 1), 3.5)
    assert after.state is State.MASTER and actions == []


def test_config_errors_and_repr_never_show_the_password(tmp_path: Path) -> None:
    long_file = tmp_path / "long"
    long_file.write_text(TOKEN_FILE * 3 + "\n")
    with pytest.raises(ConfigProblems) as error:
        build_carp_group(
            interface="eth0",
            srcip=str(OWN),
            vhid="1",
            password=None,
            passfile=str(long_file),
            addr=VIP,
        )
    assert TOKEN_FILE not in str(error.value)
    good = tmp_path / "good"
    good.write_text(TOKEN_FILE + "\n")
    config = build_carp_group(
        interface="eth0", srcip=str(OWN), vhid="1", password=None, passfile=str(good), addr=VIP
    )
    assert config.password.value == TOKEN_FILE.encode()
    assert TOKEN_FILE not in repr(config) and TOKEN_FILE not in str(config)


def test_check_warns_about_world_readable_password_files(tmp_path: Path) -> None:
    secret = tmp_path / "vrrp.pass"
    secret.write_text("hunter2\n")
    interfaces = tmp_path / "interfaces"
    interfaces.write_text(
        "iface eth0 inet manual\n"
        "  ucarp-vid 3\n  ucarp-vip 198.51.100.100\n  ucarp-password hunter2\n"
        f"  vrrp-auth-passfile {secret}\n"
    )
    for path in (secret, interfaces):
        path.chmod(0o644)
    warnings = [p for p in check(load(str(interfaces))) if p.warning]
    assert [(w.line, "world-readable" in w.msg or "any local user" in w.msg) for w in warnings] == [
        (4, True),
        (5, True),
    ]
    assert all("hunter2" not in str(w) for w in warnings)
    warning = passfile_warning(str(secret))
    assert warning is not None and "0644" in warning
    result = subprocess.run(
        [IFVIP, "check", "-i", str(interfaces)],
        capture_output=True, check=False, text=True, timeout=30,
    )  # fmt: skip
    assert "world-readable" in result.stdout + result.stderr
    assert "hunter2" not in result.stdout + result.stderr
    for path in (secret, interfaces):
        path.chmod(0o600)
    assert [p for p in check(load(str(interfaces))) if p.warning] == []
    assert passfile_warning(str(secret)) is None
    assert passfile_warning(str(tmp_path / "missing")) is None


# ---------------------------------------------------------------- in namespaces


def _run(
    lab: PairLab, host: str, extra: list[str], env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """`ifvip run` in `host`; `ip netns exec` and `env` exec into it, so the PID is ifvip's."""
    argv = [IFVIP, "run", "-i", "eth0", "-s", lab.address(host), "-v", str(VHID)]
    argv += ["-a", VIP, "--masklen", "24", "--state-dir", str(lab.tmp / f"state-{host}")]
    with open(log, "ab") as out:
        proc = lab.lab.run(
            host, ["env", *(f"{k}={v}" for k, v in env.items()), *argv, *extra],
            stdout=out, stderr=out,
        )  # fmt: skip
    return proc


@root
def test_passwords_from_a_passfile_or_the_environment_never_show(lab: PairLab) -> None:
    passfile = lab.tmp / "carp.pass"
    passfile.write_text(TOKEN_FILE + "\n")
    passfile.chmod(0o600)
    logs = {h: lab.tmp / f"{h}.log" for h in ("h1", "h2")}
    # Different passwords: each logs the other's adverts as bad digests, the error path.
    procs = {
        "h1": _run(lab, "h1", ["--passfile", str(passfile), "--metrics", METRICS], {}, logs["h1"]),
        "h2": _run(lab, "h2", [], {"IFVIP_PASS": TOKEN_ENV}, logs["h2"]),
    }
    assert until(lambda: lab.holders() == ("h1", "h2"), 10) is not None
    time.sleep(1.5)
    seen = []
    for host, proc in procs.items():
        seen.append((Path(f"/proc/{proc.pid}/cmdline").read_bytes(), f"{host} cmdline"))
        proc.send_signal(signal.SIGUSR1)
        status = subprocess.run(
            ["ip", "netns", "exec", lab.lab.hosts[host].netns, IFVIP, "status", "--json",
             "--state-dir", str(lab.tmp / f"state-{host}")],
            capture_output=True, check=False, timeout=20,
        )  # fmt: skip
        assert status.returncode == 0 and b"vhid 42" in status.stdout, status.stderr
        seen.append((status.stdout + status.stderr, f"{host} status"))
    metrics = subprocess.run(
        ["ip", "netns", "exec", lab.lab.hosts["h1"].netns, sys.executable, "-c",
         f"import urllib.request; print(urllib.request.urlopen('http://{METRICS}/metrics',"
         " timeout=5).read().decode())"],
        capture_output=True, check=False, timeout=20,
    )  # fmt: skip
    seen.append((metrics.stdout + metrics.stderr, "h1 metrics"))
    assert metrics.returncode == 0 and b"ifvip_up" in metrics.stdout, metrics.stderr
    time.sleep(1.0)
    for proc in procs.values():
        proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        proc.wait(15)
    texts = {h: logs[h].read_bytes() for h in logs}
    assert b"bad digest" in texts["h1"] and b"bad digest" in texts["h2"]
    assert b"counters" in texts["h1"]
    seen += [(texts[h], f"{h} log") for h in texts]
    for blob, where in seen:
        assert TOKEN_FILE.encode() not in blob, where
        assert TOKEN_ENV.encode() not in blob, where


@root
def test_the_compat_pass_file_variable_and_a_bad_passfile_keep_the_secret(lab: PairLab) -> None:
    passfile = lab.tmp / "ucarp.pass"
    passfile.write_text(TOKEN_FILE * 2 + "\n")  # too long for CARP: a config error
    log = lab.tmp / "h1.log"
    proc = _run(lab, "h1", [], {"UCARP_PASS_FILE": str(passfile)}, log)
    assert proc.wait(20) == 78
    text = log.read_text()
    assert "longer than 19 bytes" in text and TOKEN_FILE not in text


@root
def test_scripts_get_a_fixed_path_and_the_state_dir_is_0700(lab: PairLab) -> None:
    seen = lab.tmp / "path-seen"
    script = lab.tmp / "up"
    script.write_text(f'#!/bin/sh\necho "$PATH" > {seen}\n')
    script.chmod(0o755)
    env = {"PATH": f"{lab.tmp}/evil:/usr/sbin:/usr/bin:/sbin:/bin", "IFVIP_PASS": "secret"}
    _run(lab, "h1", ["-u", str(script)], env, lab.tmp / "h1.log")
    assert until(seen.exists, 10) is not None, (lab.tmp / "h1.log").read_text()
    assert until(lambda: seen.read_text().strip() != "", 2) is not None
    path = seen.read_text().strip()
    assert "evil" not in path and path.split(":")[0].startswith("/usr/")
    state = lab.tmp / "state-h1"
    assert state.is_dir()
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    # Nothing in it is readable by others either.
    for entry in state.rglob("*"):
        assert not entry.stat().st_mode & stat.S_IROTH, entry


# ---------------------------------------------------------------- production examples

EXAMPLES = [REPO / "deploy", REPO / "interfaces.d-examples"]
PASSWORD_ON_COMMAND_LINE = re.compile(r"(?:^|\s)(?:-p|--pass|--auth-pass)(?:=|\s+)(?!-)\S+")


def test_production_examples_never_put_a_password_on_a_command_line() -> None:
    # ps shows argv to every local user; --passfile, the environment and *_FILE do not.
    files = [
        p for root in EXAMPLES if root.is_dir() for p in sorted(root.rglob("*")) if p.is_file()
    ]
    if not files:
        pytest.skip("no deploy/ or interfaces.d-examples/ in this checkout")
    offenders = []
    for path in files:
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
            runs = "ifvip run" in line or "IFVIP_ARGS" in line or "ucarp " in line
            if runs and PASSWORD_ON_COMMAND_LINE.search(line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == []
