"""Fuzzing the interfaces(5) reader and `check`: broken files are reported, never crash.

Files are built from the grammar's own fragments (stanzas, options, hooks, keywords,
continuations, comments, sourced files) then mutated with junk, odd white space, NULs,
CRs and non-UTF-8 bytes. Whatever comes out, `load()` and `check()` return, and every
diagnostic names a file that was read and a line:col inside it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from ifvip.interfaces.check import check
from ifvip.interfaces.loader import load
from ifvip.interfaces.options import effective_options
from tests.reliability._fuzz import fuzz

NAMES = ["eth0", "eth0:1", "br0", "lo", "eth0.5", "x" * 20, "e\u00e9", "-", "a=b", "*"]
FAMILIES = ["inet", "inet6", "can", "ipx", "foo"]
METHODS = ["static", "dhcp", "manual", "loopback", "auto", "tunnel", "v4tunnel", "bogus"]
OPTIONS = [
    "address",
    "netmask",
    "gateway",
    "broadcast",
    "mtu",
    "hwaddress",
    "pre-up",
    "up",
    "post-up",
    "down",
    "pre-down",
    "post-down",
    "ucarp-vid",
    "ucarp-vip",
    "ucarp-password",
    "ucarp-advskew",
    "description",
    "vrrp-id",
    "scope",
    "accept_ra",
    "dad-attempts",
    "unknown-thing",
]
VALUES = [
    "198.51.100.1",
    "198.51.100.1/24",
    "255.255.255.0",
    "24",
    "33",
    "2001:db8::1/64",
    "+",
    "-",
    "1500",
    "0",
    "ip link set $IFACE up",
    "ether 02:00:00:00:00:01",
    "random",
    "x" * 90,
    "a b  c",
    "",
]
SOURCED = ["sub", "sub.d", "missing", "sub*", "interfaces"]  # relative to the test's dir


@st.composite
def statement(draw: st.DrawFn) -> str:
    kind = draw(
        st.sampled_from(
            ["iface", "option", "auto", "allow", "mapping", "map", "source", "srcdir", "misc"]
        )
    )
    name = draw(st.sampled_from(NAMES))
    if kind == "iface":
        line = f"iface {name} {draw(st.sampled_from(FAMILIES))} {draw(st.sampled_from(METHODS))}"
        if draw(st.booleans()):
            line += f" inherits {draw(st.sampled_from(NAMES))}"
        return line
    if kind == "option":
        return f"{draw(st.sampled_from(OPTIONS))} {draw(st.sampled_from(VALUES))}"
    if kind == "auto":
        return "auto " + " ".join(draw(st.lists(st.sampled_from(NAMES), max_size=3)))
    if kind == "allow":
        return f"allow-{draw(st.sampled_from(['hotplug', 'x', '']))} {name}"
    if kind == "mapping":
        return f"mapping {name}"
    if kind == "map":
        return draw(st.sampled_from(["script /bin/true", "map a b", "map", "script"]))
    if kind == "source":
        return f"source {draw(st.sampled_from(SOURCED))}"
    if kind == "srcdir":
        return f"source-directory {draw(st.sampled_from(SOURCED))}"
    return draw(
        st.sampled_from(
            ["no-auto-down eth0", "no-scripts eth0", "rename a=b", "rename", "iface", "iface a"]
        )
    )


@st.composite
def physical_line(draw: st.DrawFn) -> str:
    line = draw(statement())
    indent = draw(st.sampled_from(["", "  ", "\t", " \v", "\f"]))
    tail = draw(st.sampled_from(["", " ", "\\", " \\", "\r", " # c", "\t"]))
    line = indent + line + tail
    if draw(st.integers(0, 9)) == 0:  # a junk mutation now and then
        junk = draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=8))
        at = draw(st.integers(0, len(line)))
        line = line[:at] + junk + line[at:]
    return line


@st.composite
def interfaces_text(draw: st.DrawFn) -> bytes:
    lines = draw(
        st.lists(st.one_of(physical_line(), st.just("# comment"), st.just("")), max_size=25)
    )
    text = "\n".join(lines) + draw(st.sampled_from(["\n", "", "\\\n", "\\"]))
    data = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 4)) == 0:  # raw bytes: NUL, invalid UTF-8
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.sampled_from([b"\0", b"\xff\xfe", b"\x80", b"\0x"])) + data[at:]
    return data


def _lines(path: str) -> list[str]:
    return Path(path).read_bytes().decode("utf-8", "surrogateescape").split("\n")


@fuzz(150)
@given(top=interfaces_text(), sub=interfaces_text(), in_dir=interfaces_text())
# Found by this fuzzer: a non-UTF-8 byte in a name or a password crashed `ifvip check`.
@example(top=b"iface \xff\xfeeth0 inet static\n", sub=b"", in_dir=b"")
@example(top=b"iface eth0 inet manual\n ucarp-password s\xffcret\n", sub=b"", in_dir=b"")
@example(top=b"iface eth0 inet static\nsource sub\\\niface * inet static\n", sub=b"", in_dir=b"")
def test_reader_and_check_never_crash_and_always_name_a_place(
    top: bytes, sub: bytes, in_dir: bytes
) -> None:
    with tempfile.TemporaryDirectory(prefix="ifvip-fuzz-") as tmp:
        root = Path(tmp)
        (root / "interfaces").write_bytes(top)
        (root / "sub").write_bytes(sub)
        (root / "sub.d").mkdir()
        (root / "sub.d" / "part1").write_bytes(in_dir)
        (root / "sub.d" / "ignored.conf").write_bytes(b"iface broken")
        cwd = os.getcwd()
        os.chdir(root)  # relative `source` lines resolve here, never outside the tmp dir
        try:
            defn = load(str(root / "interfaces"))
            problems = check(defn)
            for stanza in defn.ifaces:
                # ifquery's view: defaults and conversions (netmask, broadcast...) applied.
                pairs = [(o.name, o.value) for o in stanza.options]
                effective_options(pairs, stanza.family, stanza.method, stanza.name, ())
        finally:
            os.chdir(cwd)
        read = set(defn.files)
        for problem in [*defn.diagnostics, *problems]:
            assert str(problem).startswith(f"{problem.path}:{problem.line}:{problem.col}: ")
            assert problem.msg.strip(), problem
            assert os.path.isabs(problem.path) or problem.path in read, problem
            resolved = problem.path if os.path.isabs(problem.path) else str(root / problem.path)
            assert resolved.startswith(tmp), problem
            if problem.path in read:
                lines = _lines(resolved)
                assert 1 <= problem.line <= len(lines), problem
                assert 1 <= problem.col <= len(lines[problem.line - 1]) + 1, problem
