"""The container image: built from the Dockerfile with podman, run from its filesystem.

No Docker engine runs on these machines and `podman run` cannot start containers, so the
test follows ../shared/CONTAINER.md: a Debian 12 base made with debootstrap (trimmed the way
debian:bookworm-slim is), `podman build` with chroot isolation, and the image's exported
filesystem run under chroot, read-only, inside namespaces the test makes: a network
namespace of a lab host (what --network host gives the container), a mount namespace with
tmpfs on /run and /tmp (--read-only --tmpfs /run --tmpfs /tmp) and a PID namespace, so
the image's entrypoint execs ifvip as PID 1 and its HEALTHCHECK sees what Docker's would.

Kept between runs on one machine, as caches: the base image and the image's `runtime` and
`deps` stages (tags below; `podman rmi` them to start afresh). Everything else this test
makes (the image, its build-stage layers, the container, directories, namespaces) is
removed, also on failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from ifvip.lab import Lab
from tests.netns.kernelstate import Snapshot, with_readonly_proc
from tests.reliability.scenarios import DMZ_FILE, PASSWORD, VHID, Cell, ScenarioLab, bounds
from tests.reliability.scenarios import VIP as SC_VIP

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for podman and namespaces"),
]

REPO = Path(__file__).resolve().parents[2]
IFVIP = str(Path(sys.executable).with_name("ifvip"))
BASE = "localhost/ifvip-test-base:bookworm-slim"
STAGE_CACHE = {
    "runtime": "localhost/ifvip-test-cache:runtime",
    "deps": "localhost/ifvip-test-cache:deps",
}
VIP = "198.51.100.150"
EXAMPLE = "/usr/share/doc/ifvip/examples/dmz-dual-stack.interfaces"
BUILD_TIMEOUT = 900
SESSION_DIRS = ("IFVIP_STATE_DIR", "IFVIP_CACHE_DIR")

# The pieces of debian:bookworm-slim's trimming that matter for the size: no manuals,
# documentation (copyright files stay), locales or package lists, now or after apt runs.
SLIM_DPKG = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
"""

# Run ARGS from the image's root as a container would: that root bind-mounted read-only
# over itself, tmpfs on /run and /tmp, $JAIL_SECRETS (if set) read-only on /run/secrets as
# compose mounts secrets, a fresh /proc for the new PID namespace, the network namespace's
# /sys and the host's /dev, then chroot. The mount namespace is
# private (unshare's default), so none of this is seen outside.
JAIL = """\
set -eu
root=$1
shift
mount --bind "$root" "$root"
mount -o remount,bind,ro "$root"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
if [ -n "${JAIL_SECRETS:-}" ]; then
    mkdir "$root/run/secrets"
    mount --bind -o ro "$JAIL_SECRETS" "$root/run/secrets"
fi
if [ -n "${JAIL_CONFIG:-}" ]; then
    mount --bind -o ro "$JAIL_CONFIG" "$root/etc/ifvip"
fi
mount -t proc proc "$root/proc"
# Docker without --privileged: /proc/sys read-only, whatever the capabilities.
mount --bind "$root/proc/sys" "$root/proc/sys"
mount -o remount,bind,ro "$root/proc/sys"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"
# Docker's default capabilities plus --cap-add NET_ADMIN --cap-add NET_RAW, no new privileges.
caps=-all,+chown,+dac_override,+fsetid,+fowner,+mknod,+net_raw,+setgid,+setuid,+setfcap
caps=$caps,+setpcap,+net_bind_service,+sys_chroot,+kill,+audit_write,+net_admin
exec chroot "$root" setpriv --no-new-privs --inh-caps=-all --bounding-set="$caps" "$@"
"""


def _run(argv: list[str], timeout: float = 120, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    # A container starts without the test session's private state and cache directories
    # (tests/conftest.py): the image must find its own /run/ifvip.
    kwargs.setdefault("env", {k: v for k, v in os.environ.items() if k not in SESSION_DIRS})
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


def _checked(argv: list[str], timeout: float = 120, **kwargs: Any) -> str:
    done = _run(argv, timeout, **kwargs)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stdout}{done.stderr}"
    return done.stdout


def _podman(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return _run(["podman", "--cgroup-manager=cgroupfs", *args], timeout)


def _mirror() -> str:
    """The Debian mirror this machine's apt uses (deb822 sources, else sources.list)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for stanza in sources.read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1) for line in stanza.splitlines() if ":" in line and line[0] != "#"
            )
            suites = fields.get("Suites", "").split()
            if "bookworm" in suites and fields.get("URIs"):
                return fields["URIs"].split()[0]
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            words = line.split()
            if len(words) >= 3 and words[0] == "deb" and words[2] == "bookworm":
                return words[1]
    return "http://deb.debian.org/debian"


def _base_image(workdir: Path) -> None:
    """The debootstrap base, made once per machine (about half a minute)."""
    if _podman("image", "exists", BASE).returncode == 0:
        return
    rootfs = workdir / "rootfs"
    _checked(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), _mirror()], 600)
    (rootfs / "etc/dpkg/dpkg.cfg.d/slim").write_text(SLIM_DPKG)
    for pattern in ("var/cache/apt/*.bin", "var/cache/apt/archives/*.deb", "var/lib/apt/lists/*"):
        for path in rootfs.glob(pattern):
            if path.is_file():
                path.unlink()
    for name in ("man", "groff", "info", "lintian", "locale"):
        for path in (rootfs / "usr/share" / name).glob("*"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    for path in (rootfs / "usr/share/doc").rglob("*"):
        if path.is_file() and path.name != "copyright":
            path.unlink()
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run(
        ["podman", "import", "-", BASE],
        stdin=tar.stdout,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert tar.stdout is not None
    tar.stdout.close()
    assert tar.wait(60) == 0 and imported.returncode == 0, imported.stderr
    shutil.rmtree(rootfs)


def _build(tag: str, target: str | None = None) -> None:
    # /etc/ssl/certs is an overlay (`:O`) rather than CONTAINER.md's `:ro`: the deps stage
    # installs Debian's ca-certificates, whose postinst rewrites that directory. Writes go
    # to a throwaway layer and the host's bundle is what pip sees; neither mount is
    # committed to the image.
    argv = [
        "build",
        "--format",
        "docker",
        "--isolation",
        "chroot",
        "--network",
        "host",
        "-v",
        "/etc/ssl/certs:/etc/ssl/certs:O",
        "--build-arg",
        f"BASE={BASE}",
        "-t",
        tag,
    ]
    if Path("/etc/pip.conf").exists():
        argv += ["-v", "/etc/pip.conf:/etc/pip.conf:ro"]
    if target:
        argv += ["--target", target]
    done = _podman(*argv, str(REPO), timeout=BUILD_TIMEOUT)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


def _dangling() -> set[str]:
    return set(_podman("images", "-q", "--no-trunc", "--filter", "dangling=true").stdout.split())


@dataclass(frozen=True)
class Image:
    root: Path
    config: dict[str, Any]
    size: int


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    missing = [tool for tool in ("podman", "debootstrap") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed (`./dev test` installs them)")
    workdir = Path(tempfile.mkdtemp(prefix="ifvip-image-"))
    tag = f"localhost/ifvip-test:{os.getpid()}"
    before = _dangling()
    container = ""
    try:
        _base_image(workdir)
        for target, cache in STAGE_CACHE.items():
            _build(cache, target)
        _build(tag)
        inspected = json.loads(_podman("image", "inspect", tag).stdout)[0]
        made = _podman("create", "--no-healthcheck", tag, "/bin/true")
        assert made.returncode == 0, made.stderr
        container = made.stdout.strip()
        root = workdir / "root"
        root.mkdir()
        export = subprocess.Popen(["podman", "export", container], stdout=subprocess.PIPE)
        untar = subprocess.run(
            ["tar", "-C", str(root), "-x"], stdin=export.stdout, timeout=300, check=False
        )
        assert export.stdout is not None
        export.stdout.close()
        assert export.wait(60) == 0 and untar.returncode == 0
        # podman keeps the HEALTHCHECK (docker format) beside Config rather than in it.
        config = {"Healthcheck": inspected.get("Healthcheck"), **inspected["Config"]}
        yield Image(root, config, int(inspected["Size"]))
    finally:
        if container:
            _podman("rm", "-f", container)
        _podman("rmi", "-f", tag)
        # The build stage of this source tree is left dangling once the image is gone.
        for leftover in _dangling() - before:
            _podman("rmi", leftover)
        shutil.rmtree(workdir, ignore_errors=True)


def _jail(root: Path, *argv: str) -> list[str]:
    unshare = ["unshare", "--mount", "--pid", "--fork", "--kill-child"]
    return [*unshare, "sh", "-c", JAIL, "jail", str(root), *argv]


def _until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not reached within {timeout:.0f} s")


def _child(pid: int) -> int | None:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def test_image_holds_the_venv_and_links_and_no_build_tools(image: Image) -> None:
    root = image.root
    for name in ("ifvip", "ifquery", "ifup", "ifdown"):
        assert os.readlink(root / "usr/local/sbin" / name) == "/opt/ifvip/bin/ifvip"
    assert (root / "opt/ifvip/bin/ifvip").is_file()
    assert list((root / "opt/ifvip/lib").glob("python3*/site-packages/ifvip/cli.py"))
    # Nothing of the build stages: no build venv, pip, setuptools, wheels, compilers,
    # package lists, nor the build-time mounts.
    assert not (root / "opt/build").exists()
    assert not list((root / "opt/ifvip/bin").glob("pip*"))
    site = next((root / "opt/ifvip/lib").glob("python3*/site-packages"))
    assert not [p.name for p in site.iterdir() if p.name.startswith(("pip", "setuptools"))]
    for tool in ("gcc", "cc", "make", "pip3", "dpkg-buildpackage"):
        assert not (root / "usr/bin" / tool).exists(), tool
    assert not (root / "usr/share/python-wheels").exists()
    assert not (root / "src").exists() and not (root / "wheels").exists()
    assert not [p for p in (root / "var/lib/apt/lists").glob("*") if p.name != "partial"]
    # podman leaves the build-time mount points behind, empty; nothing of the host's.
    assert not (root / "etc/pip.conf").exists() or (root / "etc/pip.conf").stat().st_size == 0
    assert not list((root / "etc/ssl/certs").glob("*"))
    config = image.config
    assert config["Entrypoint"] == ["/usr/local/bin/ifvip-entrypoint"]
    assert config["Cmd"] == ["run"]
    assert config["Healthcheck"]["Test"] == ["CMD", "/usr/local/bin/ifvip-healthcheck"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "ifvip"
    assert labels["org.opencontainers.image.base.name"] == BASE
    assert "NET_ADMIN" in labels["io.ifvip.run-options"]
    assert "--privileged" not in json.dumps(config)
    assert image.size > 0


def test_version_and_ifquery_run_from_the_read_only_image(image: Image) -> None:
    with Lab(["host"], prefix="ifvip-imgtest") as lab:
        netns = ["ip", "netns", "exec", lab.hosts["host"].netns]
        version = _checked([*netns, *_jail(image.root, "ifvip", "--version")])
        assert version == _checked([IFVIP, "--version"])
        # The entrypoint passes ifvip's own options and commands through.
        assert _checked([*netns, *_jail(image.root, "ifvip-entrypoint", "-V")]) == version
        # ifquery (the link, dispatching on argv[0]) reads the shipped example exactly as
        # the venv's ifvip does; its reading cache goes to /run, the only writable place.
        jailed = _checked([*netns, *_jail(image.root, "ifquery", "-i", EXAMPLE, "eth1")])
        local = REPO / "interfaces.d-examples" / Path(EXAMPLE).name
        # The venv's ifvip runs on this machine: with the session's cache, not /run/ifvip.
        assert jailed == _checked([IFVIP, "ifquery", "-i", str(local), "eth1"], env=os.environ)
        assert "address: 203.0.113.134" in jailed
        listing = _checked(
            [*netns, *_jail(image.root, "sh", "-c", f"ifquery -i {EXAMPLE} -l; ls /run/ifvip")]
        )
        assert listing.split() == ["lo", "eth0", "cache"]
        # ifup and ifdown (links to ifvip) do their job with ifupdown's state in /run/network,
        # on the tmpfs: the VIP stanza of the single-VIP example goes on and off again.
        vip = "/usr/share/doc/ifvip/examples/single-vip.interfaces"
        script = (
            f"ifup -i {vip} eth0:vip && ip -4 -o addr show dev eth0 && ls /run/network"
            f" && ifdown -i {vip} eth0:vip && ip -4 -o addr show dev eth0"
        )
        updown = _checked([*netns, *_jail(image.root, "sh", "-c", script)])
        up, _, down = updown.partition("ifstate")
        assert "198.51.100.100/24" in up and "eth0:vip" in up
        assert "198.51.100.100" not in down
        assert not lab.holds("host", "198.51.100.100")
        # The root really is read-only, and python writes no bytecode into it.
        touched = _run([*netns, *_jail(image.root, "touch", "/opt/ifvip/x")])
        assert touched.returncode != 0 and "Read-only file system" in touched.stderr
        assert not list(image.root.rglob("__pycache__/*.cpython-*.pyc.*"))
        # The health check is for the daemon: a PID 1 that is not ifvip is unhealthy.
        health = _run([*netns, *_jail(image.root, "ifvip-healthcheck")])
        assert health.returncode == 1 and "is not ifvip" in health.stderr
        # So is an ifvip that holds no protocol-112 socket (here one blocked on its input).
        stuck = lab.run(
            "host",
            _jail(image.root, "ifvip", "ifquery", "-i", "/dev/stdin", "-l"),
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        pid1: list[int] = []

        def blocked() -> bool:
            child = _child(stuck.pid)
            if child is not None and "/dev/stdin" in _cmdline(child):
                pid1[:] = [child]
            return bool(pid1)

        _until(blocked)
        enter = ["nsenter", "-t", str(pid1[0]), "-m", "-p", "-n", "-r", "-w"]
        health = _run([*enter, "/usr/local/bin/ifvip-healthcheck"], timeout=30)
        assert health.returncode == 1 and "socket" in health.stderr, health.stderr
        assert stuck.stdin is not None
        stuck.stdin.close()
        assert stuck.wait(15) == 0


def _compose_host_a() -> tuple[list[str], dict[str, str]]:
    """deploy/compose's host-a service: its command and environment, interpolated."""
    compose = yaml.safe_load((REPO / "deploy/compose/docker-compose.yml").read_text())
    service = compose["services"]["ifvip-a"]
    env = {
        key: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))
        for key, value in service["environment"].items()
    }
    return list(service["command"]), env


@pytest.mark.parametrize("form", ["ucarp-args", "compose-host-a"])
def test_image_wins_the_election_reports_healthy_and_releases_on_sigterm(
    image: Image, form: str, tmp_path: Path
) -> None:
    password = "image-test"
    with Lab(["node1", "node2"], prefix="ifvip-imgtest") as lab:
        env = {"PATH": os.environ["PATH"]}
        if form == "ucarp-args":
            # ucarp's arguments, the way `docker run IMAGE ARGS` hands them to the entrypoint.
            vip, vhid = VIP, "61"
            args = ["-i", "eth0", "-s", str(lab.hosts["node1"].address.ip), "-v", vhid]
            args += ["-p", password, "-a", vip, "--masklen", "24", "-k", "0", "-P"]
        else:
            # The compose file's host A: `run` and IFVIP_* variables, the password from the
            # secret compose mounts on /run/secrets (the address is the interface's own).
            args, variables = _compose_host_a()
            env.update(variables)
            vip, vhid = variables["IFVIP_VIP"].split("/")[0], variables["IFVIP_VHID"]
            secrets = tmp_path / "secrets"
            secrets.mkdir()
            (secrets / "carp_pass").write_text(password + "\n")
            assert variables["IFVIP_PASSFILE"] == "/run/secrets/carp_pass"
            env["JAIL_SECRETS"] = str(secrets)
        # node2: ifvip from the venv, slower (advskew 100), master first.
        node2 = ["-i", "eth0", "-s", str(lab.hosts["node2"].address.ip), "-v", vhid]
        state = ["--state-dir", str(tmp_path / "node2-state")]
        lab.run(
            "node2",
            [IFVIP, "run", *node2, "-p", password, "--vip", f"{vip}/24", "-k", "100", *state],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _until(lambda: lab.holds("node2", vip))
        # node1: the image, faster and preempting, so it takes the VIP over.
        jailed = lab.run(
            "node1",
            _jail(image.root, "/usr/local/bin/ifvip-entrypoint", *args),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        pid1: list[int] = []

        def daemon_started() -> bool:
            child = _child(jailed.pid)
            if child is not None and "run" in _cmdline(child):
                pid1[:] = [child]
            return bool(pid1)

        _until(daemon_started)
        daemon = pid1[0]
        assert Path(_cmdline(daemon)[1]).name == "ifvip"  # exec'd all the way: PID 1 is ifvip
        _until(lambda: lab.holds("node1", vip) and not lab.holds("node2", vip))

        # The image's HEALTHCHECK, run in the container's namespaces and root as
        # `docker exec` would.
        enter = ["nsenter", "-t", str(daemon), "-m", "-p", "-n", "-r", "-w"]
        health = _run([*enter, "/usr/local/bin/ifvip-healthcheck"], timeout=30)
        assert health.returncode == 0, health.stderr

        # `docker stop`: SIGTERM to PID 1 releases the VIP and bows out; node2 takes over.
        os.kill(daemon, signal.SIGTERM)
        _, log = jailed.communicate(timeout=15)
        assert jailed.returncode == 0, log
        assert password.encode() not in log  # the password is never logged
        _until(lambda: lab.holds("node2", vip))
        assert not lab.holds("node1", vip)


# ------------------------------------------------------------------ the seed's DMZ file


def _readonly_master(lab: ScenarioLab, name: str) -> Snapshot:
    """Real ifupdown's ifup of the DMZ stanzas as the read-only /proc/sys lets it be."""
    host = lab.hosts[name]
    assert host.master_ref is not None and host.backup_ref is not None
    return with_readonly_proc(host.master_ref, host.backup_ref, "eth1")


def test_image_runs_the_seed_dmz_file_unprivileged_through_kill_and_restart(
    image: Image, tmp_path: Path
) -> None:
    """Issue 13 in the container form: the seed's production DMZ file, unchanged, managed
    by the image under Docker's read-only /proc/sys and default capabilities; `docker
    kill`, a start with a fresh /run, `docker stop`. Beside it, ifvip from the venv."""
    cell = Cell("carp", "both", "manage", "container")
    with ScenarioLab(cell) as lab:
        config = tmp_path / "config"
        config.mkdir()
        shutil.copy(DMZ_FILE, config / "interfaces")
        h1 = lab.hosts["h1"]
        args = ["run", "-i", "eth0", "-s", h1.src, "-v", str(VHID), "-p", PASSWORD, "-a", SC_VIP]
        args += ["--masklen", "24", "-k", "0", "-P", "-z"]
        args += ["--interfaces", "/etc/ifvip/interfaces", "--manage", "eth1"]
        env = {"PATH": os.environ["PATH"], "JAIL_CONFIG": str(config)}
        lab.start("h2")
        assert lab.watch(12.0, until=lambda h: h == frozenset({"h2"})).last() == {"h2"}
        log = tmp_path / "image.log"
        expected = _readonly_master(lab, "h1")

        def container() -> tuple[subprocess.Popen[bytes], int]:
            with open(log, "ab") as out:
                jailed = lab.lab.run(
                    "h1",
                    _jail(image.root, "/usr/local/bin/ifvip-entrypoint", *args),
                    stdout=out,
                    stderr=out,
                    env=env,
                )
            pid1: list[int] = []

            def started() -> bool:
                child = _child(jailed.pid)
                if child is not None and "run" in _cmdline(child):
                    pid1[:] = [child]
                return bool(pid1)

            _until(started)
            return jailed, pid1[0]

        def serving() -> None:
            timeline = lab.watch(15.0, until=lambda h: h == frozenset({"h1"}))
            assert timeline.last() == {"h1"}, log.read_text()
            diff = lab.kernel_state("h1").diff(expected)
            assert not diff, f"{diff}\n{log.read_text()}"

        jailed, daemon = container()
        serving()
        text = log.read_text()
        dad_line = next(
            n for n, line in enumerate(DMZ_FILE.read_text().splitlines(), 1) if "accept_dad" in line
        )
        assert f"/etc/ifvip/interfaces:{dad_line}: " in text, text
        assert "read-only" in text and "nodad" in text
        enter = ["nsenter", "-t", str(daemon), "-m", "-p", "-n", "-r", "-w"]
        health = _run([*enter, "/usr/local/bin/ifvip-healthcheck"], timeout=30)
        assert health.returncode == 0, health.stdout + health.stderr

        # `docker kill`: the peer takes over; the dead container's addresses expire.
        b = bounds(cell)
        os.kill(daemon, signal.SIGKILL)
        jailed.wait(15)
        timeline = lab.watch(b.expiry + 2.0, until=lambda h: h == frozenset({"h2"}))
        took = timeline.first(lambda h: "h2" in h)
        assert took is not None and took <= b.takeover
        assert timeline.last() == {"h2"}, "the killed container still answers for eth1"

        # `docker start`: a fresh tmpfs /run, no journal; it converges and takes back.
        jailed, daemon = container()
        serving()
        assert "File exists" not in log.read_text()

        # `docker stop`: the peer takes the bow-out at once; the host is as before.
        os.kill(daemon, signal.SIGTERM)
        assert jailed.wait(15) == 0, log.read_text()
        assert lab.watch(3.0, until=lambda h: h == frozenset({"h2"})).last() == {"h2"}
        assert h1.backup_ref is not None
        diff = lab.kernel_state("h1").diff(h1.backup_ref)
        assert not diff, diff
        assert PASSWORD not in log.read_text()
