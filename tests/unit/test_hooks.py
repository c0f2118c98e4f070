"""Hook lines: the well-known commands become native ops, exactly; the rest stays Shell."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ifvip.ifupdown.hooks import NotExactError, hook_op, run_parts, words
from ifvip.ifupdown.plan import (
    AddAddress,
    AddRoute,
    AddRule,
    DelAddress,
    DelRoute,
    DelRule,
    Op,
    RunParts,
    SetLink,
    Shell,
    WriteSysctl,
)
from ifvip.interfaces.model import Origin

ENV = (
    ("IFACE", "eth0"),
    ("LOGICAL", "eth0"),
    ("IF_ADDRESS", "198.51.100.7"),
    ("IF_NETMASK", "255.255.255.0"),
    ("IF_GATEWAY", "198.51.100.1"),
    ("IF_TWO", "198.51.100.8 198.51.100.9"),
    ("IF_EMPTY", ""),
    ("IF_GLOB", "eth*"),
)
AT = Origin("interfaces", 12, 5)
NATIVE: list[tuple[str, Op]] = [
    (
        "ip route add 203.0.113.0/24 via 198.51.100.1 dev $IFACE",
        AddRoute(family=4, dst="203.0.113.0/24", gateway="198.51.100.1", dev="eth0"),
    ),
    (
        "ip -6 route replace default via 2001:db8::1 dev ${IFACE} metric 1024 onlink",
        AddRoute(
            family=6, gateway="2001:db8::1", dev="eth0", metric=1024, onlink=True, replace=True
        ),
    ),
    (
        "ip route add 203.0.113.0/24 dev eth0 table 100 proto static scope link src 198.51.100.7",
        AddRoute(
            family=4,
            dst="203.0.113.0/24",
            dev="eth0",
            table=100,
            proto=4,
            scope="link",
            src="198.51.100.7",
        ),
    ),
    ("ip r add default via $IF_GATEWAY", AddRoute(family=4, gateway="198.51.100.1")),
    (
        "ip route add 203.0.113.5 dev eth0 table main priority 7",
        AddRoute(family=4, dst="203.0.113.5/32", dev="eth0", metric=7),
    ),
    (
        "ip route del 203.0.113.0/24 via 198.51.100.1 dev $IFACE",
        DelRoute(family=4, dst="203.0.113.0/24", gateway="198.51.100.1", dev="eth0"),
    ),
    (
        "ip addr add $IF_ADDRESS/$IF_NETMASK dev $IFACE label $IFACE:1",
        AddAddress(ifname="eth0", address="198.51.100.7/24", label="eth0:1"),
    ),
    (
        "ip addr add 198.51.100.7/24 brd + dev eth0",
        AddAddress(ifname="eth0", address="198.51.100.7/24", broadcast="198.51.100.255"),
    ),
    (
        "ip address add 198.51.100.7/31 broadcast + dev eth0",
        AddAddress(ifname="eth0", address="198.51.100.7/31"),
    ),
    (
        "ip addr add 198.51.100.7/24 peer 203.0.113.1/30 brd + dev eth0",
        AddAddress(
            ifname="eth0",
            address="198.51.100.7/30",
            peer="203.0.113.1",
            broadcast="203.0.113.3",
        ),
    ),
    (
        "ip addr add 198.51.100.7 peer 203.0.113.1 dev eth0 scope link",
        AddAddress(ifname="eth0", address="198.51.100.7/32", peer="203.0.113.1", scope="link"),
    ),
    (
        "ip -6 addr add 2001:db8::5/64 dev eth0 nodad preferred_lft 0 valid_lft forever",
        AddAddress(ifname="eth0", address="2001:db8::5/64", nodad=True, preferred_lft=0),
    ),
    ("ip -6 addr del 2001:db8::5/64 dev eth0", DelAddress(ifname="eth0", address="2001:db8::5/64")),
    (  # ip's default_scope(): host for 127.0.0.0/8
        "ip addr add 127.0.0.2/8 dev lo",
        AddAddress(ifname="lo", address="127.0.0.2/8", scope="host"),
    ),
    (
        "ip rule add from 198.51.100.0/24 table 100 priority 1000",
        AddRule(family=4, src="198.51.100.0/24", table=100, priority=1000),
    ),
    (
        "ip -6 rule add to 2001:db8::/32 lookup 200 iif eth0 fwmark 0x10",
        AddRule(family=6, dst="2001:db8::/32", table=200, iifname="eth0", fwmark=16),
    ),
    ("ip rule del from all lookup 100", DelRule(family=4, table=100)),
    ("ip link set dev $IFACE mtu 1400 up", SetLink(ifname="eth0", mtu=1400, up=True)),
    (
        "ip link set eth0 address 02:00:00:00:00:AA",
        SetLink(ifname="eth0", address="02:00:00:00:00:aa"),
    ),
    ("/sbin/ip link set eth0 down", SetLink(ifname="eth0", up=False)),
    (
        "route add -net 203.0.113.0 netmask 255.255.255.0 gw 198.51.100.1 dev eth0",
        AddRoute(family=4, dst="203.0.113.0/24", gateway="198.51.100.1", dev="eth0"),
    ),
    (
        "route add -net 203.0.113.0/25 gw 198.51.100.1 metric 5 eth0",
        AddRoute(family=4, dst="203.0.113.0/25", gateway="198.51.100.1", dev="eth0", metric=5),
    ),
    ("route add -host 203.0.113.9 dev eth0", AddRoute(family=4, dst="203.0.113.9/32", dev="eth0")),
    ("route add default gw 198.51.100.1", AddRoute(family=4, gateway="198.51.100.1")),
    (
        "route del -net 203.0.113.0 netmask 255.255.255.0 gw 198.51.100.1",
        DelRoute(family=4, dst="203.0.113.0/24", gateway="198.51.100.1"),
    ),
    (
        "echo 0 > /proc/sys/net/ipv6/conf/$IFACE/accept_dad",
        WriteSysctl(name="net.ipv6.conf.eth0.accept_dad", value="0"),
    ),
    (
        'echo "1" >/proc/sys/net/ipv4/conf/eth0.5/forwarding',
        WriteSysctl(name="net.ipv4.conf.eth0/5.forwarding", value="1"),
    ),
    ("sysctl -w net.ipv4.ip_forward=1", WriteSysctl(name="net.ipv4.ip_forward", value="1")),
    (
        "sysctl -q -w net/ipv4/conf/eth0.5/rp_filter=2",
        WriteSysctl(name="net.ipv4.conf.eth0/5.rp_filter", value="2"),
    ),
    (
        "sysctl -w 'net.ipv4.ip_local_port_range=32768 60999'",
        WriteSysctl(name="net.ipv4.ip_local_port_range", value="32768 60999"),
    ),
]


@pytest.mark.parametrize(("line", "expected"), NATIVE, ids=[line for line, _ in NATIVE])
def test_well_known_commands_are_native(line: str, expected: Op) -> None:
    op = hook_op(line, ENV, "post-up", AT)
    assert op == expected
    assert op.render() == line  # -n prints the hook as written, like ifupdown
    assert op.origin == AT
    assert not op.ignore_failure


@pytest.mark.parametrize(
    "line",
    [
        "echo hi",
        "ip route add 203.0.113.0/24 via 198.51.100.1 dev eth0; echo done",
        "ip link set eth0 up && ip link set eth1 up",
        "ip route show | grep default",
        "ip route add $(cat /etc/route) dev eth0",
        "ip route add `cat /etc/route` dev eth0",
        "ip route add 203.0.113.0/24 dev eth0 2>/dev/null",
        "ip route add 203.0.113.0/24 dev eth0 > /tmp/log",
        "ip route add 203.0.113.5/24 dev eth0",  # host bits set: ip refuses, so does sh
        "ip route add 203.0.113.0/24 dev $NOT_IN_THE_ENVIRONMENT",
        "ip route add 203.0.113.0/24 dev ${IFACE:-eth0}",
        "ip route add 203.0.113.0/24 dev $1",
        "ip addr add $IF_TWO dev eth0",  # field splitting makes two addresses
        "ip link set $IF_GLOB up",  # a glob after expansion
        "ip link set eth* up",
        "ip route add 203.0.113.0/24 dev eth0 realm 4",
        "ip route add blackhole 203.0.113.0/24",
        "ip -6 route add 203.0.113.0/24 dev eth0",  # wrong family
        "ip route get 203.0.113.1",
        "ip addr del 198.51.100.7 dev eth0",  # no prefix: the kernel guesses
        "ip addr add 198.51.100.7/0.0.0.255 dev eth0",
        "ip addr add 198.51.100.7/24 dev eth0:1",
        "ip addr add 198.51.100.7/24 dev eth0 label wlan0",
        "ip link set eth0 name lan0",
        "ip link set eth0 promisc on",
        "ip link add veth0 type veth peer name veth1",
        "ip rule add not from 198.51.100.0/24 table 100",
        "ip rule del from 198.51.100.0/24",  # no table: the kernel matches any
        "ip -s route add 203.0.113.0/24 dev eth0",
        "route add 203.0.113.0 gw 198.51.100.1",  # net-tools guesses host or net
        "route add -net 203.0.113.0 gw 198.51.100.1",  # and the class of a bare -net
        "route -A inet6 add 2001:db8::/32 dev eth0",
        "sysctl net.ipv4.ip_forward=1",
        "sysctl -e -w net.ipv4.ip_forward=1",
        "sysctl -p /etc/sysctl.d/x.conf",
        "echo 1 2 > /proc/sys/net/ipv4/ip_forward",
        "echo -n 1 > /proc/sys/net/ipv4/ip_forward",
        "echo 1 > /proc/sys/../../etc/passwd",
        "echo 1 > /tmp/flag",
        "echo 1 >> /proc/sys/net/ipv4/ip_forward",
        "FOO=1 ip link set eth0 up",
        "if true; then ip link set eth0 up; fi",
        "ip link set eth0 up # bring it up",
        'ip link set "eth0" up \\',
        "ip route add 203.0.113.0/24 via 198.51.100.1 dev 'eth0",
    ],
)
def test_lines_not_understood_exactly_stay_shell(line: str) -> None:
    op = hook_op(line, ENV, "pre-up", AT)
    assert isinstance(op, Shell), op
    assert (op.command, op.phase, op.env, op.origin) == (line, "pre-up", ENV, AT)
    assert op.render() == line


def test_failure_ignored_by_dash_prefix_and_or_true() -> None:
    op = hook_op("-ip route add 203.0.113.0/24 dev eth0", ENV, "post-up", AT)
    assert isinstance(op, AddRoute) and op.ignore_failure
    assert op.render() == "ip route add 203.0.113.0/24 dev eth0"  # ifupdown strips the '-'
    op = hook_op("ip route add 203.0.113.0/24 dev eth0 || true", ENV, "post-up", AT)
    assert isinstance(op, AddRoute) and op.ignore_failure
    op = hook_op("-echo hi", ENV, "post-up", AT)
    assert isinstance(op, Shell) and op.ignore_failure and op.command == "echo hi"


def test_words_expand_like_sh() -> None:
    env = dict(ENV)
    assert words("a 'b c' \"$IFACE x\" ${IFACE}y", env) == ["a", "b c", "eth0 x", "eth0y"]
    assert words("a $IF_TWO b", env) == ["a", "198.51.100.8", "198.51.100.9", "b"]
    assert words("a $IF_EMPTY b", env) == ["a", "b"]
    assert words('a "$IF_EMPTY" b', env) == ["a", "", "b"]
    assert words("x$IF_TWO", env) == ["x198.51.100.8", "198.51.100.9"]


def test_run_parts_op() -> None:
    op = run_parts("/x/if-up.d", env=ENV, phase="post-up", exit_on_error=True, verbose=True)
    assert isinstance(op, RunParts)
    assert op.render() == "run-parts --exit-on-error --verbose /x/if-up.d"
    assert not op.ignore_failure
    down = run_parts("/x/if-down.d", env=ENV, phase="pre-down", exit_on_error=False, verbose=False)
    assert down.render() == "run-parts /x/if-down.d" and down.ignore_failure


# ---------------------------------------------------------------- against the real /bin/sh

_PIECES = [
    "ip", "route", "add", "eth0", "198.51.100.1/24", "$IFACE", "${IFACE}", "$IF_TWO",
    "$IF_EMPTY", '"$IF_TWO"', "'a b'", '"x y"', "x$IFACE", "$IFACE.5", "'$IFACE'",
    '""', "''", "a'b c'd", '"$IFACE"x', "${IF_ADDRESS}/24", "=", "k=v", "#x", "a#b",
    "*", "?", "[ab]", "$(echo x)", "`echo x`", "\\ ", ";", "|", "&&", ">", "~", "{a,b}",
    "$1", "$@", "${IFACE:-z}", "$NOPE",
]  # fmt: skip


def _sh_words(line: str, env: dict[str, str]) -> list[str]:
    import subprocess

    done = subprocess.run(
        ["/bin/sh", "-c", f"set -f; printf '%s\\0' START {line}"],
        env=env,
        capture_output=True,
        check=False,
        timeout=10,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.decode().split("\0")[1:-1]


@pytest.mark.skipif(not Path("/bin/sh").exists(), reason="needs /bin/sh")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=6), st.booleans())
def test_words_agree_with_sh(pieces: list[str], glue: bool) -> None:
    """Whenever words() accepts a line, /bin/sh splits and expands it identically."""
    line = ("" if glue else " ").join(pieces)
    env = dict(ENV)
    try:
        ours = words(line, env)
    except NotExactError:
        return  # the line stays a Shell op: sh will do whatever it does
    # `set -f`: no globbing; words() refuses glob characters in expansions anyway, and
    # a literal glob character makes it refuse the line.
    assert ours == _sh_words(line, env)
