"""`ifvip decode`: every captured vector reads back as the daemons sent it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ifvip.cli import cli
from ifvip.wire.capture import decode_frames
from ifvip.wire.pcap import read_pcap
from tests.conftest import SHARED

VECTORS = SHARED / "vectors"


def _decoded(name: str, protocol: str) -> list[dict[str, object]]:
    path = VECTORS / name
    if not path.is_file():
        pytest.skip(f"the shared vectors are not beside the checkout ({VECTORS})")
    return [d.to_json() for d in decode_frames(read_pcap(path.read_bytes()), protocol)]


def _kinds(frames: list[dict[str, object]]) -> set[object]:
    return {f["kind"] for f in frames}


@pytest.mark.parametrize(
    ("name", "protocol"),
    [
        ("ucarp-vhid42-secret.pcap", "carp"),
        ("ucarp-vhid42-secret-takeover.pcap", "carp"),
        ("ka227-v2-noauth.pcap", "vrrp"),
        ("ka227-v3-ipv4-mcast-failover.pcap", "vrrp"),
        ("ka227-v3-ipv4-unicast-0.5s.pcap", "vrrp"),
        ("ka227-v3-ipv6-mcast.pcap", "vrrp"),
        ("keepalived-vrrp2-vrid51-pass.pcap", "vrrp"),
        ("keepalived-vrrp3-vrid51-ipv6.pcap", "vrrp"),
    ],
)
def test_real_daemons_captures_decode_cleanly(name: str, protocol: str) -> None:
    frames = _decoded(name, protocol)
    assert protocol in _kinds(frames)
    assert "malformed" not in _kinds(frames)


def test_ucarp_takeover_shows_both_masters_and_their_garps() -> None:
    frames = _decoded("ucarp-vhid42-secret-takeover.pcap", "carp")
    adverts = [f for f in frames if f["kind"] == "carp"]
    garps = [f for f in frames if f["kind"] == "arp" and f["garp"]]
    assert {a["src"] for a in adverts} == {"198.51.100.11", "198.51.100.12"}
    assert {a["vhid"] for a in adverts} == {42}
    assert {g["spa"] for g in garps} == {"198.51.100.100"}
    assert {g["sha"] for g in garps} == {"02:db:00:00:00:11", "02:db:00:00:00:12"}


def test_ipv6_vrrp_capture_shows_unsolicited_neighbour_advertisements() -> None:
    frames = _decoded("ka227-v3-ipv6-mcast.pcap", "vrrp")
    na = [f for f in frames if f["kind"] == "na"]
    assert na and all(f["flags"] == "O" and f["dst"] == "ff02::1" for f in na)
    adverts = [f for f in frames if f["kind"] == "vrrp"]
    assert all(a["version"] == 3 and a["ttl"] == 255 for a in adverts)


def test_injected_bad_packets_say_why() -> None:
    frames = _decoded("ka227-v2-pass-preempt-and-injected-bad.pcap", "vrrp")
    bad = [f for f in frames if f["kind"] == "malformed"]
    assert bad, "the capture holds hand-injected packets keepalived rejected"
    assert all("VRRPv2" in str(f["error"]) for f in bad)


def test_carp_codec_on_a_vrrp_capture_reports_instead_of_crashing() -> None:
    frames = _decoded("ka227-v3-ipv4-mcast-failover.pcap", "carp")
    assert "carp" not in _kinds(frames)
    assert "malformed" in _kinds(frames)


def test_cli_prints_a_line_per_frame_and_json() -> None:
    path = VECTORS / "ucarp-vhid42-secret.pcap"
    if not path.is_file():
        pytest.skip(f"the shared vectors are not beside the checkout ({VECTORS})")
    runner = CliRunner()
    text = runner.invoke(cli, ["decode", str(path)])
    assert text.exit_code == 0
    lines = text.output.splitlines()
    assert lines[0].split()[0] == "0.000000"
    assert any("CARP v2 type 1 vhid 42" in line for line in lines)
    as_json = runner.invoke(cli, ["decode", "--json", str(path)])
    assert [json.loads(line)["kind"] for line in as_json.output.splitlines()] == [
        f["kind"] for f in _decoded(path.name, "carp")
    ]


def test_cli_refuses_a_file_that_is_not_a_capture(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a capture at all, but long enough to have a header\n")
    result = CliRunner().invoke(cli, ["decode", str(path)])
    assert result.exit_code == 1
    assert "not a pcap file" in result.output
