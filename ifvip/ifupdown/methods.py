"""Methods: what each `iface NAME FAMILY METHOD` does on ifup and ifdown, as Ops.

Each method is ifupdown 0.8.41's Linux definition (inet.defn, inet6.defn, link.defn),
line by line: the template gives the exact command ifupdown prints (`-n`), and a builder
gives the native Op that has the same effect. A line whose values ifvip cannot turn into
an Op exactly (an address that is not one, say) stays a `Shell` op with ifupdown's text,
so it does what ifupdown would do. A fully vanished optional line is a `NoOp("")`: ifupdown
prints it as an empty line.

`plan_target()` assembles one target in ifupdown's phase order (specs/ifupdown.md §3):
the link-level step, then for each stanza of the logical name, in file order, `pre-up`
lines, `if-pre-up.d`, the method, `up` lines, `if-up.d` (ifdown: `if-down.d`, `down`
lines, the method, `if-post-down.d`, `post-down` lines, then the link-level step).
The methods that drive other programs (ppp, wvdial, bootp, ipv4ll, ipx) and CAN's
`ip link set ... type can` lines have no native form: they run as ifupdown runs them,
under /bin/sh with ifupdown's environment.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import field
from functools import cached_property
from typing import Final

from ifvip.errors import ConfigError
from ifvip.ifupdown import hooks
from ifvip.ifupdown.env import hook_env, vlan_parent
from ifvip.ifupdown.plan import (
    POST_DOWN,
    POST_UP,
    PRE_DOWN,
    PRE_UP,
    AddAddress,
    AddLink,
    AddRoute,
    DelAddress,
    DelLink,
    DelRoute,
    Env,
    FlushAddresses,
    NoOp,
    Op,
    Plan,
    SetInet6Mtu,
    SetLink,
    Shell,
    StanzaPlan,
    StartDhcp,
    Step,
    StopDhcp,
    WaitDad,
    WriteSysctl,
    prefix_of,
)
from ifvip.ifupdown.template import MissingVariableError, expand
from ifvip.interfaces.model import Iface, InterfacesFile, Origin
from ifvip.interfaces.options import effective_options, method_spec
from ifvip.interfaces.patterns import match_any
from ifvip.record import record

IF_DIR: Final = "/etc/network"
# The stage of a method's down line that runs under /bin/sh: run even with a journal.
SHELL_STAGE: Final = "method-shell"


class PlanError(Exception):
    """A stanza cannot be planned; `messages` are what ifup prints (without `ifup: `)."""

    def __init__(self, messages: Sequence[str], error: ConfigError | None = None) -> None:
        super().__init__("; ".join(messages))
        self.messages = tuple(messages)
        self.error = error


@record(kw_only=False)
class Settings:
    """What the command line and the system contribute to a plan."""

    verbose: bool = False
    no_scripts: bool = False
    do_all: bool = False
    cls: str | None = None  # CLASS: --allow, or "auto" under -a
    overrides: tuple[tuple[str, str], ...] = ()
    scripts_dir: str = IF_DIR  # where the if-*.d directories live
    ignore_errors: bool = False
    caller_env: Mapping[str, str] = field(default_factory=dict)
    # Which helper programs exist (dhclient, udhcpc, dhcpcd, wait-for-ll6.sh, settle-dad.sh).
    available: Callable[[str], bool] = lambda _program: False
    rt_tables: Mapping[str, int] = field(default_factory=dict)
    # Stanzas (by origin) whose options are invalid: ifup fails them, applying nothing.
    invalid: Mapping[Origin, Sequence[ConfigError]] = field(default_factory=dict)


@record(kw_only=False)
class MethodContext:
    """One stanza being expanded: its effective options and the facts the templates test."""

    physical: str
    logical: str
    stanza: Iface
    options: tuple[tuple[str, str], ...]
    is_lo: bool
    settings: Settings
    env: Env

    def get(self, name: str) -> str | None:
        if name == "iface":
            return self.physical
        return self._first.get(name)

    @cached_property
    def _first(self) -> dict[str, str]:
        """Each option's first value, as ifupdown's get_var() finds it."""
        first: dict[str, str] = {}
        for option, value in self.options:
            first.setdefault(option, value)
        return first

    def set(self, name: str) -> bool:
        return bool(self.get(name))

    def true(self, name: str) -> bool:
        """ifupdown's var_true: atoi() != 0, or on/true/yes."""
        value = self.get(name)
        if not value:
            return False
        if value.lower() in ("on", "true", "yes"):
            return True
        digits = ""
        for char in value.lstrip():
            if char.isdigit() or (not digits and char in "+-"):
                digits += char
            else:
                break
        try:
            return int(digits) != 0
        except ValueError:
            return False

    @property
    def is_link(self) -> bool:
        return ":" not in self.physical and "." not in self.physical

    @property
    def device(self) -> str:
        """The kernel device: an alias `eth0:1` is a label on eth0."""
        return self.physical.split(":", 1)[0]

    def origin(self, option: str | None = None) -> Origin:
        if option is not None:
            for candidate in self.stanza.options:
                if candidate.name == option:
                    return candidate.origin
        return self.stanza.origin


Builder = Callable[[MethodContext], Op | None]
Condition = Callable[[MethodContext], bool]


@record(kw_only=False)
class Line:
    """One line of a method: template, optional condition, builder of the native op."""

    template: str
    build: Builder | None = None
    when: Condition | None = None
    origin: str | None = None  # the option whose line the op is attributed to
    shell: bool = False  # no native form: run the text under /bin/sh
    quiet: bool = False  # ifupdown -n never prints it (settle-dad.sh), whatever its op


# ---------------------------------------------------------------- value helpers


def _v4_cidr(ctx: MethodContext) -> str:
    address = ctx.get("address") or ""
    netmask = ctx.get("netmask")
    ipaddress.IPv4Address(address)
    prefix = 32 if not netmask else prefix_of(netmask)
    if prefix is None or not 0 <= prefix <= 32:
        raise ValueError(netmask)
    return f"{address}/{prefix}"


def _v6_cidr(address: str, netmask: str | None) -> str:
    ipaddress.IPv6Address(address)
    prefix = 128 if not netmask else int(netmask)
    if not 0 <= prefix <= 128:
        raise ValueError(netmask)
    return f"{address}/{prefix}"


def _int(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    return int(value)


def _scope(value: str | None) -> str | None:
    if not value:
        return None
    if value not in ("global", "site", "link", "host") and not value.isdigit():
        raise ValueError(value)
    return value


def _mac(value: str | None) -> str | None:
    if not value:
        return None
    parts = value.split(":")
    if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
        raise ValueError(value)
    return ":".join(f"{int(p, 16):02x}" for p in parts)


def _v4(value: str | None) -> str | None:
    return None if not value else str(ipaddress.IPv4Address(value))


def _v6(value: str | None) -> str | None:
    return None if not value else str(ipaddress.IPv6Address(value))


def _sysctl(
    ctx: MethodContext, key: str, option: str | None = None, value: str | None = None
) -> Op:
    name = f"net.ipv6.conf.{ctx.physical.replace('.', '/')}.{key}"
    return WriteSysctl(
        name=name, value=value if value is not None else ctx.get(option or key) or ""
    )


# ---------------------------------------------------------------- builders


def _inet_addr(cls: type[AddAddress] | type[DelAddress]) -> Builder:
    def build(ctx: MethodContext) -> Op:
        broadcast = ctx.get("broadcast") or None
        if broadcast not in (None, "+", "-"):
            broadcast = _v4(broadcast)
        address, peer, broadcast = hooks.ip_addr_fields(
            _v4_cidr(ctx), _v4(ctx.get("pointopoint")), broadcast
        )
        return cls(
            ifname=ctx.device,
            address=address,
            broadcast=broadcast,
            peer=peer,
            scope=hooks.default_scope(address, _scope(ctx.get("scope"))),
            label=ctx.physical,
        )

    return build


def _link_up(*, mtu: bool = True, mac: bool = True, up: bool | None = True) -> Builder:
    def build(ctx: MethodContext) -> Op:
        return SetLink(
            ifname=ctx.device,
            up=up,
            mtu=_int(ctx.get("mtu")) if mtu else None,
            address=_mac(ctx.get("hwaddress")) if mac else None,
        )

    return build


def _set_mtu(ctx: MethodContext) -> Op:
    return SetLink(ifname=ctx.device, mtu=_int(ctx.get("mtu")))


def _set_mac(ctx: MethodContext) -> Op:
    return SetLink(ifname=ctx.device, address=_mac(ctx.get("hwaddress")))


def _link_down(ctx: MethodContext) -> Op:
    return SetLink(ifname=ctx.device, up=False)


def _flush(family: int | None, scope: str | None = None, mngtmpaddr: bool = False) -> Builder:
    return lambda ctx: FlushAddresses(
        ifname=ctx.device, family=family, scope=scope, mngtmpaddr=mngtmpaddr
    )


def _default_route(
    family: int, cls: type[AddRoute] | type[DelRoute], *, replace: bool = False
) -> Builder:
    def build(ctx: MethodContext) -> Op:
        gateway = ctx.get("gateway")
        gw = _v4(gateway) if family == 4 else _v6(gateway)
        metric = _int(ctx.get("metric"))
        if cls is DelRoute:
            return DelRoute(family=family, gateway=gw, dev=ctx.device, metric=metric)
        return AddRoute(
            family=family,
            gateway=gw,
            dev=ctx.device,
            metric=metric,
            onlink=True,
            replace=replace,
        )

    return build


def _inet6_addr(cls: type[AddAddress] | type[DelAddress], *, nodad: bool = False) -> Builder:
    def build(ctx: MethodContext) -> Op:
        cidr = _v6_cidr(ctx.get("address") or "", ctx.get("netmask"))
        preferred = _int(ctx.get("preferred-lifetime"))
        if cls is DelAddress:
            return DelAddress(ifname=ctx.device, address=cidr, scope=_scope(ctx.get("scope")))
        return AddAddress(
            ifname=ctx.device,
            address=cidr,
            scope=_scope(ctx.get("scope")),
            nodad=nodad,
            preferred_lft=preferred,
        )

    return build


def _wait_dad(ctx: MethodContext) -> Op:
    cidr = _v6_cidr(ctx.get("address") or "", ctx.get("netmask"))
    return WaitDad(
        ifname=ctx.device,
        address=cidr,
        attempts=int(ctx.get("dad-attempts") or "60"),
        interval=float(ctx.get("dad-interval") or "0.1"),
        quiet=True,
    )


def _wait_ll(ctx: MethodContext) -> Op:
    return WaitDad(
        ifname=ctx.device,
        address=None,
        attempts=int(ctx.get("ll-attempts") or "60"),
        interval=float(ctx.get("ll-interval") or "0.1"),
    )


def _inet6_mtu(ctx: MethodContext) -> Op:
    return SetInet6Mtu(ifname=ctx.device, mtu=int(ctx.get("mtu") or ""))


def _modprobe(_ctx: MethodContext) -> Op:
    return NoOp(reason="IPv6 is built into the kernel ifvip runs on; nothing to load")


def _tunnel(mode: str | None = None, *, remote_any: bool = False) -> Builder:
    def build(ctx: MethodContext) -> Op:
        kind = mode or ctx.get("mode") or ""
        v6 = kind in ("ip6gre", "ip6ip6", "ipip6")
        remote = None if remote_any else (_v6 if v6 else _v4)(ctx.get("endpoint"))
        return AddLink(
            ifname=ctx.physical,
            mode=kind,
            remote=remote,
            local=(_v6 if v6 else _v4)(ctx.get("local")),
            ttl=_int(ctx.get("ttl")),
            encaplimit=ctx.get("encaplimit") or None,
        )

    return build


def _tunnel_del(ctx: MethodContext) -> Op:
    return DelLink(ifname=ctx.physical)


def _tunnel_up(ctx: MethodContext) -> Op:
    return SetLink(ifname=ctx.physical, up=True, mtu=_int(ctx.get("mtu")))


def _tunnel_addr(family: int) -> Builder:
    def build(ctx: MethodContext) -> Op:
        address = ctx.get("address") or ""
        netmask = ctx.get("netmask") or ""
        if family == 4:
            prefix = prefix_of(netmask)
            ipaddress.IPv4Address(address)
            if prefix is None:
                raise ValueError(netmask)
            cidr = f"{address}/{prefix}"
            peer = _v4(ctx.get("dstaddr"))
        else:
            cidr = _v6_cidr(address, netmask)
            peer = _v6(ctx.get("dstaddr"))
        address, peer, _ = hooks.ip_addr_fields(cidr, peer, None)
        scope = hooks.default_scope(address, None)
        return AddAddress(ifname=ctx.physical, address=address, peer=peer, scope=scope)

    return build


def _v4tunnel_addr(ctx: MethodContext) -> Op:
    address, _, prefix = (ctx.get("address") or "").partition("/")
    cidr = _v6_cidr(address, ctx.get("netmask") or prefix or None)
    return AddAddress(
        ifname=ctx.physical, address=cidr, preferred_lft=_int(ctx.get("preferred-lifetime"))
    )


def _tunnel_gateway(family: int) -> Builder:
    def build(ctx: MethodContext) -> Op:
        gateway = (_v4 if family == 4 else _v6)(ctx.get("gateway"))
        return AddRoute(
            family=family,
            gateway=gateway,
            dev=ctx.physical,
            metric=_int(ctx.get("metric")),
            onlink=True,
        )

    return build


def _host_route(ctx: MethodContext) -> Op:
    gateway = _v6(ctx.get("gateway"))
    return AddRoute(family=6, dst=f"{gateway}/128", dev=ctx.physical)


def _sixto4_addr(ctx: MethodContext) -> Op:
    local = ipaddress.IPv4Address(ctx.get("local") or "")
    network = ipaddress.IPv6Address((0x2002 << 112) | (int(local) << 80) | 1)
    return AddAddress(
        ifname=ctx.physical,
        address=f"{network}/16",
        preferred_lft=_int(ctx.get("preferred-lifetime")),
    )


def _sixto4_route(ctx: MethodContext) -> Op:
    return AddRoute(
        family=6,
        dst="2000::/3",
        gateway="::192.88.99.1",
        dev=ctx.physical,
        metric=_int(ctx.get("metric")),
    )


def _route_flush6(ctx: MethodContext) -> Op:
    return Shell(command=f"ip -6 route flush dev {ctx.physical}", env=ctx.env)


def _lo_v6(cls: type[AddAddress] | type[DelAddress]) -> Builder:
    return lambda ctx: cls(ifname=ctx.device, address="::1/128")


def _dhcp(start: str, stop: str | None, client: str, family: int = 4) -> Builder:
    def build(ctx: MethodContext) -> Op:
        # The text is what runs; the op only says it starts (or stops) a DHCP client.
        text = expand(start, ctx.get)
        if stop is None:
            return StopDhcp(
                ifname=ctx.device, family=family, client=client, command=text, env=ctx.env
            )
        return StartDhcp(
            ifname=ctx.device,
            family=family,
            client=client,
            command=text,
            stop_command=expand(stop, ctx.get),
            env=ctx.env,
        )

    return build


# ---------------------------------------------------------------- conditions


def _not_lo(ctx: MethodContext) -> bool:
    return not ctx.is_lo


def _is_link(ctx: MethodContext) -> bool:
    return ctx.is_link


def _link_not_all(ctx: MethodContext) -> bool:
    return ctx.is_link and not ctx.settings.do_all


def _link_or_not_all(ctx: MethodContext) -> bool:
    return ctx.is_link or not ctx.settings.do_all


def _ra_off(ctx: MethodContext) -> bool:
    return ctx.set("accept_ra") and not ctx.true("accept_ra")


def _dad(ctx: MethodContext) -> bool:
    return not ctx.set("dad-attempts") or ctx.true("dad-attempts")


def _nodad(ctx: MethodContext) -> bool:
    return not _dad(ctx)


def _settle_dad(ctx: MethodContext) -> bool:
    return ctx.true("dad-attempts")


def _has(program: str) -> Condition:
    return lambda ctx: ctx.settings.available(program)


def _dhcp6(ctx: MethodContext) -> bool:
    return ctx.true("dhcp")


def _mode(*modes: str) -> Condition:
    return lambda ctx: ctx.get("mode") in modes


def _not_mode(*modes: str) -> Condition:
    return lambda ctx: ctx.get("mode") not in modes


# ---------------------------------------------------------------- the methods

MODPROBE: Final = Line(
    "modprobe -q net-pf-10 > /dev/null 2>&1 || true # ignore failure.", _modprobe
)
SYSCTL = "-[[sysctl -q -e -w net.ipv6.conf.%iface/.//%.{key}=%{option}%]]"
MTU6: Final = Line(
    '-[[if [ "$(cat /sys/class/net/%iface%/mtu)" -lt %mtu% ]; then ip link set dev %iface% mtu'
    " %mtu%; else sysctl -q -e -w net.ipv6.conf.%iface/.//%.mtu=%mtu%; fi]]",
    _inet6_mtu,
    origin="mtu",
)

INET_ADDR = (
    "%address%[[/%netmask%]] [[broadcast %broadcast%]] \t[[peer %pointopoint%]] "
    "[[scope %scope%]] dev %iface% label %iface%"
)

DHCLIENT_ARGS = (
    "-pf /run/dhclient.%iface%.pid -lf /var/lib/dhcp/dhclient.%iface%.leases -I "
    "-df /var/lib/dhcp/dhclient6.%iface%.leases %iface%"
)
DHCLIENT_UP = (
    'CLIENT="-i"; [[[ "%client%" = no ] && CLIENT="";]] dhclient -4 -v $CLIENT ' + DHCLIENT_ARGS
)
DHCLIENT_DOWN = (
    'CLIENT="-i"; [[[ "%client%" = no ] && CLIENT="";]] dhclient -4 -v $CLIENT -r ' + DHCLIENT_ARGS
)
UDHCPC_UP = "udhcpc -n -p /run/udhcpc.%iface%.pid -i %iface% [[-x hostname:%hostname%]]"
UDHCPC_DOWN = (
    "if test -f /run/udhcpc.%iface%.pid; then kill -USR2 $(cat /run/udhcpc.%iface%.pid); "
    "kill -TERM $(cat /run/udhcpc.%iface%.pid); fi"
)
DHCPCD_UP = (
    "dhcpcd [[-h %hostname%]] [[-i %vendor%]] [[-I %client%]] [[-l %leasetime%]] "
    "[[-m %metric%]] %iface%"
)
DHCPCD_DOWN = "dhcpcd -k %iface%"
DHCLIENT6_FILES = (
    "-pf /run/dhclient6.%iface%.pid -lf /var/lib/dhcp/dhclient6.%iface%.leases -I "
    "{flags}-df /var/lib/dhcp/dhclient.%iface%.leases %iface%"
)


def _dhcp_lines(up: bool) -> list[Line]:
    """inet dhcp: the first client found, in ifupdown's order."""

    def dhclient(ctx: MethodContext) -> bool:
        return ctx.settings.available("dhclient")

    def udhcpc(ctx: MethodContext) -> bool:
        return not dhclient(ctx) and ctx.settings.available("udhcpc")

    def dhcpcd(ctx: MethodContext) -> bool:
        return not dhclient(ctx) and not udhcpc(ctx) and ctx.settings.available("dhcpcd")

    def none(ctx: MethodContext) -> bool:
        return not dhclient(ctx) and not udhcpc(ctx) and not dhcpcd(ctx)

    nothing = "echo 'No DHCP client software found!' >&2; false"
    if up:
        return [
            Line("[[ip link set dev %iface% address %hwaddress%]]", _set_mac, origin="hwaddress"),
            Line(
                DHCLIENT_UP + " \t[[-e IF_METRIC=%metric%]]",
                _dhcp(DHCLIENT_UP + " \t[[-e IF_METRIC=%metric%]]", DHCLIENT_DOWN, "dhclient"),
                dhclient,
            ),
            Line(UDHCPC_UP, _dhcp(UDHCPC_UP, UDHCPC_DOWN, "udhcpc"), udhcpc),
            Line(DHCPCD_UP, _dhcp(DHCPCD_UP, DHCPCD_DOWN, "dhcpcd"), dhcpcd),
            Line(nothing, when=none, shell=True),
        ]
    return [
        Line(DHCLIENT_DOWN, _dhcp(DHCLIENT_DOWN, None, "dhclient"), dhclient),
        Line(UDHCPC_DOWN, _dhcp(UDHCPC_DOWN, None, "udhcpc"), udhcpc),
        Line(DHCPCD_DOWN, _dhcp(DHCPCD_DOWN, None, "dhcpcd"), dhcpcd),
        Line(nothing, when=none, shell=True),
        Line("ip link set dev %iface% down", _link_down, _is_link),
    ]


def _dhcp6_lines(up: bool, *, auto: bool) -> list[Line]:
    stateless = "-S " if auto else ""
    once = "-1 " if auto else ""
    start = "dhclient -6 " + once + "-v " + stateless + DHCLIENT6_FILES.format(flags="")
    start_pd = "dhclient -6 " + once + "-v " + DHCLIENT6_FILES.format(flags="-P -N ")
    stop = "dhclient -6 -v -r " + DHCLIENT6_FILES.format(flags="")

    def want(ctx: MethodContext) -> bool:
        return ctx.true("dhcp") if auto else True

    def plain(ctx: MethodContext) -> bool:
        return want(ctx) and not ctx.true("request_prefix")

    def prefix(ctx: MethodContext) -> bool:
        return want(ctx) and ctx.true("request_prefix")

    if up:
        return [
            Line("/lib/ifupdown/wait-for-ll6.sh", _wait_ll, want),
            Line(start, _dhcp(start, stop, "dhclient", 6), plain),
            Line(start_pd, _dhcp(start_pd, stop, "dhclient", 6), prefix),
        ]
    return [Line(stop, _dhcp(stop, None, "dhclient", 6), want)]


def _methods() -> dict[tuple[str, str], tuple[list[Line], list[Line]]]:
    table: dict[tuple[str, str], tuple[list[Line], list[Line]]] = {}
    table["inet", "loopback"] = (
        [Line("ip link set dev %iface% up", _link_up(mtu=False, mac=False), _not_lo)],
        [Line("ip link set dev %iface% down", _link_down, _not_lo)],
    )
    table["inet", "static"] = (
        [
            Line("ip addr add " + INET_ADDR, _inet_addr(AddAddress), origin="address"),
            Line("ip link set dev %iface% [[mtu %mtu%]] [[address %hwaddress%]] up", _link_up()),
            Line(
                "[[ ip route add default via %gateway% [[metric %metric%]] dev %iface% onlink ]]",
                _default_route(4, AddRoute),
                origin="gateway",
            ),
        ],
        [
            Line(
                "[[ ip route del default via %gateway% [[metric %metric%]] dev %iface% "
                "2>&1 1>/dev/null || true ]]",
                _default_route(4, DelRoute),
                origin="gateway",
            ),
            Line("ip addr del " + INET_ADDR, _inet_addr(DelAddress), origin="address"),
            Line("ip -4 addr flush dev %iface%", _flush(4), _is_link),
            Line("ip link set dev %iface% down", _link_down, _is_link),
        ],
    )
    table["inet", "manual"] = (
        [
            Line("[[ip link set dev %iface% mtu %mtu%]]", _set_mtu, origin="mtu"),
            Line("[[ip link set dev %iface% address %hwaddress%]]", _set_mac, origin="hwaddress"),
            Line("ip link set dev %iface% up 2>/dev/null || true", _link_up(mtu=False, mac=False)),
        ],
        [
            Line("ip -4 addr flush dev %iface% 2>/dev/null || true", _flush(4), _is_link),
            Line("ip link set dev %iface% down 2>/dev/null || true", _link_down, _link_not_all),
        ],
    )
    table["inet", "dhcp"] = (_dhcp_lines(True), _dhcp_lines(False))
    table["inet", "tunnel"] = (
        [
            Line(
                "ip tunnel add %iface% mode %mode% remote %endpoint% [[local %local%]] "
                "       [[ttl %ttl%]]",
                _tunnel(),
            ),
            Line("ip link set %iface% up [[mtu %mtu%]]", _tunnel_up),
            Line(
                "ip addr add %address%/%netmask% dev %iface% [[peer %dstaddr%]]",
                _tunnel_addr(4),
                origin="address",
            ),
            Line(
                "[[ ip route add default via %gateway% [[metric %metric%]] dev %iface% onlink ]]",
                _tunnel_gateway(4),
                origin="gateway",
            ),
        ],
        [Line("ip tunnel del %iface%", _tunnel_del)],
    )
    table["inet6", "auto"] = (
        [
            MODPROBE,
            Line(
                SYSCTL.format(key="use_tempaddr", option="privext"),
                lambda c: _sysctl(c, "use_tempaddr", "privext"),
            ),
            Line(
                SYSCTL.format(key="accept_ra", option="accept_ra"),
                lambda c: _sysctl(c, "accept_ra"),
            ),
            Line(
                "-sysctl -q -e -w net.ipv6.conf.%iface/.//%.autoconf=1",
                lambda c: _sysctl(c, "autoconf", value="1"),
            ),
            Line("ip addr flush dev %iface% mngtmpaddr", _flush(None, mngtmpaddr=True), _ra_off),
            Line("ip link set dev %iface% up", _link_up(mtu=False, mac=False)),
            *_dhcp6_lines(True, auto=True),
        ],
        [
            *_dhcp6_lines(False, auto=True),
            Line("ip -6 addr flush dev %iface% scope global", _flush(6, "global")),
            Line("ip link set dev %iface% down", _link_down, _is_link),
        ],
    )
    table["inet6", "loopback"] = (
        [
            Line(
                "-ip link set dev %iface% up 2>/dev/null", _link_up(mtu=False, mac=False), _not_lo
            ),
            Line("-ip addr add dev %iface% ::1 2>/dev/null", _lo_v6(AddAddress), _not_lo),
        ],
        [
            Line("-ip addr del dev %iface% ::1 2>/dev/null", _lo_v6(DelAddress), _not_lo),
            Line("-ip link set dev %iface% down 2>/dev/null", _link_down, _not_lo),
        ],
    )
    inet6_addr = "%address%[[/%netmask%]] [[scope %scope%]] dev %iface%"
    table["inet6", "static"] = (
        [
            MODPROBE,
            Line(
                SYSCTL.format(key="use_tempaddr", option="privext"),
                lambda c: _sysctl(c, "use_tempaddr", "privext"),
                origin="privext",
            ),
            Line(
                SYSCTL.format(key="accept_ra", option="accept_ra"),
                lambda c: _sysctl(c, "accept_ra"),
                origin="accept_ra",
            ),
            Line(
                SYSCTL.format(key="autoconf", option="autoconf"),
                lambda c: _sysctl(c, "autoconf"),
                origin="autoconf",
            ),
            MTU6,
            Line("ip addr flush dev %iface% mngtmpaddr", _flush(None, mngtmpaddr=True), _ra_off),
            Line("ip link set dev %iface% [[address %hwaddress%]] up", _link_up(mtu=False)),
            Line(
                "ip -6 addr add " + inet6_addr + " [[preferred_lft %preferred-lifetime%]]",
                _inet6_addr(AddAddress),
                _dad,
                origin="address",
            ),
            Line(
                "ip -6 addr add " + inet6_addr + " [[preferred_lft %preferred-lifetime%]] nodad",
                _inet6_addr(AddAddress, nodad=True),
                _nodad,
                origin="address",
            ),
            Line(
                "[[ ip -6 route replace default via %gateway% [[metric %metric%]] dev %iface% "
                "onlink ]]",
                _default_route(6, AddRoute, replace=True),
                origin="gateway",
            ),
            Line(
                "/lib/ifupdown/settle-dad.sh", _wait_dad, _settle_dad, origin="address", quiet=True
            ),
        ],
        [
            Line(
                "[[ ip -6 route del default via %gateway% [[metric %metric%]] dev %iface% ]]",
                _default_route(6, DelRoute),
                origin="gateway",
            ),
            Line("ip -6 addr del " + inet6_addr, _inet6_addr(DelAddress), origin="address"),
            Line("ip -6 addr flush dev %iface%", _flush(6), _is_link),
            Line("ip link set dev %iface% down", _link_down, _is_link),
        ],
    )
    table["inet6", "manual"] = (
        [
            MTU6,
            Line("[[ip link set dev %iface% address %hwaddress%]]", _set_mac, origin="hwaddress"),
            Line("ip link set dev %iface% up 2>/dev/null || true", _link_up(mtu=False, mac=False)),
        ],
        [
            Line("ip -6 addr flush dev %iface% 2>/dev/null || true", _flush(6), _is_link),
            Line("ip link set dev %iface% down 2>/dev/null || true", _link_down, _link_or_not_all),
        ],
    )
    table["inet6", "dhcp"] = (
        [
            MODPROBE,
            Line(
                SYSCTL.format(key="accept_ra", option="accept_ra"),
                lambda c: _sysctl(c, "accept_ra"),
            ),
            Line(
                SYSCTL.format(key="autoconf", option="autoconf"), lambda c: _sysctl(c, "autoconf")
            ),
            Line("ip addr flush dev %iface% mngtmpaddr", _flush(None, mngtmpaddr=True), _ra_off),
            Line("ip link set dev %iface% [[address %hwaddress%]] up", _link_up(mtu=False)),
            *_dhcp6_lines(True, auto=False),
        ],
        [
            *_dhcp6_lines(False, auto=False),
            Line("ip link set dev %iface% down", _link_down, _is_link),
        ],
    )
    table["inet6", "v4tunnel"] = (
        [
            MODPROBE,
            Line(
                "ip tunnel add %iface% mode sit remote %endpoint% [[local %local%]] "
                "       [[ttl %ttl%]]",
                _tunnel("sit"),
            ),
            Line("ip link set %iface% up [[mtu %mtu%]]", _tunnel_up),
            Line(
                "[[ ip addr add %address%[[/%netmask%]] dev %iface% "
                "[[preferred_lft %preferred-lifetime%]] ]]",
                _v4tunnel_addr,
                origin="address",
            ),
            Line("[[ ip route add %gateway% dev %iface% ]]", _host_route, origin="gateway"),
            Line(
                "[[ ip route add ::/0 via %gateway% [[metric %metric%]] dev %iface% onlink ]]",
                _tunnel_gateway(6),
                origin="gateway",
            ),
        ],
        [Line("ip tunnel del %iface%", _tunnel_del)],
    )
    table["inet6", "6to4"] = (
        [
            MODPROBE,
            Line(
                "ip tunnel add %iface% mode sit remote any local %local%        [[ttl %ttl%]]",
                _tunnel("sit", remote_any=True),
            ),
            Line("ip link set %iface% up [[mtu %mtu%]]", _tunnel_up),
            Line(
                "ip addr add 2002:%hexaddress%::1/16 dev %iface% "
                "[[preferred_lft %preferred-lifetime%]]",
                _sixto4_addr,
                origin="local",
            ),
            Line(
                "ip route add 2000::/3 via ::192.88.99.1 [[metric %metric%]] dev %iface%",
                _sixto4_route,
            ),
        ],
        [
            Line("ip -6 route flush dev %iface%", _route_flush6),
            Line("ip link set dev %iface% down", _link_down),
            Line("ip tunnel del %iface%", _tunnel_del),
        ],
    )
    table["inet6", "tunnel"] = (
        [
            Line(
                "ip -6 tunnel add %iface% mode %mode% remote %endpoint% [[local %local%]] "
                "       [[ttl %ttl%]] [[encaplimit %encaplimit%]]",
                _tunnel(),
            ),
            Line("ip link set %iface% up [[mtu %mtu%]]", _tunnel_up),
            Line(
                "ip -4 addr add %address%/%netmask% dev %iface% [[peer %dstaddr%]]",
                _tunnel_addr(4),
                _mode("ipip6"),
                origin="address",
            ),
            Line(
                "ip -6 addr add %address%/%netmask% dev %iface% [[peer %dstaddr%]]",
                _tunnel_addr(6),
                _not_mode("ipip6"),
                origin="address",
            ),
            Line(
                "[[ ip -4 route add 0.0.0.0/0 via %gateway% [[metric %metric%]] dev %iface% "
                "onlink ]]",
                _tunnel_gateway(4),
                _mode("ipip6"),
                origin="gateway",
            ),
            Line(
                "[[ ip -6 route add ::/0 via %gateway% [[metric %metric%]] dev %iface% onlink ]]",
                _tunnel_gateway(6),
                _not_mode("ipip6"),
                origin="gateway",
            ),
        ],
        [Line("ip -6 tunnel del %iface%", _tunnel_del)],
    )
    _shell_methods(table)
    return table


def _sh(template: str, when: Condition | None = None) -> Line:
    """A method line with no native form: ifupdown's text, run by /bin/sh with its env."""
    return Line(template, when=when, shell=True)


def _shell_methods(table: dict[tuple[str, str], tuple[list[Line], list[Line]]]) -> None:
    """The methods that drive other programs (pppd, wvdial, bootpc, avahi-autoipd,
    ipx_interface) or a CAN link: ifupdown 0.8.41's lines, run as ifupdown runs them."""
    table["inet", "bootp"] = (
        [
            _sh(
                "bootpc [[--bootfile %bootfile%]] --dev %iface% [[--server %server%]]"
                "            [[--hwaddr %hwaddr%]] --returniffail --serverbcast"
            )
        ],
        [Line("ip link set dev %iface% down", _link_down, _is_link)],
    )
    table["inet", "ppp"] = (
        [_sh("pon [[%provider%]] [[unit %unit%]] [[%options%]]")],
        [_sh("poff [[%provider%]]")],
    )
    wvdial = (
        "start-stop-daemon {} -x /usr/bin/wvdial                       -p /run/wvdial.%iface%.pid"
    )
    table["inet", "wvdial"] = (
        [_sh(wvdial.format("--start") + " -b -m -- [[ %provider% ]]")],
        [_sh(wvdial.format("--stop") + " -s 2")],
    )
    table["inet", "ipv4ll"] = (
        [_sh("avahi-autoipd -D %iface%")],
        [_sh("avahi-autoipd --kill %iface%")],
    )
    can = "[[ ip link set %iface% type can {} %{}% ]]"
    table["can", "static"] = (
        [
            _sh("ip link set %iface% type can bitrate %bitrate%"),
            *(
                _sh(can.format(word, option))
                for word, option in (
                    ("loopback", "loopback"),
                    ("listen-only", "listenonly"),
                    ("triple-sampling", "triple"),
                    ("one-shot", "oneshot"),
                    ("berr-reporting", "berr"),
                    ("restart-ms", "restart-ms"),
                )
            ),
            Line("ip link set %iface% up", _link_up(mtu=False, mac=False)),
        ],
        [Line("ip link set %iface% down", _link_down)],
    )
    ipx_del = [_sh("ipx_interface del %iface% %frame%")]
    table["ipx", "static"] = ([_sh("ipx_interface add %iface% %frame% %netnum%")], ipx_del)
    table["ipx", "dynamic"] = ([_sh("ipx_interface add %iface% %frame%")], ipx_del)


METHODS: Final = _methods()


def method_lines(family: str, method: str, up: bool) -> list[Line] | None:
    entry = METHODS.get((family, method))
    if entry is None:
        return None
    return entry[0] if up else entry[1]


# ---------------------------------------------------------------- expansion


def _line_op(line: Line, ctx: MethodContext, phase: str) -> Op | None:
    """The op for one method line, or None when its condition is false."""
    if line.when is not None and not line.when(ctx):
        return None
    template = line.template
    ignore = template.startswith("-")
    text = expand(template[1:] if ignore else template, ctx.get)
    origin = ctx.origin(line.origin)
    ignore = ignore or text.rstrip().endswith(("|| true", "2>/dev/null"))
    if text.strip() == "":
        return NoOp(text=text, origin=origin, reason="an optional command without its options")
    op: Op | None = None
    if line.build is not None and not line.shell:
        try:
            op = line.build(ctx)
        except (ValueError, MissingVariableError):
            op = None
    if op is None:
        return Shell(
            command=text,
            env=ctx.env,
            phase=phase,
            text=text,
            origin=origin,
            ignore_failure=ignore,
            quiet=line.quiet,
        )
    import dataclasses  # noqa: PLC0415

    return dataclasses.replace(
        op, text=text, origin=origin, ignore_failure=ignore or op.ignore_failure
    )


def check_method(ctx: MethodContext, up: bool) -> list[str]:
    """ifupdown's check pass: the required variables the method's commands miss."""
    lines = method_lines(ctx.stanza.family, ctx.stanza.method, up) or []
    missing: list[str] = []
    for line in lines:
        if line.when is not None and not line.when(ctx):
            continue
        try:
            expand(line.template.lstrip("-"), ctx.get)
        except MissingVariableError as exc:
            missing.extend(name for name in exc.names if name not in missing)
    return missing


def is_lo(defn: InterfacesFile, physical: str) -> bool:
    """ifupdown's iface_is_lo(): `lo` while the built-in loopback stanza is in use."""
    return physical == "lo" and any(s.builtin for s in defn.ifaces)


def unsupported(stanza: Iface) -> ConfigError | None:
    spec = method_spec(stanza.family, stanza.method)
    if spec is not None and spec.supported and (stanza.family, stanza.method) in METHODS:
        return None
    origin = stanza.origin
    return ConfigError(
        origin.path,
        origin.line,
        origin.col,
        f"{stanza.name}: method {stanza.family} {stanza.method} cannot be brought up",
    )


def stanza_context(
    defn: InterfacesFile,
    stanza: Iface,
    physical: str,
    settings: Settings,
    *,
    mode: str,
    phase: str,
) -> MethodContext:
    options = tuple(
        effective_options(
            [(o.name, o.value) for o in stanza.options],
            stanza.family,
            stanza.method,
            physical,
            settings.overrides,
        )
    )
    env = hook_env(
        physical=physical,
        logical=stanza.name,
        family=stanza.family,
        method=stanza.method,
        options=options,
        mode=mode,
        phase=phase,
        verbose=settings.verbose,
        cls=settings.cls,
        caller=settings.caller_env,
    )
    return MethodContext(
        physical, stanza.name, stanza, options, is_lo(defn, physical), settings, env
    )


def _with_env(ctx: MethodContext, phase: str, mode: str) -> MethodContext:
    env = hook_env(
        physical=ctx.physical,
        logical=ctx.logical,
        family=ctx.stanza.family,
        method=ctx.stanza.method,
        options=ctx.options,
        mode=mode,
        phase=phase,
        verbose=ctx.settings.verbose,
        cls=ctx.settings.cls,
        caller=ctx.settings.caller_env,
    )
    return dataclasses_replace(ctx, env=env)


def dataclasses_replace(ctx: MethodContext, **changes: object) -> MethodContext:
    import dataclasses  # noqa: PLC0415

    return dataclasses.replace(ctx, **changes)  # type: ignore[arg-type]


def scripts_skipped(defn: InterfacesFile, logical: str, settings: Settings) -> bool:
    return settings.no_scripts or match_any(defn.no_scripts, logical)


def plan_stanza(
    defn: InterfacesFile, stanza: Iface, physical: str, settings: Settings, *, up: bool
) -> StanzaPlan:
    """The steps of one stanza in ifupdown's order; raises PlanError when it cannot run."""
    problem = unsupported(stanza)
    if problem is not None:
        raise PlanError([problem.msg], problem)
    invalid = settings.invalid.get(stanza.origin) if up else None
    if invalid:
        raise PlanError([str(e) for e in invalid])
    mode = "start" if up else "stop"
    first, second = (PRE_UP, POST_UP) if up else (PRE_DOWN, POST_DOWN)
    ctx1 = stanza_context(defn, stanza, physical, settings, mode=mode, phase=first)
    missing = check_method(ctx1, up)
    said = [f"missing required variable: {name}" for name in missing]
    if missing and up:
        said.append(
            f"missing required configuration variables for interface {stanza.name}/{stanza.family}"
        )
        raise PlanError(said)
    # ifdown is never refused: like ifupdown, it says what is missing, then again for each
    # line it skips for that reason, and runs the others.
    ctx2 = _with_env(ctx1, second, mode)
    skip = scripts_skipped(defn, stanza.name, settings)
    exit_on_error = up and not settings.ignore_errors
    steps: list[Step] = []

    def scripts(phase_dir: str, ctx: MethodContext, phase: str) -> None:
        if not skip:
            op = hooks.run_parts(
                f"{settings.scripts_dir}/if-{phase_dir}.d",
                env=ctx.env,
                phase=phase,
                exit_on_error=exit_on_error,
                verbose=settings.verbose,
                origin=stanza.origin,
            )
            steps.append(Step(op, phase, f"if-{phase_dir}.d"))

    def hook_lines(name: str, ctx: MethodContext, phase: str) -> None:
        for option in stanza.hooks(name):
            op = hooks.hook_op(option.value, ctx.env, phase, option.origin, settings.rt_tables)
            steps.append(Step(op, phase, name))
        for name_, value in settings.overrides:
            if name_ == name:
                op = hooks.hook_op(value, ctx.env, phase, None, settings.rt_tables)
                steps.append(Step(op, phase, name))

    def method(ctx: MethodContext, phase: str) -> None:
        for line in method_lines(stanza.family, stanza.method, up) or []:
            try:
                op = _line_op(line, ctx, phase)
            except MissingVariableError as exc:
                said.extend(f"missing required variable: {name}" for name in exc.names)
                continue
            if op is not None:
                # An ifdown with a journal replaces the "method" steps by the inverses of
                # what ifup applied; a shell line's effect has no recorded inverse (pon's
                # pppd, a value the shell cut at '#'), so its down line always runs.
                shell = not up and isinstance(op, Shell)
                steps.append(Step(op, phase, SHELL_STAGE if shell else "method"))

    if up:
        hook_lines("pre-up", ctx1, PRE_UP)
        scripts("pre-up", ctx1, PRE_UP)
        method(ctx2, POST_UP)
        hook_lines("up", ctx2, POST_UP)
        scripts("up", ctx2, POST_UP)
    else:
        scripts("down", ctx1, PRE_DOWN)
        hook_lines("down", ctx1, PRE_DOWN)
        method(ctx1, PRE_DOWN)
        scripts("post-down", ctx2, POST_DOWN)
        hook_lines("post-down", ctx2, POST_DOWN)
    return StanzaPlan(
        stanza.name, stanza.family, stanza.method, stanza.origin, tuple(steps), tuple(said)
    )


# ---------------------------------------------------------------- the link-level step

VLAN_UP: Final = (
    "if test -d /sys/class/net/{raw} &&         ! ip link show {vlan} >/dev/null 2>&1;     "
    "then         if test `cat /sys/class/net/{raw}/type` -eq 32; then             "
    "echo 0x{hexid} > /sys/class/net/{raw}/create_child;         else             "
    "ip link set up dev {raw};             ip link add link {raw} name {vlan} type vlan id "
    "{vid}; \tfi;     fi"
)
VLAN_DOWN: Final = (
    "if test -d /sys/class/net/{raw}/device/infiniband; then         if test "
    "`cat /sys/class/net/{raw}/type` -eq 32; then             echo 0x{hexid} > "
    "/sys/class/net/{raw}/delete_child;         fi     else         ip link del {vlan};     fi"
)


def _vlan(physical: str) -> tuple[str, str, str] | None:
    """(raw device, VLAN device, id as written) for a VLAN name, alias suffix dropped."""
    device = physical.split(":", 1)[0]
    raw = vlan_parent(device)
    if raw is None:
        return None
    return raw, device, device.partition(".")[2]


def _decimal(vid: str) -> str:
    try:
        return str(int(vid, 10))
    except ValueError:
        return vid


def link_env(physical: str, logical: str, settings: Settings, *, mode: str, phase: str) -> Env:
    return hook_env(
        physical=physical,
        logical=logical,
        family="link",
        method="none",
        options=(),
        mode=mode,
        phase=phase,
        verbose=settings.verbose,
        cls=settings.cls,
        caller=settings.caller_env,
    )


def description_of(defn: InterfacesFile, logical: str) -> tuple[str, Origin] | None:
    for stanza in defn.stanzas(logical):
        for option in stanza.options:
            if option.name == "description" and option.value:
                return option.value, option.origin
    return None


def link_steps(
    defn: InterfacesFile, physical: str, logical: str, settings: Settings, *, up: bool
) -> tuple[Step, ...]:
    """The link-level step (family `link`, method `none`), once per physical interface."""
    mode, phase = ("start", PRE_UP) if up else ("stop", POST_DOWN)
    env = link_env(physical, logical, settings, mode=mode, phase=phase)
    steps: list[Step] = []
    vlan = _vlan(physical)
    if vlan is not None and (up or ":" not in physical):
        raw, device, vid = vlan
        template = VLAN_UP if up else VLAN_DOWN
        text = template.format(raw=raw, vlan=device, hexid=vid, vid=_decimal(vid))
        op: Op
        if up:
            op = AddLink(
                ifname=device,
                mode="vlan",
                link=raw,
                vlan_id=int(_decimal(vid)) if _decimal(vid).isdigit() else None,
                text=text,
                exist_ok=True,
            )
        else:
            op = DelLink(ifname=device, mode="vlan", link=raw, text=text)
        if not _decimal(vid).isdigit():
            op = Shell(command=text, env=env, phase=phase, text=text)
        steps.append(Step(op, phase, "link"))
    if is_lo(defn, physical):
        word = "up" if up else "down"
        text = f"ip link set {word} dev lo 2>/dev/null"
        steps.append(
            Step(SetLink(ifname="lo", up=up, text=text, ignore_failure=True), phase, "link")
        )
    description = description_of(defn, logical) if up else None
    if description is None:
        steps.append(Step(NoOp(text="", reason="no description"), phase, "link"))
    else:
        value, origin = description
        device = physical.split(":", 1)[0]
        text = f'ip link set {device} alias "{value}"'
        if any(c in value for c in '"$`\\'):
            # The shell would rewrite quotes and expansions: let it, exactly.
            steps.append(
                Step(
                    Shell(command=text, env=env, phase=phase, text=text, origin=origin),
                    phase,
                    "link",
                )
            )
        else:
            steps.append(
                Step(SetLink(ifname=device, alias=value, text=text, origin=origin), phase, "link")
            )
    return tuple(steps)


# ---------------------------------------------------------------- one target


@record(kw_only=False)
class Refusal:
    """A stanza of the target that cannot run: what ifup says about it."""

    stanza: Iface
    messages: tuple[str, ...]
    error: ConfigError | None = None


def plan_target(
    defn: InterfacesFile, physical: str, logical: str, settings: Settings, *, up: bool
) -> tuple[Plan, Refusal | None]:
    """The plan of one target, and the first stanza that cannot run (None if all can).

    Like ifupdown, a stanza that fails its check stops the stanzas after it; the plan then
    holds the stanzas before it. ifvip applies nothing of a target with a refusal.
    """
    stanzas: list[StanzaPlan] = []
    refusal: Refusal | None = None
    for stanza in defn.stanzas(logical):
        try:
            stanzas.append(plan_stanza(defn, stanza, physical, settings, up=up))
        except PlanError as exc:
            refusal = Refusal(stanza, exc.messages, exc.error)
            break
    link = link_steps(defn, physical, logical, settings, up=up)
    plan = Plan(
        physical=physical,
        logical=logical,
        mode="start" if up else "stop",
        before=link if up else (),
        stanzas=tuple(stanzas),
        after=() if up else link,
    )
    return plan, refusal
