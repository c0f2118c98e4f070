"""ifvip's ifquery against the installed /sbin/ifquery (ifupdown 0.8.41) on generated files.

Hypothesis writes random but valid interfaces files (stanzas of several families and
methods, continuations, comments, inherits, allow classes, repeated hooks) and both
programs answer `--list`, `--list --allow=CLASS` and `ifquery NAME` for every name: stdout
and exit codes must be identical.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ifvip.interfaces.loader import load
from ifvip.interfaces.patterns import SystemView
from ifvip.interfaces.query import QueryRequest, query, render
from ifvip.interfaces.system import run_mapping

IFQUERY = shutil.which("ifquery") or "/sbin/ifquery"

pytestmark = pytest.mark.skipif(
    not Path(IFQUERY).exists(), reason="Debian's ifupdown (/sbin/ifquery) is not installed"
)

NAMES = ["eth0", "eth1", "eth2", "br0", "eth0:1", "eth0.10", "lo", "tpl", "wan"]
CLASSES = ["hotplug", "ifvip", "auto"]

_v4 = st.builds(
    lambda a, b: f"198.51.100.{a}{b}",
    st.integers(1, 254),
    st.sampled_from(["", "/24", "/25", "/32", "/255.255.255.0", "/31"]),
)
_v6 = st.builds(
    lambda a, b: f"2001:db8::{a:x}{b}", st.integers(1, 0xFFFF), st.sampled_from(["", "/64", "/"])
)
_word = st.text(alphabet="abcdefxyz019-_./$", min_size=1, max_size=8)

_OPTIONS = {
    ("inet", "static"): [
        ("address", _v4),
        ("netmask", st.sampled_from(["255.255.255.0", "24", "255.255.0.0"])),
        ("broadcast", st.sampled_from(["+", "-", "198.51.100.255"])),
        ("gateway", _v4.map(lambda a: a.split("/")[0])),
        ("mtu", st.integers(576, 9000).map(str)),
        ("hwaddress", st.sampled_from(["02:00:00:00:00:09", "ether 02:00:00:00:00:0a"])),
        ("scope", st.sampled_from(["link", "host"])),
    ],
    ("inet", "manual"): [("mtu", st.integers(576, 9000).map(str))],
    ("inet", "dhcp"): [("hostname", _word), ("metric", st.integers(0, 99).map(str))],
    ("inet6", "static"): [
        ("address", _v6),
        ("netmask", st.sampled_from(["64", "56"])),
        ("gateway", st.just("2001:db8::1")),
        ("accept_ra", st.sampled_from(["0", "1", "2"])),
        ("dad-attempts", st.sampled_from(["0", "3"])),
        ("preferred-lifetime", st.sampled_from(["0", "3600"])),
    ],
    ("inet6", "auto"): [("privext", st.sampled_from(["0", "2"])), ("dhcp", st.just("1"))],
    ("inet6", "manual"): [("mtu", st.just("1280"))],
}
_HOOKS = ["pre-up", "up", "post-up", "down", "pre-down", "post-down"]


@st.composite
def interfaces_files(draw: st.DrawFn) -> str:
    lines: list[str] = []
    defined: list[tuple[str, str]] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["iface", "iface", "iface", "auto", "allow", "comment"]))
        if kind == "comment":
            lines.append(draw(st.sampled_from(["# note", "   # indented \\", ""])))
            continue
        if kind in ("auto", "allow"):
            names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3))
            keyword = "auto" if kind == "auto" else "allow-" + draw(st.sampled_from(CLASSES))
            lines.append(f"{keyword} {' '.join(names)}")
            continue
        name = draw(st.sampled_from(NAMES))
        family, method = draw(st.sampled_from(sorted(_OPTIONS)))
        header = f"iface {name} {family} {method}"
        same_family = [n for n, f in defined if f == family and n != name]
        if same_family and draw(st.booleans()):
            header += f" inherits {draw(st.sampled_from(same_family))}"
        lines.append(header)
        defined.append((name, family))
        options = _OPTIONS[(family, method)]
        chosen = draw(st.lists(st.sampled_from(options), unique_by=lambda o: o[0], max_size=4))
        for option, values in chosen:
            value = draw(values)
            if draw(st.integers(0, 5)) == 0 and len(value) > 2:
                cut = len(value) // 2  # a continuation inside the value
                lines.append(f"    {option} {value[:cut]}\\")
                lines.append(value[cut:])
            else:
                lines.append(f"    {option} {value}")
        for _ in range(draw(st.integers(0, 2))):
            hook = draw(st.sampled_from(_HOOKS))
            lines.append(f"\t{hook} echo {draw(_word)} $IFACE")
        if draw(st.integers(0, 4)) == 0:
            lines.append("    auto")
    return "\n".join(lines) + "\n"


def _real(path: Path, state: str, *args: str) -> tuple[int, str]:
    done = subprocess.run(
        [IFQUERY, "-i", path.name, f"--state-dir={state}", *args],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=10,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"},
        check=False,
    )
    return done.returncode, done.stdout


def _ours(path: Path, request: QueryRequest) -> tuple[int, str]:
    defn = load(str(path))
    if not defn.ifupdown_ok:
        return 1, ""
    result = query(defn, request, SystemView(), run_mapping)
    return result.exit_code, render(result, as_json=False)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(text=interfaces_files())
def test_generated_files_answer_like_real_ifquery(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "interfaces"
        path.write_text(text)
        state = str(Path(tmp) / "state")
        assert _ours(path, QueryRequest(list_mode=True)) == _real(path, state, "--list"), text
        for cls in CLASSES:
            ours = _ours(path, QueryRequest(list_mode=True, allow=cls))
            assert ours == _real(path, state, "--list", f"--allow={cls}"), (cls, text)
        for name in NAMES:
            ours = _ours(path, QueryRequest(targets=(name,)))
            assert ours == _real(path, state, name), (name, text)
