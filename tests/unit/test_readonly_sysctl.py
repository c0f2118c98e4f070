"""An ifup plan adapted to Docker's read-only /proc/sys, and lifetimes for managed stanzas."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ifvip.daemon.ifup import with_lifetime
from ifvip.ifupdown.plan import AddAddress, AddRoute, Plan, StanzaPlan, Step, WriteSysctl
from ifvip.ifupdown.readonly import adapt, mounted_readonly, sysctl_path
from ifvip.interfaces.model import Origin

FILE = "/etc/network/interfaces"
DAD = WriteSysctl(
    name="net.ipv6.conf.eth1.accept_dad",
    value="0",
    origin=Origin(FILE, 30),
    text="echo 0 > /proc/sys/net/ipv6/conf/eth1/accept_dad",
)
V6 = AddAddress(ifname="eth1", address="2001:db8:250::80:6/64", origin=Origin(FILE, 28))
V6_HOOK = AddAddress(ifname="eth1", address="2001:db8:250::80:7/64", origin=Origin(FILE, 31))
V4 = AddAddress(ifname="eth1", address="203.0.113.134/27", origin=Origin(FILE, 21))
OTHER = AddAddress(ifname="eth0", address="2001:db8::1/64", origin=Origin(FILE, 12))
FORWARD = WriteSysctl(name="net.ipv4.ip_forward", value="1", origin=Origin(FILE, 40))


def _plan(*ops: object) -> Plan:
    steps = tuple(Step(op, "pre-up", "method") for op in ops)  # type: ignore[arg-type]
    return Plan(
        "eth1", "eth1", "start", stanzas=(StanzaPlan("eth1", "inet6", "static", None, steps),)
    )


def test_accept_dad_hook_becomes_nodad_addresses_with_one_warning() -> None:
    adapted = adapt(_plan(DAD, V4, V6, V6_HOOK, OTHER), lambda _: True, lambda _: "1")
    ops = list(adapted.plan.ops())
    assert DAD not in ops
    by_address = {op.address: op for op in ops if isinstance(op, AddAddress)}
    assert by_address[V6.address].nodad and by_address[V6_HOOK.address].nodad
    assert not by_address[V4.address].nodad  # IPv4 has no DAD
    assert not by_address[OTHER.address].nodad  # another interface
    assert adapted.errors == ()
    (warning,) = adapted.warnings
    assert warning.startswith(f"{FILE}:30: echo 0 > /proc/sys/net/ipv6/conf/eth1/accept_dad: ")
    assert "read-only" in warning and "nodad" in warning


def test_any_other_read_only_sysctl_fails_before_anything_with_its_line() -> None:
    adapted = adapt(_plan(DAD, V6, FORWARD), lambda _: True, lambda _: "0")
    assert adapted.errors == (
        f"{FILE}:40: sysctl -w net.ipv4.ip_forward=1: /proc/sys is read-only",
    )


def test_a_write_of_the_value_already_there_is_left_out() -> None:
    adapted = adapt(_plan(FORWARD, V6), lambda _: True, lambda _: "1")
    assert adapted.errors == () and adapted.warnings == ()
    assert list(adapted.plan.ops()) == [V6]


def test_writable_sysctls_leave_the_plan_alone() -> None:
    plan = _plan(DAD, V6, FORWARD)
    assert adapt(plan, lambda _: False, lambda _: "1").plan is plan


@pytest.mark.parametrize("value", ["1", "2"])
def test_accept_dad_other_than_0_is_not_the_nodad_case(value: str) -> None:
    dad = WriteSysctl(name="net.ipv6.conf.eth1.accept_dad", value=value, origin=Origin(FILE, 3))
    assert adapt(_plan(dad, V6), lambda _: True, lambda _: "0").errors


def test_sysctl_paths_and_the_read_only_probe(tmp_path: Path) -> None:
    assert sysctl_path("net.ipv6.conf.eth0/5.accept_ra") == Path(
        "/proc/sys/net/ipv6/conf/eth0.5/accept_ra"
    )
    # A sysctl of a link that does not exist yet is judged by the mount it would be on.
    expected = bool(os.statvfs("/proc/sys").f_flag & os.ST_RDONLY)
    assert mounted_readonly("net.ipv6.conf.nosuchlink0.accept_dad") is expected


def test_with_lifetime_bounds_every_added_address() -> None:
    route = AddRoute(family=4, gateway="203.0.113.129", dev="eth1")
    short = AddAddress(ifname="eth1", address="2001:db8::9/64", preferred_lft=3, valid_lft=5)
    plan = with_lifetime(_plan(V4, route, short), 7)
    added = [op for op in plan.ops() if isinstance(op, AddAddress)]
    assert [(op.preferred_lft, op.valid_lft) for op in added] == [(7, 7), (3, 5)]
    assert route in list(plan.ops())
