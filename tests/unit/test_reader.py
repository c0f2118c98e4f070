"""The interfaces(5) reader: line discipline, stanzas, errors with path:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from ifvip.interfaces.check import check
from ifvip.interfaces.loader import load, logical_lines
from ifvip.interfaces.options import effective_options


def _write(tmp_path: Path, text: str, name: str = "interfaces") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_continuation_joins_raw_lines_and_comments_never_continue() -> None:
    text = "up echo a\\\n  b\n# c \\\nup x\\ \n  up y\\\n#not-comment\n"
    lines = [line.text for line in logical_lines(text)]
    assert lines == ["up echo a  b", "up x\\", "up y#not-comment"]


def test_logical_line_locates_offsets_on_the_physical_line() -> None:
    (line,) = list(logical_lines("  up echo a\\\n    bcd\n"))
    assert line.locate("f", 3).line == 1 and line.locate("f", 3).col == 6
    assert (line.locate("f", 11).line, line.locate("f", 11).col) == (2, 3)


def test_crlf_breaks_at_the_first_continuation(tmp_path: Path) -> None:
    path = _write(tmp_path, "iface eth0 inet manual\r\n  up a \\\r\n  next\r\n")
    defn = load(path)
    assert not defn.ifupdown_ok
    (error,) = defn.errors
    assert (error.line, error.msg) == (3, "option with empty value")


def test_errors_name_path_line_and_column_and_reading_goes_on(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "auto eth0\n  address 198.51.100.1\niface eth0 inet7 static\niface eth1 inet\n",
    )
    defn = load(path)
    assert [str(e) for e in defn.errors] == [
        f"{path}:2:3: misplaced option",
        f"{path}:3:12: unknown or no address type and no inherits keyword specified",
        f"{path}:4:16: unknown or no method and no inherits keyword specified",
    ]


def test_repeated_option_is_joined_like_ifupdown_and_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, "iface eth0 inet static\n address 198.51.100.1\n mtu 1400\n mtu 1500\n")
    defn = load(path, no_loopback=True)
    assert defn.ifupdown_ok
    (stanza,) = defn.ifaces
    assert stanza.get("mtu") == "1400\n1500"
    (error,) = defn.errors
    assert error.line == 4 and "repeated" in error.msg


def test_hooks_repeat_and_aliases_map(tmp_path: Path) -> None:
    path = _write(tmp_path, "iface eth0 inet manual\n up a\n post-up b\n pre-down c\n down d\n")
    (stanza,) = load(path, no_loopback=True).ifaces
    assert [(o.name, o.value) for o in stanza.options] == [
        ("up", "a"),
        ("up", "b"),
        ("down", "c"),
        ("down", "d"),
    ]


def test_inherits_copies_options_first_and_takes_family_and_method(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "iface common inet static\n netmask 255.255.255.0\n"
        "iface eth1 inherits common\n address 198.51.100.9\n",
    )
    _common, eth1 = load(path, no_loopback=True).ifaces
    assert (eth1.family, eth1.method, eth1.inherits) == ("inet", "static", "common")
    assert [o.name for o in eth1.options] == ["netmask", "address"]


def test_unknown_template_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "iface eth1 inet static inherits nothere\n")
    (error,) = load(path).errors
    assert error.msg == "unknown iface to inherit from: nothere (inet)"


def test_source_is_relative_to_the_including_file_and_errors_name_the_sourced_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_text("iface a inet manual\n")
    (tmp_path / "d" / "b.cfg").write_text("iface skipped inet manual\n")
    (tmp_path / "d" / "c").write_text("iface c inet manual\n mtu\niface after inet manual\n")
    top = _write(tmp_path, "source-directory d\nsource d/*.cfg\n")
    defn = load(top, no_loopback=True)
    # ifupdown: a sourced file's error stops that file only; the top file is still read.
    assert defn.ifupdown_ok
    assert [s.name for s in defn.ifaces] == ["a", "c", "skipped"]
    (error,) = defn.errors
    assert error.path.endswith("d/c") and error.line == 2


def test_implicit_lo_heads_auto_and_stanzas_unless_defined(tmp_path: Path) -> None:
    defn = load(_write(tmp_path, "auto eth0\niface eth0 inet manual\n"))
    assert defn.allowed("auto") == ("lo", "eth0")
    assert defn.ifaces[0].builtin and defn.ifaces[0].name == "lo"
    defined = load(_write(tmp_path, "iface lo inet loopback\n", "b"))
    assert [s.builtin for s in defined.ifaces] == [False]


def test_missing_file_is_only_a_warning(tmp_path: Path) -> None:
    defn = load(str(tmp_path / "nothere"))
    assert defn.ifupdown_ok and not defn.errors and defn.warnings


@pytest.mark.parametrize(
    ("options", "family", "method", "physical", "expected"),
    [
        (
            [("address", "203.0.113.32")],
            "inet",
            "static",
            "eth2",
            [
                ("address", "203.0.113.32"),
                ("broadcast", "203.0.113.255"),
                ("netmask", "255.255.255.0"),
            ],
        ),
        (
            [("address", "198.51.100.35/255.255.255.192"), ("netmask", "24")],
            "inet",
            "static",
            "eth5",
            [("address", "198.51.100.35"), ("netmask", "24"), ("broadcast", "+")],
        ),
        (
            [("address", "198.51.100.1/31")],
            "inet",
            "static",
            "eth0",
            [
                ("address", "198.51.100.1"),
                ("broadcast", "255.255.255.255"),
                ("netmask", "255.255.255.254"),
            ],
        ),
        (
            [("address", "foo")],
            "inet",
            "static",
            "eth0",
            [("address", "foo"), ("broadcast", "+"), ("netmask", "foo")],
        ),
        (
            [("address", "2001:db8::1/64"), ("gateway", "2001:db8::ffff")],
            "inet6",
            "static",
            "eth0:1",
            [
                ("address", "2001:db8::1"),
                ("gateway", "2001:db8::ffff"),
                ("autoconf", "0"),
                ("preferred-lifetime", "0"),
                ("dad-attempts", "60"),
                ("dad-interval", "0.1"),
                ("netmask", "64"),
                ("accept_ra", "0"),
            ],
        ),
        (
            [("local", "198.51.100.60")],
            "inet6",
            "6to4",
            "tun0",
            [("local", "198.51.100.60"), ("preferred-lifetime", ""), ("hexaddress", "c633:643c")],
        ),
        (
            [("hwaddress", "ether 02:00:00:00:01:35")],
            "inet",
            "manual",
            "eth0",
            [("hwaddress", "02:00:00:00:01:35")],
        ),
    ],
)
def test_defaults_and_conversions_match_ifupdown(
    options: list[tuple[str, str]],
    family: str,
    method: str,
    physical: str,
    expected: list[tuple[str, str]],
) -> None:
    assert effective_options(options, family, method, physical) == expected


def test_check_reports_what_ifupdown_lets_through(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "iface eth0 inet static\n address 198.51.100.300\n netmask 255.0.255.0\n"
        "iface a-very-long-interface-name inet manual\n"
        "iface eth1 inet static\n gateway 198.51.100.1\n frobnicate 1\n"
        "iface eth2 inet static\n address 198.51.100.2/24\n ucarp-password " + "x" * 20 + "\n",
    )
    problems = check(load(path))
    messages = [(p.line, p.warning, p.msg) for p in problems]
    assert (
        2,
        False,
        "address '198.51.100.300' is not a valid IPv4 address[/prefix or /netmask]",
    ) in messages
    bad_mask = "netmask '255.0.255.0' is not a valid IPv4 netmask or prefix length"
    assert (3, False, bad_mask) in messages
    assert any(line == 4 and "longer than 15 bytes" in msg for line, _w, msg in messages)
    assert (5, False, "eth1: inet static needs option 'address'") in messages
    assert any(line == 7 and warning and "frobnicate" in msg for line, warning, msg in messages)
    assert any(line == 10 and "19 bytes" in msg for line, _w, msg in messages)
    # The secret itself never appears in a diagnostic.
    assert all("x" * 20 not in p.msg for p in problems)


def test_check_accepts_the_production_example() -> None:
    example = Path(__file__).resolve().parents[3] / "shared" / "examples"
    path = example / "production-dmz.interfaces"
    if not path.exists():
        pytest.skip("shared examples not beside the checkout")
    problems = check(load(str(path)))
    assert [p for p in problems if not p.warning] == []


def test_check_scopes_errors_to_their_interface(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ifvip.cli import cli
    from ifvip.interfaces.check import file_errors

    path = _write(
        tmp_path,
        "auto lo eth0 eth9 allow-hotplug eth1\n"
        "iface lo inet loopback\n"
        "iface eth0 inet static\n address 198.51.100.2/24 # office LAN\n"
        " gateway 198.51.100.1 # router\n"
        "iface eth1 inet static\n address 192.168.0.XXX # placeholder\n"
        " bridge_ports eth2\n bridge_ports eth3\n"
        "iface lo0 inet loopback\n",
    )
    problems = check(load(path))
    found = {(p.line, p.warning, p.interface): p.msg for p in problems}
    assert found[4, True, "eth0"].startswith(
        "address '198.51.100.2/24 # office LAN' ends with a comment: ifupdown applies "
        "'198.51.100.2/24'"
    )
    assert (5, True, "eth0") in found  # the gateway: a warning, not an error
    assert found[7, False, "eth1"] == (
        "address '192.168.0.XXX # placeholder' is not a valid IPv4 address[/prefix or /netmask]"
    )
    assert found[9, False, "eth1"].startswith("option 'bridge_ports' repeated")
    assert found[1, False, "eth9"].startswith("auto eth9: no iface stanza defines eth9")
    assert found[1, False, "allow-hotplug"].startswith(
        "auto allow-hotplug: no iface stanza defines allow-hotplug ('allow-hotplug' is a "
        "keyword only at the start of a line)"
    )
    assert found[10, False, "lo0"].startswith("lo0: method inet loopback is for lo only")
    assert file_errors(problems) == []
    # Interface-scoped errors are reported; only errors that refuse the file exit 1.
    result = CliRunner().invoke(cli, ["check", "-i", path])
    assert result.exit_code == 0 and "XXX" in result.output
    bad = _write(tmp_path, "iface eth0 inet static\n mtu\n", "bad")
    assert CliRunner().invoke(cli, ["check", "-i", bad]).exit_code == 1
