"""ifvip against the real ifupdown 0.8.41 on interfaces files written by others.

The corpus is ../shared/corpus/realworld beside the checkout (files/, SOURCES.md, and its
own run.sh, whose cases this test runs with its own code): for each file, in a namespace
of its own holding veth links named as the file's interfaces and with its companion
interfaces.d directory mounted on /etc/network/interfaces.d, both programs answer
(a) ifquery --list [--allow CLASS] and ifquery NAME (exit code and stdout compared),
(b) where ifupdown reads the file, ifup -n -v -a [--allow hotplug], ifup -n -v NAME... and
ifdown -n -v -a from the state real `ifup --no-act-commands -a` recorded (exit code, stdout
and stderr compared), and (c) acceptance: `ifvip check` exits 0 exactly when ifupdown reads
the file. Any difference fails the test unless DEVIATIONS lists it with the sentence of the
README's "Where ifvip deliberately differs from ifupdown" that explains it; a listed
deviation that no longer differs fails too. The run.sh-style summary line is printed.

ifvip runs in-process in one driver per file (realworld_driver.py), the real programs as
children of it: one namespace and one Python start per file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, SHARED
from tests.programs import AS_ROOT

REALWORLD = SHARED / "corpus" / "realworld"
FILES = REALWORLD / "files"
DRIVER = Path(__file__).with_name("realworld_driver.py")
README = REPO / "README.md"
SECTION = "## Where ifvip deliberately differs from ifupdown"

# (file, case) -> a sentence of the README's section saying why ifvip differs there.
DEVIATIONS: dict[tuple[str, str], str] = {}

pytestmark = [
    pytest.mark.root,
    AS_ROOT,
    pytest.mark.skipif(not FILES.is_dir(), reason=f"the real-world corpus is absent ({FILES})"),
    pytest.mark.skipif(
        not all(shutil.which(p) for p in ("ifquery", "ifup", "ifdown", "unshare", "ip")),
        reason="Debian's ifupdown (or unshare/ip) is not installed",
    ),
]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def _stub_dhclient(work: Path) -> str:
    """A stub dhclient overlaid on /usr/sbin (never run), as run.sh does, so that dhcp
    plans show the dhclient lines as on a Debian host with isc-dhcp-client."""
    if shutil.which("dhclient", path="/usr/sbin:/sbin"):
        return "-"
    stub = work / "stub"
    stub.mkdir()
    script = stub / "dhclient"
    script.write_text(
        '#!/bin/sh\necho "realworld test: stub dhclient, not meant to run" >&2\nexit 1\n'
    )
    script.chmod(0o755)
    return str(stub)


def _one(name: str, index: int, work: Path, stub: str) -> dict[str, Any]:
    from tests.conformance.realworld_driver import link_names, statements

    ns = f"rwt-{os.getpid()}-{index}"
    scratch = work / name
    scratch.mkdir()
    fragments = FILES / f"{name}.d"
    interfaces_d = fragments if fragments.is_dir() else work / "empty.d"
    _ip("netns", "add", ns)
    try:
        _ip("-n", ns, "link", "set", "lo", "up")
        for n, link in enumerate(link_names(statements(FILES, name, fragments)), 1):
            mac = f"02:00:00:00:{n // 256:02x}:{n % 256:02x}"
            # a name the kernel refuses is left out, as run.sh does
            subprocess.run(
                ["ip", "-n", ns, "link", "add", link, "address", mac, "type", "veth",
                 "peer", "name", f"zp{n}"],
                capture_output=True, timeout=30, check=False,
            )  # fmt: skip
        done = subprocess.run(
            ["ip", "netns", "exec", ns, "unshare", "-m", "--propagation", "private",
             sys.executable, str(DRIVER), str(FILES), name, str(scratch), str(interfaces_d),
             stub],
            capture_output=True, text=True, timeout=900, check=False,
            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        assert done.returncode == 0, f"{name}: driver failed: {done.stderr[-2000:]}"
        result: dict[str, Any] = json.loads(done.stdout)
        return result
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30, check=False)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    work = tmp_path_factory.mktemp("realworld")
    (work / "empty.d").mkdir()
    stub = _stub_dhclient(work)
    names = sorted(p.name for p in FILES.iterdir() if p.is_file())
    yield {name: _one(name, index, work, stub) for index, name in enumerate(names, 1)}


def _differences(results: dict[str, dict[str, Any]]) -> dict[str, dict[tuple[str, str], str]]:
    """Per kind (ifquery, plans, accept): every differing (file, case) and how."""
    found: dict[str, dict[tuple[str, str], str]] = {"ifquery": {}, "plans": {}, "accept": {}}
    for name, result in results.items():
        for case, both in result["cases"].items():
            real, mine = both["ifupdown"], both["ifvip"]
            if case.startswith("q:"):
                if real[:2] != mine[:2]:
                    found["ifquery"][name, case] = f"ifupdown {real[:2]!r} ifvip {mine[:2]!r}"
            elif real != mine:
                found["plans"][name, case] = f"ifupdown {real!r}\n    ifvip {mine!r}"
        accept = result["accept"]
        if accept["ifupdown"] != accept["ifvip"]:
            found["accept"][name, "accept"] = f"ifupdown reads: {accept['ifupdown']}, " + (
                f"ifvip check: {accept['check']!r}"
            )
    return found


def _counts(results: dict[str, dict[str, Any]], prefix: str) -> int:
    return sum(1 for r in results.values() for case in r["cases"] if case.startswith(prefix))


def test_realworld_files(results: dict[str, dict[str, Any]]) -> None:
    found = _differences(results)
    total_q, total_p = _counts(results, "q:"), _counts(results, "p:")
    print(
        f"\nrealworld: ifquery {total_q - len(found['ifquery'])}/{total_q} identical, "
        f"plans {total_p - len(found['plans'])}/{total_p} identical, "
        f"accept {len(results) - len(found['accept'])}/{len(results)} agree"
    )
    undocumented = {
        key: how for kind in found.values() for key, how in kind.items() if key not in DEVIATIONS
    }
    assert not undocumented, "\n".join(
        f"{f} {c}:\n    {how}" for (f, c), how in undocumented.items()
    )
    differing = {key for kind in found.values() for key in kind}
    stale = [key for key in DEVIATIONS if key not in differing]
    assert not stale, f"listed deviations that no longer differ: {stale}"


def test_deviations_are_documented() -> None:
    text = README.read_text()
    assert SECTION in text
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    for key, sentence in DEVIATIONS.items():
        assert sentence in section, f"{key}: the README does not say {sentence!r}"
