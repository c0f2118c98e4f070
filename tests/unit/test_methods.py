"""Methods and phase order: stanzas become the ops ifupdown's commands stand for, in its order."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ifvip.ifupdown.methods import Settings, plan_target
from ifvip.ifupdown.plan import (
    AddAddress,
    AddLink,
    AddRoute,
    DelAddress,
    DelLink,
    DelRoute,
    FlushAddresses,
    NoOp,
    Op,
    Plan,
    RunParts,
    SetInet6Mtu,
    SetLink,
    Shell,
    StartDhcp,
    StopDhcp,
    WaitDad,
    WriteSysctl,
)
from ifvip.interfaces.loader import load
from ifvip.interfaces.model import InterfacesFile


def _defn(tmp_path: Path, text: str) -> InterfacesFile:
    path = tmp_path / "interfaces"
    path.write_text(text)
    return load(str(path), no_loopback=True)


def _plan(tmp_path: Path, text: str, name: str, *, up: bool = True, **settings: object) -> Plan:
    defn = _defn(tmp_path, text)
    plan, refusal = plan_target(defn, name, name, Settings(**settings), up=up)  # type: ignore[arg-type]
    assert refusal is None, refusal
    return plan


def _native(plan: Plan) -> list[Op]:
    """The native ops (ignore_failure aside, which compares)."""
    return [
        dataclasses.replace(op, ignore_failure=False)
        for op in plan.ops()
        if not isinstance(op, NoOp | RunParts | Shell)
    ]


HOOKED = """\
iface eth0 inet static
    address 198.51.100.7/24
    gateway 198.51.100.1
    pre-up echo pre-up
    up echo up-1
    post-up echo post-up
    up echo up-2
    down echo down
    pre-down echo pre-down
    post-down echo post-down
"""


def test_ifup_phase_order(tmp_path: Path) -> None:
    plan = _plan(tmp_path, HOOKED, "eth0", scripts_dir="/x")
    stages = [(step.stage, step.phase, step.op.render()) for step in plan.steps()]
    assert [s[0] for s in stages] == [
        "link", "pre-up", "if-pre-up.d", "method", "method", "method", "up", "up", "up", "if-up.d",
    ]  # fmt: skip
    assert [s[2] for s in stages if s[0] in ("pre-up", "up")] == [
        "echo pre-up", "echo up-1", "echo post-up", "echo up-2",
    ]  # fmt: skip
    assert {s[1] for s in stages if s[0] in ("pre-up", "if-pre-up.d")} == {"pre-up"}
    assert {s[1] for s in stages if s[0] in ("method", "up", "if-up.d")} == {"post-up"}
    shell = next(op for op in plan.ops() if isinstance(op, Shell) and op.command == "echo up-1")
    assert dict(shell.env)["PHASE"] == "post-up" and dict(shell.env)["MODE"] == "start"
    scripts = [op for op in plan.ops() if isinstance(op, RunParts)]
    assert [s.directory for s in scripts] == ["/x/if-pre-up.d", "/x/if-up.d"]
    assert all(s.exit_on_error for s in scripts)


def test_ifdown_phase_order(tmp_path: Path) -> None:
    plan = _plan(tmp_path, HOOKED, "eth0", up=False, scripts_dir="/x")
    stages = [(step.stage, step.phase, step.op.render()) for step in plan.steps()]
    assert [s[0] for s in stages] == [
        "if-down.d", "down", "down", "method", "method", "method", "method",
        "if-post-down.d", "post-down", "link",
    ]  # fmt: skip
    assert [s[2] for s in stages if s[0] == "down"] == ["echo down", "echo pre-down"]
    assert {s[1] for s in stages if s[0] in ("if-down.d", "down", "method")} == {"pre-down"}
    assert {s[1] for s in stages if s[0] in ("if-post-down.d", "post-down")} == {"post-down"}
    assert not any(op.exit_on_error for op in plan.ops() if isinstance(op, RunParts))
    assert _native(plan) == [
        DelRoute(family=4, gateway="198.51.100.1", dev="eth0"),
        DelAddress(
            ifname="eth0", address="198.51.100.7/24", broadcast="198.51.100.255", label="eth0"
        ),
        FlushAddresses(ifname="eth0", family=4),
        SetLink(ifname="eth0", up=False),
    ]


def test_inet_static_ops_and_texts(tmp_path: Path) -> None:
    text = """\
iface eth1 inet static
    address 198.51.100.31/25
    gateway 198.51.100.1
    metric 100
    mtu 9000
    hwaddress ether 02:00:00:00:01:31
    scope link
"""
    plan = _plan(tmp_path, text, "eth1")
    assert _native(plan) == [
        AddAddress(
            ifname="eth1",
            address="198.51.100.31/25",
            broadcast="198.51.100.127",
            scope="link",
            label="eth1",
        ),
        SetLink(ifname="eth1", up=True, mtu=9000, address="02:00:00:00:01:31"),
        AddRoute(family=4, gateway="198.51.100.1", dev="eth1", metric=100, onlink=True),
    ]
    rendered = [" ".join(op.render().split()) for op in plan.ops()]
    assert "ip route add default via 198.51.100.1 metric 100 dev eth1 onlink" in rendered
    route = next(op for op in plan.ops() if isinstance(op, AddRoute))
    assert route.origin is not None and route.origin.line == 3  # the gateway line


def test_alias_is_a_label_on_the_device(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "iface eth0:1 inet static\n    address 198.51.100.36/32\n", "eth0:1")
    add, link = _native(plan)
    # ifupdown computed `broadcast +` for /32 itself and passes the address on to ip.
    assert add == AddAddress(
        ifname="eth0", address="198.51.100.36/32", broadcast="198.51.100.36", label="eth0:1"
    )
    assert link == SetLink(ifname="eth0", up=True)
    assert "dev eth0:1 label eth0:1" in add.render()
    down = _native(
        _plan(tmp_path, "iface eth0:1 inet static\n address 198.51.100.36/32\n", "eth0:1", up=False)
    )
    assert down == [  # no flush, no link down for an alias
        DelAddress(
            ifname="eth0", address="198.51.100.36/32", broadcast="198.51.100.36", label="eth0:1"
        )
    ]


def test_inet6_static(tmp_path: Path) -> None:
    text = """\
iface eth1 inet6 static
    address 2001:db8:1::11
    netmask 56
    gateway 2001:db8:1::1
    mtu 1480
    privext 2
    preferred-lifetime 3600
    dad-attempts 5
    dad-interval 0.5
"""
    plan = _plan(tmp_path, text, "eth1")
    assert _native(plan) == [
        WriteSysctl(name="net.ipv6.conf.eth1.use_tempaddr", value="2"),
        WriteSysctl(name="net.ipv6.conf.eth1.accept_ra", value="0"),  # a gateway forces it
        WriteSysctl(name="net.ipv6.conf.eth1.autoconf", value="0"),
        SetInet6Mtu(ifname="eth1", mtu=1480),
        FlushAddresses(ifname="eth1", mngtmpaddr=True),
        SetLink(ifname="eth1", up=True),
        AddAddress(ifname="eth1", address="2001:db8:1::11/56", preferred_lft=3600),
        AddRoute(family=6, gateway="2001:db8:1::1", dev="eth1", onlink=True, replace=True),
        WaitDad(ifname="eth1", address="2001:db8:1::11/56", attempts=5, interval=0.5, quiet=True),
    ]
    sysctls = [op for op in plan.ops() if isinstance(op, WriteSysctl)]
    assert all(op.ignore_failure for op in sysctls)  # ifupdown's `-[[sysctl -e ...]]`


def test_inet6_nodad_and_alias_lifetime(tmp_path: Path) -> None:
    text = "iface eth0:1 inet6 static\n    address 2001:db8::14/64\n    dad-attempts 0\n"
    ops = _native(_plan(tmp_path, text, "eth0:1"))
    adds = [op for op in ops if isinstance(op, AddAddress)]
    assert adds == [
        AddAddress(ifname="eth0", address="2001:db8::14/64", nodad=True, preferred_lft=0)
    ]
    assert not any(isinstance(op, WaitDad) for op in ops)


def test_loopback_builtin_and_defined(tmp_path: Path) -> None:
    path = tmp_path / "interfaces"
    path.write_text("iface eth0 inet manual\n")
    builtin = load(str(path))
    plan, _ = plan_target(builtin, "lo", "lo", Settings(no_scripts=True), up=True)
    assert [op.render() for op in plan.ops()] == ["ip link set up dev lo 2>/dev/null", ""]
    path.write_text("iface lo inet loopback\niface lo inet6 loopback\n")
    defined = load(str(path))
    plan, _ = plan_target(defined, "lo", "lo", Settings(no_scripts=True), up=True)
    assert _native(plan) == [
        SetLink(ifname="lo", up=True),
        SetLink(ifname="lo", up=True),
        AddAddress(ifname="lo", address="::1/128"),
    ]


@pytest.mark.parametrize(
    ("installed", "client"),
    [
        ({"dhclient", "udhcpc"}, "dhclient"),
        ({"udhcpc", "dhcpcd"}, "udhcpc"),
        ({"dhcpcd"}, "dhcpcd"),
    ],
)
def test_dhcp_client_is_the_one_ifupdown_picks(
    tmp_path: Path, installed: set[str], client: str
) -> None:
    text = "iface eth0 inet dhcp\n    hostname h1\n    metric 10\n"
    plan = _plan(tmp_path, text, "eth0", available=installed.__contains__)
    (start,) = [op for op in plan.ops() if isinstance(op, StartDhcp)]
    assert start.client == client
    assert start.command == start.render()
    stop = start.inverse()
    assert isinstance(stop, StopDhcp) and stop.client == client
    down = _plan(tmp_path, text, "eth0", up=False, available=installed.__contains__)
    (release,) = [op for op in down.ops() if isinstance(op, StopDhcp)]
    assert release.command == stop.command
    expected = {
        "dhclient": "dhclient -4 -v $CLIENT -pf /run/dhclient.eth0.pid",
        "udhcpc": "udhcpc -n -p /run/udhcpc.eth0.pid -i eth0 -x hostname:h1",
        "dhcpcd": "dhcpcd -h h1 -m 10 eth0",
    }[client]
    assert expected in " ".join(start.render().split())


def test_no_dhcp_client_fails_as_ifupdown(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "iface eth0 inet dhcp\n", "eth0")
    shells = [op for op in plan.ops() if isinstance(op, Shell)]
    assert [s.command for s in shells] == ["echo 'No DHCP client software found!' >&2; false"]


def test_tunnels_are_links(tmp_path: Path) -> None:
    text = """\
iface gre1 inet tunnel
    address 198.51.100.41
    netmask 255.255.255.252
    mode gre
    endpoint 203.0.113.41
    local 198.51.100.40
    dstaddr 198.51.100.42
    ttl 64
iface tun6to4 inet6 6to4
    local 198.51.100.60
iface t3 inet6 tunnel
    address 198.51.100.1
    netmask 24
    mode ipip6
    endpoint 2001:db8::2
    gateway 198.51.100.2
"""
    gre = _native(_plan(tmp_path, text, "gre1"))
    assert gre[0] == AddLink(
        ifname="gre1", mode="gre", remote="203.0.113.41", local="198.51.100.40", ttl=64
    )
    # With a peer, ip takes the prefix length from the peer (/32 here), not from the netmask.
    assert gre[2] == AddAddress(ifname="gre1", address="198.51.100.41/32", peer="198.51.100.42")
    six = _native(_plan(tmp_path, text, "tun6to4"))
    assert six[0] == AddLink(ifname="tun6to4", mode="sit", local="198.51.100.60")
    assert six[2] == AddAddress(ifname="tun6to4", address="2002:c633:643c::1/16")
    assert six[3] == AddRoute(family=6, dst="2000::/3", gateway="::192.88.99.1", dev="tun6to4")
    t3 = _native(_plan(tmp_path, text, "t3"))
    assert t3[0].kind == "ip6tnl"  # type: ignore[attr-defined]
    assert t3[2] == AddAddress(ifname="t3", address="198.51.100.1/24")
    assert t3[3] == AddRoute(family=4, gateway="198.51.100.2", dev="t3", onlink=True)
    assert _native(_plan(tmp_path, text, "gre1", up=False)) == [DelLink(ifname="gre1")]


SHELL_METHODS = """\
iface p2 inet ppp
    provider dsl
    unit 3
    options debug x
iface w0 inet wvdial
    provider Defaults
iface b1 inet bootp
    bootfile f
iface l0 inet ipv4ll
iface c1 can static
    bitrate 125000
    loopback on
    restart-ms 100
iface x1 ipx static
    frame 802.2
    netnum 5
"""

# ifupdown 0.8.41's `ifup -n -v --no-scripts NAME` / `ifdown -n -v --force --no-scripts NAME`
# for each stanza above: the lines ifvip runs under /bin/sh with ifupdown's environment.
SHELL_LINES = {
    "p2": (["pon dsl unit 3 debug x"], ["poff dsl"]),
    "w0": (
        [
            "start-stop-daemon --start -x /usr/bin/wvdial                       "
            "-p /run/wvdial.w0.pid -b -m --  Defaults "
        ],
        [
            "start-stop-daemon --stop -x /usr/bin/wvdial                       "
            "-p /run/wvdial.w0.pid -s 2"
        ],
    ),
    "b1": (["bootpc --bootfile f --dev b1              --returniffail --serverbcast"], []),
    "l0": (["avahi-autoipd -D l0"], ["avahi-autoipd --kill l0"]),
    "c1": (
        [
            "ip link set c1 type can bitrate 125000",
            " ip link set c1 type can loopback on ",
            " ip link set c1 type can restart-ms 100 ",
        ],
        [],
    ),
    "x1": (["ipx_interface add x1 802.2 5"], ["ipx_interface del x1 802.2"]),
}


@pytest.mark.parametrize("name", sorted(SHELL_LINES))
def test_every_method_runs_ifupdowns_commands(tmp_path: Path, name: str) -> None:
    for up, expected in zip((True, False), SHELL_LINES[name], strict=True):
        plan = _plan(tmp_path, SHELL_METHODS, name, up=up, no_scripts=True)
        shells = [op for op in plan.ops() if isinstance(op, Shell) and op.render().strip()]
        assert [op.render() for op in shells] == expected
        for op in shells:
            assert op.command == op.render()
            env = dict(op.env)
            assert env["IFACE"] == name and env["MODE"] == ("start" if up else "stop")
            assert env["METHOD"] == {"p": "ppp", "w": "wvdial", "b": "bootp", "l": "ipv4ll",
                                        "c": "static", "x": "static"}[name[0]]  # fmt: skip
    if name == "p2":
        assert dict(shells[0].env)["IF_PROVIDER"] == "dsl"


def test_invalid_stanza_is_refused_on_ifup_only(tmp_path: Path) -> None:
    from ifvip.interfaces.check import invalid_stanzas

    defn = _defn(
        tmp_path,
        "iface eth0 inet static\n address 198.51.100.1/24\niface eth0 inet6 static\n"
        " address 2001:db8::x\n",
    )
    invalid = invalid_stanzas(defn)
    plan, refusal = plan_target(defn, "eth0", "eth0", Settings(invalid=invalid), up=True)
    assert refusal is not None
    assert refusal.messages == (
        f"{tmp_path}/interfaces:4:2: address '2001:db8::x' is not a valid IPv6 address[/prefix]",
    )
    assert len(plan.stanzas) == 1  # the stanzas before it, which ifvip does not apply either
    _, refusal = plan_target(defn, "eth0", "eth0", Settings(invalid=invalid), up=False)
    assert refusal is None  # an ifdown is never refused


def test_missing_required_variable(tmp_path: Path) -> None:
    defn = _defn(tmp_path, "iface eth0 inet static\n mtu 1500\n")
    _, refusal = plan_target(defn, "eth0", "eth0", Settings(), up=True)
    assert refusal is not None
    assert refusal.messages == (
        "missing required variable: address",
        "missing required configuration variables for interface eth0/inet",
    )


def test_no_scripts(tmp_path: Path) -> None:
    text = "no-scripts eth1\niface eth0 inet manual\niface eth1 inet manual\n"
    assert any(isinstance(op, RunParts) for op in _plan(tmp_path, text, "eth0").ops())
    assert not any(isinstance(op, RunParts) for op in _plan(tmp_path, text, "eth1").ops())
    assert not any(
        isinstance(op, RunParts) for op in _plan(tmp_path, text, "eth0", no_scripts=True).ops()
    )


def test_values_ifvip_cannot_read_stay_shell(tmp_path: Path) -> None:
    # ifupdown passes the broken value to ip; ifvip runs exactly that line in the shell.
    plan = _plan(tmp_path, "iface eth0 inet6 static\n    address /64\n    dad-attempts 0\n", "eth0")
    shells = [op.render() for op in plan.ops() if isinstance(op, Shell)]
    assert shells == ["ip -6 addr add 64  dev eth0  nodad"]


def test_link_step_vlan_and_description(tmp_path: Path) -> None:
    text = "iface eth0.0201 inet manual\n    description uplink port\n"
    plan = _plan(tmp_path, text, "eth0.0201")
    vlan, alias = plan.before
    assert vlan.op == AddLink(
        ifname="eth0.0201", mode="vlan", link="eth0", vlan_id=201, exist_ok=True
    )
    assert "echo 0x0201 > /sys/class/net/eth0/create_child" in vlan.op.render()
    assert alias.op == SetLink(ifname="eth0.0201", alias="uplink port")
    assert alias.op.render() == 'ip link set eth0.0201 alias "uplink port"'
    quoted = _plan(tmp_path, 'iface eth0 inet manual\n    description say "hi"\n', "eth0")
    assert isinstance(quoted.before[0].op, Shell)  # the shell removes the quotes: let it
    down = _plan(tmp_path, text, "eth0.0201", up=False)
    assert isinstance(down.after[0].op, DelLink) and down.after[0].op.ifname == "eth0.0201"


def test_ifdown_with_missing_variables_goes_on(tmp_path: Path) -> None:
    text = "iface x0 ipx static\n"
    _, refusal = plan_target(_defn(tmp_path, text), "x0", "x0", Settings(), up=True)
    assert refusal is not None and refusal.messages == (
        "missing required variable: frame",
        "missing required variable: netnum",  # every one a line misses, as ifupdown says
        "missing required configuration variables for interface x0/ipx",
    )
    # ifupdown 0.8.41's ifdown -n -v --force x0: says it (check, then the skipped line), exit 0
    plan = _plan(tmp_path, text, "x0", up=False, no_scripts=True)
    assert plan.stanzas[0].messages == ("missing required variable: frame",) * 2
    assert [op.render() for op in plan.ops() if isinstance(op, Shell)] == []
