"""Health-check probes against real services in namespaces: HTTP, TCP, listener, carrier.

Two namespaces joined by a veth pair (203.0.113.1 and .2); a python http.server runs in
the second. Each probe runs in a child `python` inside a namespace (the way the daemon
runs: the whole process in the namespace, /proc/net and /sys/class/net its own).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.programs import AS_ROOT

pytestmark = [
    pytest.mark.root,
    AS_ROOT,
]

SERVER = "203.0.113.2"
PORT = 8080


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, timeout=10, capture_output=True)


@dataclass
class Pair:
    client: str
    server: str
    procs: list[subprocess.Popen[bytes]]

    def start_http(self, root: Path) -> subprocess.Popen[bytes]:
        argv = [*self._exec(self.server), "-m", "http.server", "--bind", SERVER]
        proc = subprocess.Popen(
            [*argv, "--directory", str(root), str(PORT)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.probe(self.server, f"TcpCheck(None, {PORT})")["ok"]:
                return proc
            time.sleep(0.1)
        raise AssertionError("http.server did not start")

    def _exec(self, ns: str) -> list[str]:
        return ["ip", "netns", "exec", ns, sys.executable]

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        proc.terminate()
        proc.wait(10)

    def probe(self, ns: str, check: str, state: str = "MASTER") -> dict[str, object]:
        code = (  # asyncio without ssl, as `ifvip run` starts (ifvip/tls.py)
            "from ifvip import tls; tls.defer()\n"
            "import asyncio, ipaddress, json\n"
            "from ifvip.daemon.checks import *\n"
            "from ifvip.daemon.probes import run_probe\n"
            f"r = asyncio.run(run_probe({check}, state={state!r}, timeout=2))\n"
            "print(json.dumps({'ok': r.ok, 'detail': r.detail, 'judged': r.judged}))\n"
        )
        out = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", code],
            check=True,
            timeout=30,
            capture_output=True,
            text=True,
        )
        result: dict[str, object] = json.loads(out.stdout)
        return result


@pytest.fixture
def pair() -> Iterator[Pair]:
    tag = uuid.uuid4().hex[:8]
    a, b = f"ifvip-chk-a-{tag}", f"ifvip-chk-b-{tag}"
    made = Pair(a, b, [])
    try:
        _ip("netns", "add", a)
        _ip("netns", "add", b)
        _ip("-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b)
        for ns, address in ((a, "203.0.113.1/24"), (b, f"{SERVER}/24")):
            _ip("-n", ns, "addr", "add", address, "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield made
    finally:
        for proc in made.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], check=False, timeout=10)


def test_http_check_follows_the_server(pair: Pair, tmp_path: Path) -> None:
    (tmp_path / "health").write_text("ok\n")
    server = pair.start_http(tmp_path)
    good = f"parse_check_options(http=['http://{SERVER}:{PORT}/health']).checks[0]"
    missing = f"parse_check_options(http=['http://{SERVER}:{PORT}/nope']).checks[0]"
    assert pair.probe(pair.client, good) == {"ok": True, "detail": "HTTP 200", "judged": "check"}
    assert pair.probe(pair.client, missing)["detail"] == "HTTP 404"
    assert not pair.probe(pair.client, missing)["ok"]
    pair.stop(server)
    down = pair.probe(pair.client, good)
    assert down == {"ok": False, "detail": "Connection refused", "judged": "check"}


def test_tcp_connect_and_local_listener(pair: Pair, tmp_path: Path) -> None:
    server = pair.start_http(tmp_path)
    remote = f"TcpCheck(ipaddress.ip_address('{SERVER}'), {PORT})"
    local = f"TcpCheck(None, {PORT})"
    assert pair.probe(pair.client, remote)["ok"]
    assert pair.probe(pair.server, local) == {
        "ok": True,
        "detail": "listening",
        "judged": "listener",
    }
    # The client namespace has no listener on the port: the test is local.
    assert not pair.probe(pair.client, local)["ok"]
    pair.stop(server)
    assert not pair.probe(pair.client, remote)["ok"]
    assert not pair.probe(pair.server, local)["ok"]


def test_a_vip_check_on_a_backup_is_judged_locally(pair: Pair, tmp_path: Path) -> None:
    """The client is a backup whose peer holds the VIP: it must not test the peer."""
    server = pair.start_http(tmp_path)
    plan = (
        f"probe_plan(TcpCheck(ipaddress.ip_address('{SERVER}'), {PORT}), is_master=False, "
        f"vips=[ipaddress.ip_address('{SERVER}')])"
    )
    assert pair.probe(pair.client, plan) == {
        "ok": False,
        "detail": "nothing listens",
        "judged": "listener",
    }
    assert pair.probe(pair.server, plan)["ok"]
    pair.stop(server)


def test_carrier_tracking(pair: Pair) -> None:
    check = "CarrierCheck('eth0')"
    assert pair.probe(pair.client, check) == {"ok": True, "detail": "carrier", "judged": "check"}
    _ip("-n", pair.server, "link", "set", "eth0", "down")
    deadline = time.monotonic() + 5
    while pair.probe(pair.client, check)["ok"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pair.probe(pair.client, check)["detail"] == "no carrier"
    assert not pair.probe(pair.client, "CarrierCheck('eth9')")["ok"]


def test_runner_demotes_after_fall_rounds_and_promotes_after_rise(
    pair: Pair, tmp_path: Path
) -> None:
    """A CheckRunner in the server namespace: stop the service, then start it again."""
    server = pair.start_http(tmp_path)
    code = (
        "import asyncio, sys, time\n"
        "from ifvip.daemon.checks import parse_check_options\n"
        "from ifvip.daemon.probes import CheckRunner\n"
        f"config = parse_check_options(tcp=['{PORT}'], interval='0.2', rise='2', fall='3')\n"
        "def feed(event):\n"
        "    print(type(event).__name__, time.monotonic(), flush=True)\n"
        "async def main():\n"
        "    runner = CheckRunner(config, [], state=lambda: 'MASTER', feed=feed)\n"
        "    task = asyncio.create_task(runner.run())\n"
        "    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)\n"
        "    task.cancel()\n"
        "    print('rounds', runner.rounds, flush=True)\n"
        "asyncio.run(main())\n"
    )
    with subprocess.Popen(
        ["ip", "netns", "exec", pair.server, sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as runner:
        try:
            _demote_then_promote(pair, runner, server, tmp_path)
        finally:
            if runner.poll() is None:
                runner.kill()


def _demote_then_promote(
    pair: Pair, runner: subprocess.Popen[str], server: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    assert runner.stdin is not None and runner.stdout is not None
    time.sleep(1.0)
    stopped = time.monotonic()
    pair.stop(server)
    line = runner.stdout.readline().split()
    assert line[0] == "Demote"
    # Three failing rounds 0.2 s apart, the first within one interval of the stop.
    assert float(line[1]) - stopped < 0.2 * 3 + 2 + 0.5  # timeout margin for a loaded host
    pair.start_http(tmp_path)
    assert runner.stdout.readline().split()[0] == "Promote"
    runner.stdin.write("\n")
    runner.stdin.flush()
    assert runner.stdout.readline().startswith("rounds")
    runner.wait(10)


def test_metrics_and_probes_endpoints_bound_to_one_address(pair: Pair) -> None:
    """MetricsServer in the server namespace on 203.0.113.2 only; scraped from the client."""
    serve = (
        "import asyncio, sys\n"
        "from ifvip.daemon.metrics import MetricsServer\n"
        "from ifvip.daemon.status import GroupStatus, Snapshot\n"
        "group = GroupStatus('carp', 'vhid 7', 'eth0', 7, 'MASTER', vips=('203.0.113.10/24',),\n"
        "                    counters={'adverts_sent': 5})\n"
        "snap = Snapshot('0', 1, 0.0, 0.0, (group,))\n"
        "async def main():\n"
        f"    server = MetricsServer('{SERVER}', 9165, lambda: snap)\n"
        "    await server.start()\n"
        "    print('up', flush=True)\n"
        "    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)\n"
        "    await server.close()\n"
        "asyncio.run(main())\n"
    )
    scrape = (
        "import sys, urllib.request, urllib.error\n"
        "for path in ('/metrics', '/healthz', '/readyz', '/nope'):\n"
        "    try:\n"
        f"        r = urllib.request.urlopen('http://{SERVER}:9165' + path, timeout=5)\n"
        "        print(path, r.status, r.read().decode().count('ifvip_vrrp_state{'))\n"
        "    except urllib.error.HTTPError as e:\n"
        "        print(path, e.code, 0)\n"
    )
    with subprocess.Popen(
        [*pair._exec(pair.server), "-c", serve],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None and server.stdin is not None
            assert server.stdout.readline() == "up\n"
            out = subprocess.run(
                [*pair._exec(pair.client), "-c", scrape],
                check=True,
                timeout=30,
                capture_output=True,
                text=True,
            ).stdout.splitlines()
            assert out == ["/metrics 200 1", "/healthz 200 0", "/readyz 200 0", "/nope 404 0"]
            _ip("-n", pair.server, "addr", "add", "203.0.113.3/24", "dev", "eth0")
            other = pair.probe(pair.server, "TcpCheck(ipaddress.ip_address('203.0.113.3'), 9165)")
            assert not other["ok"]  # bound to 203.0.113.2 only
            server.stdin.write("\n")
            server.stdin.flush()
            assert server.wait(10) == 0
        finally:
            if server.poll() is None:
                server.kill()


def test_https_check_verifies_the_certificate_unless_insecure(pair: Pair, tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subprocess.run(
        [*openssl, "-subj", f"/CN={SERVER}", "-keyout", str(key), "-out", str(cert)],
        check=True,
        timeout=60,
        capture_output=True,
    )
    (tmp_path / "index.html").write_text("ok\n")
    serve = (
        "import http.server, ssl, functools\n"
        "handler = functools.partial(http.server.SimpleHTTPRequestHandler,\n"
        f"                            directory={str(tmp_path)!r})\n"
        f"httpd = http.server.HTTPServer(({SERVER!r}, 8443), handler)\n"
        "context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
        f"context.load_cert_chain({str(cert)!r}, {str(key)!r})\n"
        "httpd.socket = context.wrap_socket(httpd.socket, server_side=True)\n"
        "httpd.serve_forever()\n"
    )
    server = subprocess.Popen(
        [*pair._exec(pair.server), "-c", serve],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pair.procs.append(server)
    deadline = time.monotonic() + 10
    while not pair.probe(pair.server, "TcpCheck(None, 8443)")["ok"]:
        assert time.monotonic() < deadline, "the https server did not start"
        time.sleep(0.1)
    url = f"https://{SERVER}:8443/"
    strict = pair.probe(pair.client, f"parse_check_options(http=[{url!r}]).checks[0]")
    assert strict["ok"] is False and str(strict["detail"]).startswith("TLS: ")
    lax = f"parse_check_options(http=[{url!r}], http_insecure=True).checks[0]"
    assert pair.probe(pair.client, lax) == {"ok": True, "detail": "HTTP 200", "judged": "check"}
