"""The Op contract: render(), inverse() and the journal form of every op, plans, dry run."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json

import pytest

from ifvip.ifupdown.plan import (
    AddAddress,
    AddLink,
    AddRoute,
    AddRule,
    DelAddress,
    DelLink,
    DelRoute,
    DelRule,
    DryRunExecutor,
    FlushAddresses,
    LinkSettings,
    NoOp,
    Op,
    Plan,
    RenameLink,
    RunParts,
    SetInet6Mtu,
    SetLink,
    Shell,
    StanzaPlan,
    StartDhcp,
    Step,
    StopDhcp,
    WaitDad,
    WriteSysctl,
    op_from_dict,
    prefix_of,
    sysctl_name,
)
from ifvip.interfaces.model import Origin

AT = Origin("interfaces", 7, 5)

# One op of every kind with every field set, and the command it renders without `text`.
SAMPLES: list[tuple[Op, str]] = [
    (
        AddAddress(
            ifname="eth0",
            address="198.51.100.7/24",
            broadcast="198.51.100.255",
            peer="203.0.113.1",
            scope="link",
            label="eth0:1",
            origin=AT,
        ),
        "ip -4 addr add 198.51.100.7/24 peer 203.0.113.1 broadcast 198.51.100.255 scope link "
        "dev eth0 label eth0:1",
    ),
    (
        AddAddress(
            ifname="eth0", address="2001:db8::7/64", nodad=True, preferred_lft=0, valid_lft=600
        ),
        "ip -6 addr add 2001:db8::7/64 dev eth0 nodad preferred_lft 0 valid_lft 600",
    ),
    (DelAddress(ifname="eth0", address="2001:db8::7/64"), "ip -6 addr del 2001:db8::7/64 dev eth0"),
    (
        FlushAddresses(ifname="eth0", family=6, scope="global"),
        "ip -6 addr flush dev eth0 scope global",
    ),
    (FlushAddresses(ifname="eth0", mngtmpaddr=True), "ip addr flush dev eth0 mngtmpaddr"),
    (
        WaitDad(ifname="eth0", address="2001:db8::7/64", attempts=5, interval=0.5),
        "/lib/ifupdown/settle-dad.sh",
    ),
    (WaitDad(ifname="eth0", address=None), "/lib/ifupdown/wait-for-ll6.sh"),
    (
        AddRoute(
            family=4,
            dst="203.0.113.0/24",
            gateway="198.51.100.1",
            dev="eth0",
            table=100,
            metric=10,
            src="198.51.100.7",
            onlink=True,
            proto=4,
            scope="global",
        ),
        "ip -4 route add 203.0.113.0/24 via 198.51.100.1 dev eth0 table 100 metric 10 "
        "src 198.51.100.7 onlink proto static scope global",
    ),
    (
        AddRoute(family=6, gateway="2001:db8::1", dev="eth0", onlink=True, replace=True),
        "ip -6 route replace default via 2001:db8::1 dev eth0 onlink",
    ),
    (
        DelRoute(family=4, gateway="198.51.100.1", dev="eth0", metric=100),
        "ip -4 route del default via 198.51.100.1 dev eth0 metric 100",
    ),
    (
        AddRule(
            family=4,
            priority=1000,
            src="198.51.100.0/24",
            dst="203.0.113.0/24",
            table=100,
            iifname="eth0",
            oifname="eth1",
            fwmark=7,
        ),
        "ip -4 rule add priority 1000 from 198.51.100.0/24 to 203.0.113.0/24 iif eth0 oif eth1 "
        "fwmark 0x7 table 100",
    ),
    (
        DelRule(family=6, src="2001:db8::/32", table=200),
        "ip -6 rule del from 2001:db8::/32 table 200",
    ),
    (
        SetLink(ifname="eth0", up=True, mtu=9000, address="02:00:00:00:00:09", alias="uplink"),
        'ip link set dev eth0 mtu 9000 address 02:00:00:00:00:09 alias "uplink" up',
    ),
    (SetLink(ifname="eth0", up=False), "ip link set dev eth0 down"),
    (
        SetInet6Mtu(ifname="eth0.5", mtu=1400),
        'if [ "$(cat /sys/class/net/eth0.5/mtu)" -lt 1400 ]; then ip link set dev eth0.5 mtu '
        "1400; else sysctl -q -e -w net.ipv6.conf.eth0/5.mtu=1400; fi",
    ),
    (
        WriteSysctl(name="net.ipv6.conf.eth0.accept_dad", value="0"),
        "sysctl -w net.ipv6.conf.eth0.accept_dad=0",
    ),
    (
        AddLink(ifname="gre1", mode="gre", remote="203.0.113.41", local="198.51.100.40", ttl=64),
        "ip tunnel add gre1 mode gre remote 203.0.113.41 local 198.51.100.40 ttl 64",
    ),
    (
        AddLink(ifname="t6", mode="ip6ip6", remote="2001:db8::2", encaplimit="none"),
        "ip -6 tunnel add t6 mode ip6ip6 remote 2001:db8::2 encaplimit none",
    ),
    (
        AddLink(ifname="eth0.5", mode="vlan", link="eth0", vlan_id=5, exist_ok=True),
        "ip link add link eth0 name eth0.5 type vlan id 5",
    ),
    (DelLink(ifname="gre1", mode="gre", remote="203.0.113.41"), "ip link del gre1"),
    (RenameLink(ifname="eth1", new="lan1"), "ip link set eth1 name lan1"),
    (
        Shell(command="echo hi", env=(("IFACE", "eth0"),), phase="pre-up", ignore_failure=True),
        "echo hi",
    ),
    (
        RunParts(directory="/etc/network/if-up.d", env=(("A", "b"),), verbose=True),
        "run-parts --exit-on-error --verbose /etc/network/if-up.d",
    ),
    (
        RunParts(directory="/etc/network/if-down.d", exit_on_error=False),
        "run-parts /etc/network/if-down.d",
    ),
    (
        StartDhcp(ifname="eth0", client="dhclient", command="dhclient -4 eth0", stop_command="x"),
        "dhclient -4 eth0",
    ),
    (StopDhcp(ifname="eth0", client="udhcpc", command="kill it", family=4), "kill it"),
    (NoOp(reason="nothing"), ""),
]


@pytest.mark.parametrize(("op", "command"), SAMPLES, ids=[type(o).__name__ for o, _ in SAMPLES])
def test_render_is_the_canonical_command_without_text(op: Op, command: str) -> None:
    assert op.render() == command
    assert (
        dataclasses.replace(op, text="as ifupdown printed it").render() == "as ifupdown printed it"
    )


@pytest.mark.parametrize(("op", "command"), SAMPLES, ids=[type(o).__name__ for o, _ in SAMPLES])
def test_journal_form_round_trips_through_json(op: Op, command: str) -> None:
    del command
    op = dataclasses.replace(op, origin=AT, text="the line")
    data = json.loads(json.dumps(op.to_dict()))
    back = op_from_dict(data)
    assert back == op
    assert back.to_dict() == op.to_dict()  # origin and text too (they do not compare)
    assert back.origin == AT


def test_op_from_dict_rejects_unknown_and_malformed() -> None:
    with pytest.raises(ValueError, match="unknown op"):
        op_from_dict({"op": "FormatDisk"})
    with pytest.raises(ValueError, match="malformed AddAddress"):
        op_from_dict({"op": "AddAddress", "ifname": "eth0"})


def test_address_inverses_pair_up() -> None:
    add = AddAddress(ifname="eth0", address="198.51.100.7/24", label="eth0:1", text="x", origin=AT)
    undo = add.inverse()
    assert isinstance(undo, DelAddress)
    assert (undo.ifname, undo.address, undo.label, undo.text) == (
        "eth0",
        "198.51.100.7/24",
        "eth0:1",
        None,
    )
    assert undo.origin == AT
    redo = undo.inverse()
    assert redo == dataclasses.replace(add, text=None)


def test_route_inverse_deletes_or_puts_back_what_replace_overwrote() -> None:
    ours = AddRoute(family=6, gateway="2001:db8::1", dev="eth0", onlink=True, replace=True)
    undo = ours.inverse()
    assert isinstance(undo, DelRoute)
    assert (undo.family, undo.dst, undo.gateway, undo.dev) == (6, None, "2001:db8::1", "eth0")
    theirs = AddRoute(family=6, gateway="fe80::1", dev="eth0", proto=9, metric=1024)
    applied = dataclasses.replace(ours, previous=theirs)
    restore = applied.inverse()
    assert isinstance(restore, AddRoute)
    assert restore.replace and restore.gateway == "fe80::1" and restore.proto == 9
    assert restore.previous is None
    assert DelRoute(family=4, dst="203.0.113.0/24", dev="eth0").inverse() == AddRoute(
        family=4, dst="203.0.113.0/24", dev="eth0"
    )


def test_rule_inverses() -> None:
    add = AddRule(family=4, src="198.51.100.0/24", table=100)
    assert add.inverse() == DelRule(family=4, src="198.51.100.0/24", table=100)
    assert DelRule(family=4, table=100).inverse() == AddRule(family=4, table=100)


def test_set_link_inverse_restores_only_what_changed() -> None:
    op = SetLink(ifname="eth0", up=True, mtu=9000, address="02:00:00:00:00:09")
    assert op.inverse() is None  # not applied: nothing known to restore
    before = LinkSettings(up=False, mtu=1500, address="02:00:00:00:00:01")
    assert dataclasses.replace(op, previous=before).inverse() == SetLink(
        ifname="eth0", up=False, mtu=1500, address="02:00:00:00:00:01"
    )
    same = LinkSettings(up=True, mtu=9000, address="02:00:00:00:00:09")
    assert dataclasses.replace(op, previous=same).inverse() is None
    alias = SetLink(ifname="eth0", alias="uplink", previous=LinkSettings(True, 1500, "x", None))
    assert alias.inverse() == SetLink(ifname="eth0", alias="")


def test_sysctl_inverse_writes_the_old_value_back() -> None:
    op = WriteSysctl(name="net.ipv6.conf.eth0.accept_ra", value="0")
    assert op.inverse() is None
    assert dataclasses.replace(op, previous="1").inverse() == WriteSysctl(
        name="net.ipv6.conf.eth0.accept_ra", value="1"
    )
    assert dataclasses.replace(op, previous="0").inverse() is None


def test_inet6_mtu_inverse_follows_the_way_it_was_set() -> None:
    op = SetInet6Mtu(ifname="eth0", mtu=1400)
    assert op.inverse() is None
    assert dataclasses.replace(op, via="link", previous="1300").inverse() == SetLink(
        ifname="eth0", mtu=1300
    )
    assert dataclasses.replace(op, via="sysctl", previous="1500").inverse() == WriteSysctl(
        name="net.ipv6.conf.eth0.mtu", value="1500"
    )
    assert dataclasses.replace(op, via="sysctl", previous="1400").inverse() is None


def test_link_inverses() -> None:
    add = AddLink(ifname="gre1", mode="gre", remote="203.0.113.41")
    undo = add.inverse()
    assert isinstance(undo, DelLink) and undo.mode == "gre"
    assert undo.inverse() == add
    assert DelLink(ifname="gre1").inverse() is None
    vlan = AddLink(ifname="eth0.5", mode="vlan", link="eth0", vlan_id=5, exist_ok=True)
    assert dataclasses.replace(vlan, created=False).inverse() is None
    assert isinstance(dataclasses.replace(vlan, created=True).inverse(), DelLink)
    assert AddLink(ifname="x", mode="ipip6").kind == "ip6tnl"
    assert RenameLink(ifname="eth1", new="lan1").inverse() == RenameLink(ifname="lan1", new="eth1")


def test_processes_have_nothing_to_undo_but_dhcp() -> None:
    assert Shell(command="true").inverse() is None
    assert RunParts(directory="/d").inverse() is None
    assert WaitDad(ifname="eth0", address=None).inverse() is None
    assert NoOp().inverse() is None
    start = StartDhcp(ifname="eth0", client="dhclient", command="up", stop_command="down")
    stop = start.inverse()
    assert isinstance(stop, StopDhcp) and stop.command == "down" and stop.ignore_failure
    assert StartDhcp(ifname="eth0", command="up").inverse() is None


def test_environment_is_not_shown() -> None:
    secret = (("IF_WPA_PSK", "hunter2"),)
    for op in (
        Shell(command="true", env=secret),
        RunParts(directory="/d", env=secret),
        StartDhcp(ifname="eth0", command="x", env=secret),
        StopDhcp(ifname="eth0", command="x", env=secret),
    ):
        assert "hunter2" not in repr(op)


def test_where_names_the_stanza_line() -> None:
    assert Shell(command="false", origin=AT).where() == "interfaces:7"
    assert Shell(command="false").where() == "ifvip"


def test_plan_steps_run_link_then_stanzas_then_closing_link() -> None:
    def step(name: str) -> Step:
        return Step(Shell(command=name), "post-up", "up")

    plan = Plan(
        physical="eth0",
        logical="eth0",
        mode="start",
        before=(step("a"),),
        stanzas=(
            StanzaPlan("eth0", "inet", "static", AT, (step("b"), step("c"))),
            StanzaPlan("eth0", "inet6", "static", AT, (step("d"),)),
        ),
        after=(step("e"),),
    )
    assert [op.render() for op in plan.ops()] == ["a", "b", "c", "d", "e"]


def test_dry_run_prints_one_line_per_op_and_skips_quiet_ones() -> None:
    out = io.StringIO()
    executor = DryRunExecutor(out)
    ops = [
        SetLink(ifname="eth0", up=True, text="ip link set dev eth0   up"),
        NoOp(text=""),
        WaitDad(ifname="eth0", address="2001:db8::7/64", quiet=True),
        Shell(command="echo hi"),
    ]

    async def go() -> list[Op]:
        return [await executor.apply(op) for op in ops]

    assert asyncio.run(go()) == ops
    assert out.getvalue() == "ip link set dev eth0   up\n\necho hi\n"


def test_helpers() -> None:
    assert (
        sysctl_name("/proc/sys/net/ipv6/conf/eth0.5/accept_ra") == "net.ipv6.conf.eth0/5.accept_ra"
    )
    assert prefix_of("255.255.255.128") == 25
    assert prefix_of("24") == 24
    assert prefix_of("255.0.255.0") is None
