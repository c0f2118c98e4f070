"""`ifvip ifup`/`ifdown` on the command line: ifupdown's messages and exit codes, strictness,
argv[0] dispatch. Everything here stops before touching the kernel (-n or a refusal)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ifvip.cli import main

GOOD = """\
auto eth0 ppp0
iface eth0 inet static
    address 198.51.100.7/24
    up ip route add 203.0.113.0/24 via 198.51.100.1 dev $IFACE
iface ppp0 inet ppp
    provider isp
"""


def _run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str, text: str = GOOD
) -> tuple[int, str]:
    (tmp_path / "interfaces").write_text(text)
    base = ["-i", str(tmp_path / "interfaces"), "--state-dir", str(tmp_path / "state")]
    with pytest.raises(SystemExit) as exit_:
        main([args[0], *base, *args[1:]])
    captured = capsys.readouterr()
    assert captured.out == ""  # ifupdown writes everything to stderr
    return int(exit_.value.code or 0), captured.err


def test_no_act_prints_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(tmp_path, capsys, "ifup", "-n", "--no-scripts", "eth0")
    assert code == 0
    assert err.splitlines() == [
        "",
        "ip addr add 198.51.100.7/255.255.255.0 broadcast 198.51.100.255 \t  dev eth0 label eth0",
        "ip link set dev eth0   up",
        "",
        "ip route add 203.0.113.0/24 via 198.51.100.1 dev $IFACE",
    ]
    assert not (tmp_path / "state").exists()  # -n writes nothing


def test_verbose_says_which_stanza(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(tmp_path, capsys, "ifup", "-n", "-v", "eth0=eth0")
    assert code == 0
    assert "ifup: configuring interface eth0=eth0 (inet)" in err.splitlines()
    assert "run-parts --exit-on-error --verbose /etc/network/if-pre-up.d" in err.splitlines()


def test_ifdown_without_state_is_not_configured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(tmp_path, capsys, "ifdown", "-n", "eth0")
    assert (code, err) == (0, "ifdown: interface eth0 not configured\n")
    code, err = _run(tmp_path, capsys, "ifdown", "-n", "--force", "--no-scripts", "eth0")
    assert code == 0 and "ip -4 addr flush dev eth0" in err


def test_usage_and_selection_errors_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path, capsys, "ifup", "-n") == (1, "ifup: no interface(s) specified\n")
    code, err = _run(tmp_path, capsys, "ifup", "-n", "-a", "eth0")
    assert code == 1 and "but not both" in err
    code, err = _run(tmp_path, capsys, "ifup", "-n", "--no-scripts", "eth0", "nosuch")
    assert code == 1 and "ifup: unknown interface nosuch" in err.splitlines()
    assert "ip link set dev eth0   up" in err.splitlines()  # the others still go on
    code, _err = _run(tmp_path, capsys, "ifup", "--no-such-option")
    assert code == 1  # ifupdown exits 1 on usage errors, not click's 2


def test_every_method_plans_ifupdowns_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(tmp_path, capsys, "ifup", "-n", "--no-scripts", "ppp0")
    assert (code, err) == (0, "\npon isp  \n")
    code, err = _run(tmp_path, capsys, "ifdown", "-n", "--force", "--no-scripts", "ppp0")
    assert (code, err) == (0, "poff isp\n\n")


BAD_AMONG_GOOD = """\
auto eth0 eth1
iface eth0 inet static
    address <Haupt-IP>
    gateway 198.51.100.1
iface eth1 inet static
    address 198.51.100.8/24 # office LAN
"""


def _prepare(tmp_path: Path, text: str, *targets: str, no_act: bool = False) -> object:
    from ifvip.ifupdown.command import Options, prepare
    from ifvip.interfaces.patterns import SystemView

    (tmp_path / "interfaces").write_text(text)
    opts = Options(
        up=True,
        path=str(tmp_path / "interfaces"),
        state_dir=str(tmp_path / "state"),
        no_act=no_act,
        targets=targets,
    )
    return prepare(
        opts,
        system=SystemView(),
        run_mapping=lambda *_args: None,
        available=lambda _program: False,
        err=sys.stderr,
    )


def test_invalid_values_fail_their_interface_only(tmp_path: Path) -> None:
    from ifvip.ifupdown.invocation import Invocation

    inv = _prepare(tmp_path, BAD_AMONG_GOOD, "eth0", "eth1")
    assert isinstance(inv, Invocation)
    bad, good = inv.entries
    assert bad.refusal is not None and good.refusal is None and good.plan is not None
    path = tmp_path / "interfaces"
    assert bad.refusal.messages == (
        f"{path}:3:5: address '<Haupt-IP>' is not a valid IPv4 address[/prefix or /netmask]",
    )
    # the end-of-line comment: ifupdown's conversion cuts the prefix, the address is native
    adds = [s.op for s in good.plan.stanzas[0].steps if s.op.render().startswith("ip addr add")]
    assert type(adds[0]).__name__ == "AddAddress" and adds[0].render().startswith(
        "ip addr add 198.51.100.8/255.255.255.0 broadcast 198.51.100.255"
    )
    # a dry run prints ifupdown's lines for it, as ifupdown -n does
    dry = _prepare(tmp_path, BAD_AMONG_GOOD, "eth0", no_act=True)
    assert isinstance(dry, Invocation) and dry.entries[0].refusal is None


def test_file_errors_refuse_before_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = _run(tmp_path, capsys, "ifup", "-n", "eth0", text="iface eth0 inet static\n mtu\n")
    path = tmp_path / "interfaces"
    assert (code, err) == (
        1,
        f'ifup: {path}:2: option with empty value\nifup: couldn\'t read interfaces file "{path}"\n',
    )


def test_argv0_dispatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "interfaces").write_text(GOOD)
    for prog in ("ifup", "ifdown"):
        monkeypatch.setattr(
            sys,
            "argv",
            [f"/usr/sbin/{prog}", "-n", "-i", str(tmp_path / "interfaces"), "--state-dir",
             str(tmp_path / "state"), "--force", "--no-scripts", "eth0"],
        )  # fmt: skip
        with pytest.raises(SystemExit) as exit_:
            main()
        assert exit_.value.code == 0
        err = capsys.readouterr().err
        assert ("ip addr add" if prog == "ifup" else "ip addr del") in err


def test_route_table_names_as_ip_reads_them(tmp_path: Path) -> None:
    from ifvip.ifupdown.command import read_rt_tables

    base = tmp_path / "rt_tables"
    base.write_text("255\tlocal\n254 main # the main one\n# 9 commented\n100 dmz\nbad line\n")
    (tmp_path / "rt_tables.d").mkdir()
    (tmp_path / "rt_tables.d" / "vip.conf").write_text("0x65 vip\n")
    (tmp_path / "rt_tables.d" / "ignored.txt").write_text("102 nope\n")
    assert read_rt_tables((str(tmp_path / "missing"), str(base))) == {
        "local": 255,
        "main": 254,
        "dmz": 100,
        "vip": 101,
    }
    assert read_rt_tables((str(tmp_path / "missing"),)) == {}


def test_parse_errors_in_ifupdowns_form(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "interfaces").write_text("  address 198.51.100.7\n")
    path = tmp_path / "interfaces"
    with pytest.raises(SystemExit) as exit_:
        main(["ifquery", "-i", str(path), "--list"])
    assert exit_.value.code == 1
    assert capsys.readouterr().err == (
        f'ifquery: {path}:1: misplaced option\nifquery: couldn\'t read interfaces file "{path}"\n'
    )


MAPPINGS = """\
mapping eth0
    script {empty}
mapping eth1 eth2
    script grep
    map eth1 nosuch
iface eth2 inet manual
"""


def test_mappings_say_what_ifupdown_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.sh"
    empty.write_text("#!/bin/sh\nexit 0\n")
    empty.chmod(0o755)
    text = MAPPINGS.format(empty=empty)
    # ifupdown 0.8.41's messages and exit codes for each (mapping scripts run under -n too)
    code, err = _run(tmp_path, capsys, "ifup", "-n", "--no-scripts", "eth0", text=text)
    assert (code, err) == (1, f"ifup: no output from mapping script {empty} on eth0\n")
    code, err = _run(tmp_path, capsys, "ifup", "-n", "--no-scripts", "eth1", text=text)
    assert (code, err) == (0, "ifup: ignoring unknown interface eth1=eth1 nosuch\n")
    # grep is found on PATH; it fails (no line for eth2): no false `executing "grep" failed`
    code, err = _run(tmp_path, capsys, "ifup", "-n", "--no-scripts", "eth2", text=text)
    assert (code, err) == (1, "ifup: error trying to executing mapping script grep on eth2\n")
