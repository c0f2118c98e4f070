"""The option schema: every family/method ifupdown 0.8.41 knows, with defaults and conversions.

One table drives validation (`ifvip check`), ifquery's output after defaults and
conversions, and the man page. The defaults and conversions reproduce ifupdown's
`inet.defn`, `inet6.defn` and `can.defn` for Linux, applied as main.c applies them: the
options as written, then each missing default appended in table order, then `-o`
overrides, then each conversion in order (specs/ifupdown.md §2, §10).
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable, Sequence
from enum import Enum

from ifvip.record import record

TYPE_CHECKING = False  # typing is not imported at run time: ifquery does not need it
if TYPE_CHECKING:
    from typing import Final, TypeAlias


class Kind(Enum):
    """What a value must look like; `check` validates against it."""

    TEXT = "text"
    INT = "integer"
    NUMBER = "number"
    BOOL = "0|1"
    ONOFF = "on|off"
    IPV4 = "IPv4 address"
    IPV4_CIDR = "IPv4 address[/prefix or /netmask]"
    NETMASK4 = "IPv4 netmask or prefix length"
    BROADCAST = "IPv4 address, + or -"
    IPV6 = "IPv6 address"
    IPV6_CIDR = "IPv6 address[/prefix]"
    PREFIX6 = "prefix length 0-128"
    MAC = "MAC address or 'random'"
    MTU = "MTU 68-65535"
    SCOPE = "global, site, link or host"
    PATH = "path"
    VHID = "1-255"
    BYTE = "0-255"
    UINT = "integer, 0 or more"
    SECONDS = "number of seconds, 0 or more"
    YESNO = "yes or no"
    IP = "IPv4 or IPv6 address"
    IPS = "IP addresses, space separated"
    VIPS = "ADDR/LEN[@DEV] ..., space separated, one family"
    VRRP_VERSION = "2 or 3"
    CHECKSUM = "pseudo-header or message-only"
    WORD = "word (letters, digits, '-', '_', '.')"


@record(kw_only=False, slots=True)
class OptionSpec:
    name: str
    kind: Kind
    help: str
    default: str | None = None
    required: bool = False


# A conversion is ifupdown's `option fn =newoption[?]` line, over the stanza's options.
Options: TypeAlias = list[list[str]]  # [name, value] pairs in order, mutated like ifupdown's array
ConvertFn: TypeAlias = Callable[[str, "Context"], str | None]


@record(kw_only=False, slots=True)
class Context:
    """What conversions may look at besides the value: the physical name and the options."""

    physical: str
    options: Options

    def get(self, name: str) -> str | None:
        for option_name, value in self.options:
            if option_name == name:
                return value
        return None


@record(kw_only=False, slots=True)
class Conversion:
    option: str
    fn: ConvertFn
    new: str | None = None
    keep_existing: bool = False  # the `?` suffix: do not overwrite an existing new option


@record(kw_only=False, slots=True)
class MethodSpec:
    family: str
    name: str
    help: str
    options: tuple[OptionSpec, ...] = ()
    conversions: tuple[Conversion, ...] = ()
    # Every method of ifupdown runs; only the internal meta/none is never brought up.
    supported: bool = True

    def option(self, name: str) -> OptionSpec | None:
        for spec in self.options:
            if spec.name == name:
                return spec
        return None

    @property
    def defaults(self) -> tuple[OptionSpec, ...]:
        return tuple(o for o in self.options if o.default is not None)


# ---------------------------------------------------------------- conversion functions


def cleanup_hwaddress(value: str, _ctx: Context) -> str:
    """Drop a leading `ether`/`ax25`/`ARCnet`/`netrom` class word; `random` becomes a MAC."""
    if value == "random":
        mac = bytearray(os.urandom(6))
        mac[0] = (mac[0] | 0x02) & ~0x01  # locally administered, unicast
        return ":".join(f"{b:02x}" for b in mac)
    head, sep, tail = value.partition(" ")
    if sep and head.lower() in ("ether", "ax25", "arcnet", "netrom"):
        return tail
    return value


# compute_v4_*() copy the value into a 34-byte buffer (INET_ADDRSTRLEN * 2 + 2) first.
_V4_BUF: Final = 33


def _strtok(value: str, delims: str) -> list[str]:
    return [t for t in re.split(f"[{re.escape(delims)}]", value) if t]


def _inet_pton4(text: str) -> int | None:
    # inet_pton(AF_INET) accepts exactly four decimal octets, no leading zeros issue aside.
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 for p in parts):
        return None
    if any(len(p) > 1 and p[0] == "0" for p in parts) or any(int(p) > 255 for p in parts):
        return None
    return struct.unpack("!I", bytes(int(p) for p in parts))[0]  # type: ignore[no-any-return]


def _ntoa(value: int) -> str:
    return ".".join(str(b) for b in struct.pack("!I", value & 0xFFFFFFFF))


def _c_atoi_prefix(text: str) -> int | None:
    match = re.match(r"[ \t\n\v\f\r]*([+-]?\d+)", text)
    return int(match.group(1)) if match else None


def _mask_from_width(width: int) -> int:
    # htonl(~((1L << (32 - width)) - 1)) on x86-64: the shift count is taken mod 64.
    shift = (32 - width) % 64
    return ~((1 << shift) - 1) & 0xFFFFFFFF


def compute_v4_mask(value: str, _ctx: Context) -> str | None:
    tokens = _strtok(value[:_V4_BUF], "/")
    if not tokens or _inet_pton4(tokens[0]) is None:
        return None
    if len(tokens) == 1:
        first = int(tokens[0].split(".")[0])
        width = 8 if first <= 127 else 16 if first <= 191 else 24 if first <= 223 else 32
        return _ntoa(_mask_from_width(width))
    dotted = _inet_pton4(tokens[1])
    if dotted is not None:
        return _ntoa(dotted)
    width_ = _c_atoi_prefix(tokens[1])
    return None if width_ is None else _ntoa(_mask_from_width(width_))


def compute_v4_addr(value: str, _ctx: Context) -> str | None:
    tokens = _strtok(value[:_V4_BUF], "/")
    return tokens[0] if tokens else None


def compute_v4_broadcast(value: str, ctx: Context) -> str | None:
    if value not in ("+", "-"):
        return None
    address = _inet_pton4(ctx.get("address") or "")
    mask = _inet_pton4(ctx.get("netmask") or "")
    if address is None or mask is None:
        return None
    if mask == 0xFFFFFFFE:  # RFC 3021 /31: no broadcast; ifupdown writes all-ones or zero
        return _ntoa(0xFFFFFFFF if value == "+" else 0)
    return _ntoa(address | (~mask & 0xFFFFFFFF) if value == "+" else address & mask)


def set_preferred_lft(_value: str, ctx: Context) -> str | None:
    # iface_has(":"): a non-empty token after a ':' in the physical name (an alias).
    return "0" if len(_strtok(ctx.physical, ":")) > 1 else None


def get_token(delims: str, index: int, default: str | None) -> ConvertFn:
    def convert(value: str, _ctx: Context) -> str | None:
        tokens = _strtok(value, delims)
        if index < len(tokens):
            return tokens[index]
        return default

    return convert


def if_set(constant: str) -> ConvertFn:
    return lambda _value, _ctx: constant


def make_hex_address(value: str, _ctx: Context) -> str | None:
    match = re.match(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})", value)
    if not match:
        return None
    octets = [int(g) % 256 for g in match.groups()]  # %hhu wraps
    return "{:02x}{:02x}:{:02x}{:02x}".format(*octets)


# ---------------------------------------------------------------- the schema

_HW = OptionSpec("hwaddress", Kind.MAC, "link-layer address, or 'random'")
_MTU = OptionSpec("mtu", Kind.MTU, "MTU size")
_METRIC = OptionSpec("metric", Kind.INT, "routing metric for the default gateway")
_HW_CLEANUP = Conversion("hwaddress", cleanup_hwaddress)
_PREFERRED = OptionSpec(
    "preferred-lifetime", Kind.INT, "time the address remains preferred (seconds)", default=""
)
_TTL = OptionSpec("ttl", Kind.BYTE, "TTL of the tunnel packets")


def _m(
    family: str,
    name: str,
    help_: str,
    options: Sequence[OptionSpec] = (),
    conversions: Sequence[Conversion] = (),
    *,
    supported: bool = True,
) -> MethodSpec:
    return MethodSpec(family, name, help_, tuple(options), tuple(conversions), supported)


METHODS: Final[tuple[MethodSpec, ...]] = (
    _m("inet", "loopback", "the IPv4 loopback interface"),
    _m(
        "inet",
        "static",
        "a statically configured IPv4 address",
        [
            OptionSpec("address", Kind.IPV4_CIDR, "address (dotted quad[/prefix])", required=True),
            OptionSpec("netmask", Kind.NETMASK4, "netmask (dotted quad or prefix length)"),
            OptionSpec("broadcast", Kind.BROADCAST, "broadcast address, + or -", default="+"),
            _METRIC,
            OptionSpec("gateway", Kind.IPV4, "default gateway"),
            OptionSpec("pointopoint", Kind.IPV4, "address of the other end point"),
            _HW,
            _MTU,
            OptionSpec("scope", Kind.SCOPE, "address validity scope"),
        ],
        [
            _HW_CLEANUP,
            Conversion("address", compute_v4_mask, "netmask", keep_existing=True),
            Conversion("address", compute_v4_addr),
            Conversion("broadcast", compute_v4_broadcast),
        ],
    ),
    _m("inet", "manual", "no configuration by the method; hooks do it", [_HW, _MTU], [_HW_CLEANUP]),
    _m(
        "inet",
        "dhcp",
        "an address from DHCP (dhclient, udhcpc or dhcpcd)",
        [
            OptionSpec("hostname", Kind.TEXT, "hostname to request"),
            _METRIC,
            OptionSpec("leasehours", Kind.INT, "preferred lease time in hours"),
            OptionSpec("leasetime", Kind.INT, "preferred lease time in seconds"),
            OptionSpec("vendor", Kind.TEXT, "vendor class identifier"),
            OptionSpec("client", Kind.TEXT, "client identifier"),
            _HW,
        ],
        [_HW_CLEANUP],
    ),
    _m(
        "inet",
        "bootp",
        "an address from BOOTP",
        [
            OptionSpec("bootfile", Kind.PATH, "boot file to ask for"),
            OptionSpec("server", Kind.IPV4, "server address"),
            OptionSpec("hwaddr", Kind.MAC, "hardware address to use"),
        ],
    ),
    _m(
        "inet",
        "tunnel",
        "a GRE or IPIP tunnel",
        [
            OptionSpec("address", Kind.IPV4, "local address inside the tunnel", required=True),
            OptionSpec("netmask", Kind.NETMASK4, "netmask", required=True),
            OptionSpec("mode", Kind.TEXT, "tunnel type: gre or ipip", required=True),
            OptionSpec("endpoint", Kind.IPV4, "address of the other endpoint", required=True),
            OptionSpec("dstaddr", Kind.IPV4, "remote address inside the tunnel"),
            OptionSpec("local", Kind.IPV4, "address of the local endpoint"),
            _METRIC,
            OptionSpec("gateway", Kind.IPV4, "default gateway"),
            _TTL,
            _MTU,
        ],
    ),
    _m(
        "inet",
        "ppp",
        "PPP through pon/poff",
        [
            OptionSpec("provider", Kind.TEXT, "provider name"),
            OptionSpec("unit", Kind.INT, "ppp unit number"),
            OptionSpec("options", Kind.TEXT, "extra options for pon"),
        ],
    ),
    _m(
        "inet",
        "wvdial",
        "PPP through wvdial",
        [OptionSpec("provider", Kind.TEXT, "provider name")],
    ),
    _m("inet", "ipv4ll", "an IPv4 link-local address from avahi-autoipd"),
    _m(
        "inet6",
        "auto",
        "stateless autoconfiguration (router advertisements), optionally DHCPv6",
        [
            OptionSpec("privext", Kind.INT, "privacy extensions (0, 1, 2)"),
            OptionSpec("accept_ra", Kind.INT, "accept router advertisements (0, 1, 2)", "2"),
            OptionSpec("dhcp", Kind.BOOL, "use stateless DHCPv6"),
            OptionSpec("request_prefix", Kind.BOOL, "request a prefix by DHCPv6-PD", "0"),
            OptionSpec("ll-attempts", Kind.INT, "attempts to wait for a link-local address", "60"),
            OptionSpec("ll-interval", Kind.NUMBER, "link-local polling interval (s)", "0.1"),
        ],
    ),
    _m("inet6", "loopback", "the IPv6 loopback address"),
    _m(
        "inet6",
        "static",
        "a statically configured IPv6 address",
        [
            OptionSpec("address", Kind.IPV6_CIDR, "address[/prefix]", required=True),
            OptionSpec("netmask", Kind.PREFIX6, "prefix length"),
            _METRIC,
            OptionSpec("gateway", Kind.IPV6, "default gateway"),
            OptionSpec("media", Kind.TEXT, "medium type, driver dependent"),
            _HW,
            _MTU,
            OptionSpec("accept_ra", Kind.INT, "accept router advertisements (0, 1, 2)"),
            OptionSpec("autoconf", Kind.BOOL, "stateless autoconfiguration", "0"),
            OptionSpec("privext", Kind.INT, "privacy extensions (0, 1, 2)"),
            OptionSpec("scope", Kind.SCOPE, "address validity scope"),
            _PREFERRED,
            OptionSpec("dad-attempts", Kind.INT, "DAD polls before giving up (0: nodad)", "60"),
            OptionSpec("dad-interval", Kind.NUMBER, "DAD polling interval (s)", "0.1"),
        ],
        [
            _HW_CLEANUP,
            Conversion("preferred-lifetime", set_preferred_lft),
            Conversion("address", get_token("/", 1, ""), "netmask", keep_existing=True),
            Conversion("address", get_token("/", 0, "")),
            Conversion("gateway", if_set("0"), "accept_ra", keep_existing=True),
        ],
    ),
    _m(
        "inet6", "manual", "no configuration by the method; hooks do it", [_HW, _MTU], [_HW_CLEANUP]
    ),
    _m(
        "inet6",
        "dhcp",
        "stateful DHCPv6",
        [
            _HW,
            OptionSpec("accept_ra", Kind.INT, "accept router advertisements (0, 1, 2)", "1"),
            OptionSpec("autoconf", Kind.BOOL, "stateless autoconfiguration"),
            OptionSpec("request_prefix", Kind.BOOL, "request a prefix by DHCPv6-PD", "0"),
            OptionSpec("ll-attempts", Kind.INT, "attempts to wait for a link-local address", "60"),
            OptionSpec("ll-interval", Kind.NUMBER, "link-local polling interval (s)", "0.1"),
        ],
        [_HW_CLEANUP],
    ),
    _m(
        "inet6",
        "v4tunnel",
        "an IPv6-over-IPv4 (sit) tunnel",
        [
            OptionSpec("address", Kind.IPV6_CIDR, "address[/prefix]", required=True),
            OptionSpec("netmask", Kind.PREFIX6, "prefix length"),
            OptionSpec("endpoint", Kind.IPV4, "IPv4 address of the other end", required=True),
            OptionSpec("local", Kind.IPV4, "IPv4 address of the local end"),
            _METRIC,
            OptionSpec("gateway", Kind.IPV6, "default gateway"),
            _TTL,
            _MTU,
            _PREFERRED,
        ],
        [Conversion("preferred-lifetime", set_preferred_lft)],
    ),
    _m(
        "inet6",
        "6to4",
        "a 6to4 tunnel",
        [
            OptionSpec("local", Kind.IPV4, "IPv4 address of the local end", required=True),
            _METRIC,
            _TTL,
            _MTU,
            _PREFERRED,
        ],
        [
            Conversion("local", make_hex_address, "hexaddress"),
            Conversion("preferred-lifetime", set_preferred_lft),
        ],
    ),
    _m(
        "inet6",
        "tunnel",
        "an ip6gre, ip6ip6 or ipip6 tunnel",
        [
            OptionSpec("address", Kind.TEXT, "local address inside the tunnel", required=True),
            OptionSpec("netmask", Kind.TEXT, "prefix length or netmask"),
            OptionSpec("mode", Kind.TEXT, "ip6gre, ip6ip6 or ipip6", required=True),
            OptionSpec("endpoint", Kind.IPV6, "address of the other end", required=True),
            OptionSpec("local", Kind.IPV6, "address of the local end"),
            _METRIC,
            OptionSpec("gateway", Kind.TEXT, "default gateway"),
            _TTL,
            _MTU,
            OptionSpec("encaplimit", Kind.TEXT, "encapsulation limit"),
        ],
    ),
    _m(
        "can",
        "static",
        "a Controller Area Network interface",
        [
            OptionSpec("bitrate", Kind.INT, "bitrate (1..1000000)", required=True),
            OptionSpec("samplepoint", Kind.NUMBER, "sample point (0.000..0.999)"),
            OptionSpec("loopback", Kind.ONOFF, "loop back CAN messages"),
            OptionSpec("listenonly", Kind.ONOFF, "listen-only mode"),
            OptionSpec("triple", Kind.ONOFF, "triple sampling"),
            OptionSpec("oneshot", Kind.ONOFF, "one-shot mode"),
            OptionSpec("berr", Kind.ONOFF, "bus error reporting"),
            OptionSpec("restart-ms", Kind.INT, "restart delay (ms)"),
        ],
    ),
    _m(
        "ipx",
        "static",
        "a static IPX interface",
        [
            OptionSpec("frame", Kind.TEXT, "frame type"),
            OptionSpec("netnum", Kind.TEXT, "network number"),
        ],
    ),
    _m(
        "ipx",
        "dynamic",
        "a dynamic IPX interface",
        [OptionSpec("frame", Kind.TEXT, "frame type")],
    ),
    _m("meta", "none", "ifupdown's internal pseudo-interface for --all", supported=False),
)

FAMILIES: Final[dict[str, dict[str, MethodSpec]]] = {}
for _spec in METHODS:
    FAMILIES.setdefault(_spec.family, {})[_spec.name] = _spec

# Options any stanza may carry, whatever its method (hooks, the link step, ucarp's package).
COMMON: Final[tuple[OptionSpec, ...]] = (
    OptionSpec("pre-up", Kind.TEXT, "command run before the interface is configured"),
    OptionSpec("up", Kind.TEXT, "command run after it is configured (alias: post-up)"),
    OptionSpec("down", Kind.TEXT, "command run before it is deconfigured (alias: pre-down)"),
    OptionSpec("post-down", Kind.TEXT, "command run after it is deconfigured"),
    OptionSpec("description", Kind.TEXT, "link description, set as the interface alias"),
    OptionSpec("ucarp-vid", Kind.VHID, "CARP virtual host id (Debian ucarp package)"),
    OptionSpec("ucarp-vip", Kind.IPV4, "CARP virtual IPv4 address"),
    OptionSpec("ucarp-password", Kind.TEXT, "CARP password (at most 19 bytes)"),
    OptionSpec("ucarp-advskew", Kind.BYTE, "CARP advertisement skew"),
    OptionSpec("ucarp-advbase", Kind.BYTE, "CARP advertisement base interval (s)"),
    OptionSpec("ucarp-master", Kind.TEXT, "preempt and become master (yes/no)"),
    OptionSpec("ucarp-deadratio", Kind.INT, "missed adverts before taking over"),
    OptionSpec("ucarp-nomcast", Kind.TEXT, "send to broadcast instead of multicast (yes/no)"),
    OptionSpec("ucarp-xparam", Kind.TEXT, "extra argument passed to the up/down scripts"),
    OptionSpec("ucarp-upscript", Kind.PATH, "script run on becoming master"),
    OptionSpec("ucarp-downscript", Kind.PATH, "script run on becoming backup"),
    # A VRRP group on the stanza's interface (ifupdown-ng's names where it has them; the
    # others are `ifvip run --protocol vrrp`'s options with a vrrp- prefix).
    OptionSpec("vrrp-id", Kind.VHID, "VRRP virtual router id (VRID): one group per stanza"),
    OptionSpec(
        "vrrp-address",
        Kind.VIPS,
        "the group's virtual addresses (required with vrrp-id); IPv6: the link-local one first",
    ),
    OptionSpec("vrrp-priority", Kind.VHID, "VRRP priority; 255 is the address owner [100]"),
    OptionSpec("vrrp-version", Kind.VRRP_VERSION, "VRRP version [2 for IPv4, 3 for IPv6]"),
    OptionSpec(
        "vrrp-advert-int",
        Kind.SECONDS,
        "advert interval: whole seconds 1-255 (v2), 0.01-40.95 in 10 ms steps (v3) [1]",
    ),
    OptionSpec("vrrp-preempt", Kind.YESNO, "take over from a live lower-priority master [yes]"),
    OptionSpec("vrrp-nopreempt", Kind.YESNO, "keepalived's nopreempt: yes means vrrp-preempt no"),
    OptionSpec(
        "vrrp-preempt-delay", Kind.SECONDS, "wait this long before preempting (at most 1000)"
    ),
    OptionSpec(
        "vrrp-auth-pass-file",
        Kind.PATH,
        "file whose first line is the VRRPv2 PASS password, at most 8 bytes (a password "
        "written in the interfaces file itself is refused)",
    ),
    OptionSpec(
        "vrrp-unicast-peer", Kind.IPS, "send adverts to these peers, not the multicast group"
    ),
    OptionSpec(
        "vrrp-srcip", Kind.IP, "advert source [the stanza's IPv4 address, or the link-local]"
    ),
    OptionSpec(
        "vrrp-manage",
        Kind.TEXT,
        "logical stanzas brought up on MASTER, down on BACKUP and at exit, space separated",
    ),
    OptionSpec("vrrp-notify", Kind.TEXT, "scripts run as keepalived's notify, space separated"),
    OptionSpec("vrrp-instance", Kind.WORD, "instance name given to notify scripts [VI_<vrid>]"),
    OptionSpec("vrrp-upscript", Kind.PATH, "script run on becoming master"),
    OptionSpec("vrrp-downscript", Kind.PATH, "script run on becoming backup"),
    OptionSpec("vrrp-xparam", Kind.TEXT, "extra argument passed to the up/down scripts"),
    OptionSpec(
        "vrrp-checksum",
        Kind.CHECKSUM,
        "VRRPv3 over IPv4: keepalived's pseudo-header checksum or RFC 9568's [pseudo-header]",
    ),
    OptionSpec(
        "vrrp-garp-master-repeat", Kind.VHID, "gratuitous ARPs/NAs per address on MASTER [5]"
    ),
    OptionSpec("vrrp-garp-master-delay", Kind.SECONDS, "second announcement burst after [5]"),
    OptionSpec("vrrp-garp-master-refresh", Kind.SECONDS, "announce again every N s [0: off]"),
    OptionSpec(
        "vrrp-vip-lifetime",
        Kind.UINT,
        "lifetime of added VIPs, refreshed by every advert (0: permanent) [two master-down]",
    ),
    OptionSpec("vrrp-ignoreifstate", Kind.YESNO, "ignore the link state [no]"),
    OptionSpec(
        "ifvip-sync-group",
        Kind.WORD,
        "sync group of this stanza's CARP or VRRP group: its members are MASTER together",
    ),
)


# Options read by if-*.d scripts of other packages: not known to the methods, not suspicious.
ADDON_PREFIXES: Final = (
    "dns-",
    "bridge_",
    "bridge-",
    "bond-",
    "bond_",
    "vlan-",
    "vlan_",
    "wpa-",
    "wireless-",
    "vrrp-",  # ifvip's own are in COMMON; another vrrp-* is an error only beside vrrp-id
    "carp-",
    "vip-",
    "ethtool-",
    "offload-",
    "link-",
    "hardware-",
)


def is_known_method(family: str, method: str) -> bool:
    return method in FAMILIES.get(family, {})


def method_spec(family: str, method: str) -> MethodSpec | None:
    return FAMILIES.get(family, {}).get(method)


def common_option(name: str) -> OptionSpec | None:
    for spec in COMMON:
        if spec.name == name:
            return spec
    return None


def effective_options(
    options: Sequence[tuple[str, str]],
    family: str,
    method: str,
    physical: str,
    overrides: Sequence[tuple[str, str]] = (),
) -> list[tuple[str, str]]:
    """The options after defaults, `-o` overrides and conversions, in ifupdown's order."""
    opts: Options = [[name, value] for name, value in options]
    spec = method_spec(family, method)
    if spec is not None:
        names = {name for name, _ in opts}
        for default in spec.defaults:
            if default.name not in names:
                assert default.default is not None
                opts.append([default.name, default.default])
    for name, value in overrides:
        _set_variable(opts, name, value)
    if spec is not None:
        ctx = Context(physical, opts)
        for conv in spec.conversions:
            for index in range(len(opts)):
                if opts[index][0] != conv.option:
                    continue
                if conv.new is None:
                    target = opts[index]
                else:
                    found = next((o for o in opts if o[0] == conv.new), None)
                    if found is not None and conv.keep_existing:
                        continue
                    if found is None:
                        found = [conv.new, opts[index][1]]
                        opts.append(found)
                    else:
                        found[1] = opts[index][1]
                    target = found
                converted = conv.fn(target[1], ctx)
                if converted is not None:
                    target[1] = converted
    return [(name, value) for name, value in opts]


def _set_variable(opts: Options, name: str, value: str) -> None:
    if name not in ("pre-up", "up", "down", "post-down"):
        for option in opts:
            if option[0] == name:
                option[1] = value
                return
    opts.append([name, value])
