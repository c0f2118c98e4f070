"""The short commands' fast path (ifvip/fastpath.py) against today's click path.

Every argument list of the corpus runs twice in a fresh interpreter: through the program's
entry point (fastpath.main, which takes the fast path when it can) and through cli.main
(click, always). stdout, stderr and the exit status must be the same, byte for byte. The
corpus also says which lists the fast path must take itself (and then without importing
click) and which it must leave to click. Nothing here touches the kernel: ifup and ifdown
run with -n (or stop at a usage error), on interfaces that do not exist.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import NamedTuple

import click
import pytest

from ifvip import fastpath
from ifvip.cli import cli

FILE = """\
auto vx0
allow-hotplug vx1
iface vx0 inet static
    address 198.51.100.7/24
    gateway 198.51.100.1
    up ip route add 203.0.113.0/24 via 198.51.100.1 dev $IFACE
iface vx1 inet6 static
    address 2001:db8::7/64
    description \033[31mred\033[0m

mapping vx2
    script /bin/false
    map work
"""

SNAPSHOT = {
    "version": "0.1.0",
    "pid": 4242,
    "started": 1700000000.0,
    "taken": 1700000100.0,
    "groups": [
        {
            "protocol": "carp",
            "name": "vhid42",
            "interface": "vx0",
            "vrid": 42,
            "state": "MASTER",
            "since": 1700000050.0,
            "master": "198.51.100.7",
            "advskew": 0,
            "vips": ["198.51.100.100/32"],
            "checks": [{"name": "tcp 80", "kind": "tcp", "healthy": True, "last": True}],
            "counters": {"adverts_sent": 50, "dropped_ttl": 2},
        }
    ],
}


class Case(NamedTuple):
    args: tuple[str, ...]
    fast: bool  # the fast path takes it (else click does)
    prog: str = "ifvip"
    env: tuple[tuple[str, str], ...] = ()


F, S, D, SOCK, SD = "@F", "@S", "@D", "@SOCK", "@SD"  # replaced per test run

CASES = [
    # --version
    Case(("--version",), True),
    Case(("-V",), True),
    Case(("-V", "-V"), False),
    Case(("--version", "ifquery"), False),
    Case((), False),
    Case(("--help",), False),
    # ifquery
    Case(("ifquery", "-i", F, "vx0"), True),
    Case(("ifquery", f"-i{F}", "vx0"), True),
    Case(("ifquery", f"--interfaces={F}", "vx0"), True),
    Case(("ifquery", "vx0", "-i", F), True),
    Case(("ifquery", "-i", F, "vx1"), True),
    Case(("ifquery", "-i", F, "vx0", "vx1", "nothere"), True),
    Case(("ifquery", "-i", F, "vx0=work"), True),
    Case(("ifquery", "-i", F, "vx2"), True),
    Case(("ifquery", "-i", F, "-l"), True),
    Case(("ifquery", "-i", F, "--list", "-a"), True),
    Case(("ifquery", "-la", "-i", F), True),
    Case(("ifquery", f"-ali{F}"), True),
    Case(("ifquery", "-i", F, "-l", "--allow", "hotplug"), True),
    Case(("ifquery", "-i", F, "-l", "--allow=hotplug"), True),
    Case(("ifquery", "-i", F, "-l", "-X", "vx1"), True),
    Case(("ifquery", "-i", F, "-l", "-Xvx1", "--exclude=vx0"), True),
    Case(("ifquery", "-i", F, "vx0", "-o", "mtu=1400"), True),
    Case(("ifquery", "-i", F, "vx0", "-omtu=1400", "--option", "post-up=true"), True),
    Case(("ifquery", "-i", F, "--json", "vx0"), True),
    Case(("ifquery", "-i", F, "-v", "--no-loopback", "--no-mappings", "vx0"), True),
    Case(
        ("ifquery", "-i", F, "-l", "--read-environment"), True, env=(("EXCLUDE_INTERFACES", "vx0"),)
    ),
    Case(("ifquery", "--state", "--state-dir", S), True),
    Case(("ifquery", "--state", f"--state-dir={S}", "vx0", "vx1"), True),
    Case(("ifquery", "-i", "/nonexistent/interfaces", "vx0"), True),
    Case(("ifquery", "-i", F, "--", "-weird"), True),
    Case(("ifquery", "-i", F, "-"), True),
    Case(("ifquery", f"-i={F}", "vx0"), True),  # click: the value is "=F"
    Case(("ifquery", "-i", "-l", "vx0"), True),  # the path is "-l"
    Case(("ifquery", "-i", F, "vx0", "--", "--json"), True),
    Case(("ifquery", "-i", F, "-l", "-a", "-a"), True),
    Case(("ifquery", "-i", F, "--list", "--all", "--verbose"), True),
    Case(("ifquery", "-i", "/x", "-i", F, "vx0"), True),
    Case(("ifquery", "-i", F), False),  # no interface(s) specified
    Case(("ifquery", "-i", F, "-a", "vx0"), False),  # -a/--all goes with --list
    Case(("ifquery", "-i", F, "vx0", "-o", "mtu"), False),  # no "=" character
    Case(("ifquery", "-i"), False),
    Case(("ifquery", "--interfaces"), False),
    Case(("ifquery", "-i", F, "--json=1", "vx0"), False),
    Case(("ifquery", "--inter", F, "vx0"), False),
    Case(("ifquery", "-i", F, "-Q"), False),
    Case(("ifquery", "-i", F, "-lQ"), False),
    Case(("ifquery", "-i", F, "-l", "--allow"), False),
    Case(("ifquery", "-h"), False),
    Case(("ifquery", "--help"), False),
    Case(("ifquery", "-i", F, "-lh"), False),
    Case(("ifquery", "-i", F, "---x"), False),
    Case(("ifquery", "-i", F, "--=x", "vx0"), False),
    Case(("ifquery", "-V"), False),
    Case(("ifquery", "-i", F, "vx0"), False, env=(("IFVIP_VERSION", "1"),)),
    Case(("ifquery", "-i", F), False, env=(("IFVIP_IFQUERY_LIST_MODE", "1"),)),
    Case(("ifquery", "-i", F, "vx0"), True, env=(("IFVIP_VERSION", ""),)),
    Case(("ifquery", "-i", F, "vx0"), True, env=(("IFVIP_IFUP_FORCE", "1"),)),
    # ifup / ifdown: always -n (or refused before anything is done)
    Case(("ifup", "-n", "-i", F, "--state-dir", S, "vx0"), True),
    Case(("ifup", "-nv", "-i", F, "--state-dir", S, "vx0"), True),
    Case(("ifup", "--no-act", "-i", F, f"--state-dir={S}", "--no-scripts", "vx0"), True),
    Case(("ifup", "-n", "-a", "-i", F, "--state-dir", S), True),
    Case(("ifup", "--no-act", "--all", "--verbose", "-i", F, "--state-dir", S), True),
    Case(
        ("ifup", "-n", "--force", f"--interfaces={F}", "--state-dir", S, "--exclude", "vx1"),
        True,
    ),
    Case(("ifup", "-n", "--interfaces", F, "--state-dir", S, "--option=mtu=9000", "vx0"), True),
    Case(("ifdown", "--no-act", "--force", "--interfaces", F, "--state-dir", S, "vx0"), True),
    Case(("ifup", "-n", "-a", "-X", "vx1", "-i", F, "--state-dir", S), True),
    Case(("ifup", "-n", "--allow", "hotplug", "-i", F, "--state-dir", S), True),
    Case(("ifup", "-fn", "-i", F, "--state-dir", S, "--ignore-errors", "vx0", "vx1"), True),
    Case(("ifup", "-n", "-i", F, "--state-dir", S, "--scripts-dir", D, "vx0"), True),
    Case(("ifup", "-n", "-i", F, "--state-dir", S, "-o", "mtu=1400", "vx0"), True),
    Case(("ifup", "-n", "-i", F, "--state-dir", S, "nothere"), True),
    Case(("ifup", "-n", "-i", F, "--state-dir", S), True),
    Case(("ifup", "-n", "-i", F, "--state-dir", S, "--read-environment", "vx0"), True),
    Case(("ifup", "-n", "-i", F, "--state-dir", S, "vx0", "--no-loopback"), True),
    Case(("ifdown", "-n", "-i", F, "--state-dir", S, "vx0"), True),
    Case(("ifdown", "-n", "--force", "-i", F, "--state-dir", S, "vx0"), True),
    Case(("ifdown", "-n", "-a", "-i", F, "--state-dir", S), True),
    Case(("ifup", "-n", "-i", F, "--state-dir", S, "-o", "bad", "vx0"), False),
    Case(("ifup", "-n", "--bogus", "vx0"), False),
    Case(("ifup", "-n", "--help"), False),
    Case(("ifdown", "-n", "-i"), False),
    Case(
        ("ifup", "-n", "-i", F, "--state-dir", S, "vx0"), False, env=(("IFVIP_IFUP_VERBOSE", "1"),)
    ),
    # status
    Case(("status", "--socket", SOCK), True),
    Case(("status", f"--socket={SOCK}", "--json"), True),
    Case(("status", "--json", "--socket", "/nonexistent/ifvip.sock"), True),
    Case(("status", "--state-dir", SD), True),
    Case(("status",), True, env=(("IFVIP_STATUS_SOCKET", SOCK),)),
    Case(("status",), True, env=(("IFVIP_STATE_DIR", SD),)),
    Case(("status", "--socket", SOCK), True, env=(("IFVIP_STATE_DIR", "/nonexistent"),)),
    Case(("status", "extra"), False),
    Case(("status", "--sock", SOCK), False),
    Case(("status",), False, env=(("IFVIP_STATUS_AS_JSON", "1"),)),
    Case(("status", "--socket"), False),
    # argv[0] links
    Case(("-i", F, "vx0"), True, prog="ifquery"),
    Case(("-i", F, "vx0"), True, prog="/usr/sbin/ifquery"),
    Case(("-n", "-i", F, "--state-dir", S, "vx0"), True, prog="ifup"),
    Case(("-n", "-i", F, "--state-dir", S, "vx0"), True, prog="ifdown"),
    Case(("--version",), False, prog="ifquery"),
    Case(("-i", F), False, prog="ifquery"),
    Case(("ifquery", "-i", F, "vx0"), True, prog="ifquery"),  # "ifquery" is a target here
]

CHILD = "import sys; sys.argv = sys.argv[1:]; from ifvip.{module} import main; main()"
ROUTE = (
    "import sys; sys.argv = sys.argv[1:]; from ifvip import fastpath\n"
    "args = sys.argv[1:]\n"
    "prog = fastpath.os.path.basename(sys.argv[0])\n"
    "fast = fastpath.plan([prog, *args] if prog in fastpath.IFUPDOWN_COMMANDS else args)\n"
    "print(fast is not None, 'click' in sys.modules)\n"
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The interfaces file, state and scripts directories and a status socket that
    answers every connection with the same snapshot."""
    root = tmp_path_factory.mktemp("fastpath")
    (root / "interfaces").write_text(FILE)
    (root / "state").mkdir()
    (root / "state" / "ifstate").write_text("vx0=vx0\n")
    (root / "scripts").mkdir()
    (root / "daemon").mkdir()
    path = str(root / "daemon" / "ifvip.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()
    answer = json.dumps(SNAPSHOT).encode()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                conn.recv(256)
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield {
            F: str(root / "interfaces"),
            S: str(root / "state"),
            D: str(root / "scripts"),
            SOCK: path,
            SD: str(root / "daemon"),
        }
    finally:
        stop.set()
        thread.join(5)
        server.close()


def _run(code: str, case: Case, world: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    def fill(text: str) -> str:
        for key, value in world.items():
            text = text.replace(key, value)
        return text

    env = {k: v for k, v in os.environ.items() if not k.startswith("IFVIP_") or k.endswith("_DIR")}
    env.pop("_IFVIP_COMPLETE", None)
    env.update({k: fill(v) for k, v in case.env})
    env["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run(
        [sys.executable, "-c", code, case.prog, *(fill(a) for a in case.args)],
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: " ".join((c.prog, *c.args))[:60])
def test_fast_path_is_byte_identical_to_click(case: Case, world: dict[str, str]) -> None:
    route = _run(ROUTE, case, world)
    assert route.stdout.decode().split() == [str(case.fast), "False"], route.stderr
    fast = _run(CHILD.format(module="fastpath"), case, world)
    slow = _run(CHILD.format(module="cli"), case, world)
    assert (fast.returncode, fast.stdout, fast.stderr) == (
        slow.returncode,
        slow.stdout,
        slow.stderr,
    )


def test_the_corpus_covers_every_option_of_the_fast_commands() -> None:
    for command, spec in fastpath.SPECS.items():
        used = {
            a.split("=")[0]
            for c in CASES
            if c.fast and c.args[:1] and fastpath.SPECS.get(c.args[0]) is spec
            for a in c.args
            if a.startswith("--")
        }
        wanted = {o for o, (_name, kind) in spec.items() if o.startswith("--") and kind != "help"}
        assert wanted <= used, (command, wanted - used)


def test_the_option_tables_are_clicks() -> None:
    """fastpath.SPECS and DEFAULTS describe the click commands of cli.py exactly."""
    for command, spec in fastpath.SPECS.items():
        cmd = cli.commands[command]
        ctx = click.Context(cmd, info_name=command, parent=click.Context(cli, info_name="ifvip"))
        table: dict[str, tuple[str, str]] = {"-h": ("help", "help"), "--help": ("help", "help")}
        defaults: dict[str, object] = {}
        for param in cmd.get_params(ctx):
            if not isinstance(param, click.Option) or param.name is None:
                continue
            if not param.expose_value:
                continue
            kind = "flag" if param.is_flag else "multi" if param.multiple else "value"
            for option in param.opts:
                table[option] = (param.name, kind)
            if kind == "value":
                default = param.default
                defaults[param.name] = default if isinstance(default, str) else None
        assert table == spec, command
        assert defaults == fastpath.DEFAULTS[command], command
