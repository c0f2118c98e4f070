"""The kernel as ifvip changes it: addresses, routes, rules, links and sysctls over netlink.

A thin async layer over pyroute2's AsyncIPRoute that speaks in the terms of `ip`: every
change is made the way the equivalent `ip` command would make it (routes carry `proto
boot` and the scope `ip route add` picks), so the kernel state ifvip leaves is the same as
ifupdown's. Reads return small frozen records; writes return what was there before, so the
executor can journal exactly what to restore. Sysctls are files under /proc/sys (pyroute2
does not write them).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeAlias

AF_INET: Final = 2
AF_INET6: Final = 10

RTPROT_BOOT: Final = 3  # what `ip route add` gives a route unless told otherwise
RT_SCOPE_UNIVERSE: Final = 0
RT_SCOPE_LINK: Final = 253
RT_SCOPE_HOST: Final = 254
RT_TABLE_MAIN: Final = 254
RTNH_F_ONLINK: Final = 4

IFA_F_NODAD: Final = 0x02
IFA_F_DADFAILED: Final = 0x08
IFA_F_TENTATIVE: Final = 0x40
IFA_F_PERMANENT: Final = 0x80
IFA_F_MANAGETEMPADDR: Final = 0x100

INFINITY_LIFE: Final = 0xFFFFFFFF

SCOPES: Final = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254}

Address: TypeAlias = ipaddress.IPv4Interface | ipaddress.IPv6Interface

# rtnetlink numbers (linux/netlink.h, linux/rtnetlink.h, linux/if_addr.h) for batch().
NLMSG_ERROR: Final = 2
NLM_F_REQUEST: Final = 0x1
NLM_F_ACK: Final = 0x4
NLM_F_REPLACE: Final = 0x100
NLM_F_EXCL: Final = 0x200
NLM_F_CREATE: Final = 0x400
RTM_NEWADDR: Final = 20
RTM_DELADDR: Final = 21
RTM_NEWROUTE: Final = 24
RTM_DELROUTE: Final = 25
IFA_ADDRESS: Final = 1
IFA_LOCAL: Final = 2
IFA_LABEL: Final = 3
IFA_BROADCAST: Final = 4
IFA_CACHEINFO: Final = 6
RTA_DST: Final = 1
RTA_OIF: Final = 4
RTA_GATEWAY: Final = 5
RTA_PRIORITY: Final = 6
RTA_PREFSRC: Final = 7
RTA_TABLE: Final = 15
SOL_NETLINK: Final = 270
NETLINK_CAP_ACK: Final = 10
SO_RCVBUFFORCE: Final = 33
RTM_NEWLINK: Final = 16
RTM_GETLINK: Final = 18
RTM_GETADDR: Final = 22
RTM_GETROUTE: Final = 26
NLMSG_DONE: Final = 3
NLM_F_DUMP: Final = 0x300
RTM_F_CLONED: Final = 0x200
IFLA_ADDRESS: Final = 1
IFLA_IFNAME: Final = 3
IFLA_MTU: Final = 4
IFLA_IFALIAS: Final = 20
IFLA_CARRIER: Final = 33
IFA_FLAGS: Final = 8
RTM_NEWRULE: Final = 32
RTM_DELRULE: Final = 33
FRA_DST: Final = 1
FRA_SRC: Final = 2
FRA_IIFNAME: Final = 3
FRA_PRIORITY: Final = 6
FRA_FWMARK: Final = 10
FRA_TABLE: Final = 15
FRA_OIFNAME: Final = 17
FR_ACT_TO_TBL: Final = 1
_BATCH_SIZE: Final = 256
_TYPES: Final = {
    "unicast": 1,
    "local": 2,
    "broadcast": 3,
    "anycast": 4,
    "multicast": 5,
    "blackhole": 6,
    "unreachable": 7,
    "prohibit": 8,
    "throw": 9,
    "nat": 10,
}


@dataclass(frozen=True)
class Message:
    """One rtnetlink request for Kernel.batch(): `what` names it in errors."""

    what: str
    type: int
    flags: int
    body: bytes


def _rta(kind: int, data: bytes) -> bytes:
    length = 4 + len(data)
    return struct.pack("=HH", length, kind) + data + b"\0" * ((4 - length % 4) % 4)


class KernelError(Exception):
    """A netlink request failed; `errno` is the kernel's answer (EEXIST, ENODEV...)."""

    def __init__(self, what: str, code: int, message: str) -> None:
        super().__init__(f"{what}: {message}")
        self.errno = code


@dataclass(frozen=True)
class AddressInfo:
    ifname: str
    address: Address
    label: str | None
    scope: int
    flags: int
    broadcast: str | None = None
    peer: str | None = None
    preferred: int = INFINITY_LIFE
    valid: int = INFINITY_LIFE
    index: int = 0

    @property
    def family(self) -> int:
        return AF_INET6 if self.address.version == 6 else AF_INET

    @property
    def tentative(self) -> bool:
        return bool(self.flags & IFA_F_TENTATIVE)

    @property
    def dad_failed(self) -> bool:
        return bool(self.flags & IFA_F_DADFAILED)


@dataclass(frozen=True)
class LinkInfo:
    name: str
    index: int
    up: bool
    mtu: int
    mac: str
    alias: str | None
    carrier: bool


@dataclass(frozen=True)
class Route:
    """A route as `ip route` describes it; `dst` None is the default route."""

    dst: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    family: int
    gateway: str | None = None
    dev: str | None = None
    metric: int | None = None
    table: int = RT_TABLE_MAIN
    proto: int = RTPROT_BOOT
    scope: int | None = None  # None: what `ip route add` would choose
    src: str | None = None
    onlink: bool = False
    type: str = "unicast"

    def effective_scope(self) -> int:
        if self.scope is not None:
            return self.scope
        # iproute2 (iproute.c): local and nat routes are host-scoped, broadcast, multicast
        # and anycast ones link-scoped, and an IPv4 unicast route with no gateway is a
        # link-scope route; everything else is universe.
        if self.type in ("local", "nat"):
            return RT_SCOPE_HOST
        if self.type in ("broadcast", "multicast", "anycast"):
            return RT_SCOPE_LINK
        if self.type == "unicast" and self.family == AF_INET and self.gateway is None:
            return RT_SCOPE_LINK
        return RT_SCOPE_UNIVERSE


@dataclass(frozen=True)
class Rule:
    family: int
    priority: int | None = None
    src: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    dst: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    table: int = RT_TABLE_MAIN
    iifname: str | None = None
    oifname: str | None = None
    fwmark: int | None = None


def sysctl_path(name: str) -> Path:
    """`net.ipv6.conf.eth0/5.accept_ra` (sysctl form) or a /proc/sys path → the file."""
    if name.startswith("/proc/sys/"):
        return Path(name)
    # sysctl(8): dots separate, and a `/` in a component stands for a dot (eth0.5 → eth0/5).
    return Path("/proc/sys", *(part.replace("/", ".") for part in name.split(".")))


def read_sysctl(name: str) -> str:
    return sysctl_path(name).read_text().strip()


def write_sysctl(name: str, value: str) -> str:
    """Write a sysctl; return its previous value (for the journal)."""
    path = sysctl_path(name)
    previous = path.read_text().strip()
    path.write_text(value + "\n")
    return previous


class Kernel:
    """One netlink socket (optionally in a named network namespace)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._ipr: Any = None
        self._indexes: dict[str, int] = {}  # ifname -> ifindex, forgotten on link add/del
        self._raw: socket.socket | None = None  # a plain netlink socket for batch()
        self._seq = 0

    async def __aenter__(self) -> Kernel:
        if self.netns is not None:
            await self._pyroute()
        return self

    @property
    def raw(self) -> bool:
        """Whether requests go over ifvip's own netlink socket (this process's namespace).

        pyroute2 is then only loaded for what that socket does not do (tunnels, renames,
        route dumps for callers): an `ifvip ifup` starts faster without it.
        """
        return self.netns is None

    async def _pyroute(self) -> Any:
        if self._ipr is None:
            from pyroute2 import AsyncIPRoute  # noqa: PLC0415 - slow to import, rarely needed

            ipr = AsyncIPRoute(netns=self.netns) if self.netns else AsyncIPRoute()
            self._ipr = await ipr.__aenter__()
        return self._ipr

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._raw is not None:
            self._raw.close()
            self._raw = None
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    async def _call(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        ipr = await self._pyroute()
        from pyroute2.netlink.exceptions import NetlinkError  # noqa: PLC0415

        try:
            return await getattr(ipr, method)(*args, **kwargs)
        except NetlinkError as exc:
            raise KernelError(what, exc.code, _strerror(exc.code)) from None

    # ---------------------------------------------------------------- links

    async def index(self, ifname: str) -> int:
        # An alias name (eth0:1) is a label on eth0: the kernel ignores the suffix too.
        base = ifname.split(":", 1)[0]
        known = self._indexes.get(base)
        if known is not None:
            return known
        if self.raw:
            try:
                self._indexes[base] = socket.if_nametoindex(base)
            except OSError:
                raise KernelError(f"{base}", errno.ENODEV, "Cannot find device") from None
            return self._indexes[base]
        found = await self._call(f"{base}", "link_lookup", ifname=base)
        if not found:
            raise KernelError(f"{base}", errno.ENODEV, "Cannot find device")
        self._indexes[base] = int(found[0])
        return int(found[0])

    async def link(self, ifname: str) -> LinkInfo:
        index = await self.index(ifname)
        if self.raw:
            body = struct.pack("=BxHiII", 0, 0, index, 0, 0)
            replies = self._exchange(Message(ifname, RTM_GETLINK, 0, body), dump=False)
            return _raw_link(replies[0])
        (msg,) = await self._call(ifname, "link", "get", index=index)
        return _link_info(msg)

    async def links(self) -> list[LinkInfo]:
        if self.raw:
            body = struct.pack("=BxHiII", 0, 0, 0, 0, 0)
            return [_raw_link(m) for m in self._exchange(Message("links", RTM_GETLINK, 0, body))]
        return [_link_info(m) async for m in await self._call("links", "link", "dump")]

    async def set_link(
        self,
        ifname: str,
        *,
        up: bool | None = None,
        mtu: int | None = None,
        mac: str | None = None,
        alias: str | None = None,
    ) -> LinkInfo:
        """Change a link; return how it was before."""
        before = await self.link(ifname)
        changes: dict[str, Any] = {}
        if mtu is not None:
            changes["mtu"] = mtu
        if mac is not None:
            changes["address"] = mac
        if alias is not None:
            changes["ifalias"] = alias
        if up is not None:
            changes["state"] = "up" if up else "down"
        if changes and self.raw:
            # `ip link set`: one RTM_NEWLINK, IFF_UP in the change mask only when asked.
            flags = 1 if up else 0
            body = struct.pack("=BxHiII", 0, 0, before.index, flags, 0 if up is None else 1)
            if mtu is not None:
                body += _rta(IFLA_MTU, struct.pack("=I", mtu))
            if mac is not None:
                body += _rta(IFLA_ADDRESS, bytes.fromhex(mac.replace(":", "")))
            if alias is not None:
                body += _rta(IFLA_IFALIAS, alias.encode())
            await self._one(Message(f"set link {ifname}", RTM_NEWLINK, 0, body))
        elif changes:
            await self._call(f"set link {ifname}", "link", "set", index=before.index, **changes)
        return before

    # ---------------------------------------------------------------- addresses

    async def addresses(
        self, ifname: str | None = None, family: int | None = None
    ) -> list[AddressInfo]:
        if self.raw:
            index = None if ifname is None else await self.index(ifname)
            names = {link.index: link.name for link in await self.links()}
            body = struct.pack("=BBBBI", family or 0, 0, 0, 0, 0)
            found = [
                _raw_address(m, names)
                for m in self._exchange(Message("addresses", RTM_GETADDR, 0, body))
            ]
            return [
                a
                for a in found
                if (index is None or a.index == index) and (family is None or a.family == family)
            ]
        query: dict[str, Any] = {}
        if ifname is not None:
            query["index"] = await self.index(ifname)
        if family is not None:
            query["family"] = family
        names = {link.index: link.name for link in await self.links()}
        result = []
        async for msg in await self._call("addresses", "addr", "dump", **query):
            result.append(_address_info(msg, names))
        return result

    async def add_address(
        self,
        ifname: str,
        address: Address,
        *,
        label: str | None = None,
        broadcast: str | None = None,
        peer: str | None = None,
        scope: int | None = None,
        nodad: bool = False,
        preferred: int | None = None,
        valid: int | None = None,
        replace: bool = False,
    ) -> None:
        if self.raw:
            message = await self.address_message(
                "replace" if replace else "add",
                ifname,
                address,
                label=label,
                broadcast=broadcast,
                peer=peer,
                scope=scope,
                nodad=nodad,
                preferred=preferred,
                valid=valid,
            )
            await self._one(message)
            return
        request = await self._address_request(ifname, address, peer)
        if address.version == 4:
            request["label"] = label if label is not None else ifname
            if broadcast is not None:
                request["broadcast"] = broadcast
        if scope is not None:
            request["scope"] = scope
        if nodad:
            request["flags"] = IFA_F_NODAD
        if preferred is not None or valid is not None:
            request["IFA_CACHEINFO"] = {
                "ifa_preferred": INFINITY_LIFE if preferred is None else preferred,
                "ifa_valid": INFINITY_LIFE if valid is None else valid,
            }
        command = "replace" if replace else "add"
        await self._call(f"{command} address {address} dev {ifname}", "addr", command, **request)

    async def del_address(self, ifname: str, address: Address, *, peer: str | None = None) -> None:
        if self.raw:
            await self._one(await self.address_message("del", ifname, address, peer=peer))
            return
        request = await self._address_request(ifname, address, peer)
        await self._call(f"delete address {address} dev {ifname}", "addr", "del", **request)

    async def _address_request(
        self, ifname: str, address: Address, peer: str | None
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "index": await self.index(ifname),
            "address": str(address.ip),
            "prefixlen": address.network.prefixlen,
        }
        if peer is not None:
            # `ip addr add A peer P`: IFA_LOCAL is A, IFA_ADDRESS is the peer.
            # The prefix length is the peer's (32 or 128 when it has none), as in iproute2.
            request["local"] = str(address.ip)
            request["address"] = peer.split("/")[0]
            request["prefixlen"] = ipaddress.ip_interface(peer).network.prefixlen
        return request

    # ---------------------------------------------------------------- routes and rules

    async def add_route(self, route: Route, *, command: str = "add") -> None:
        if self.raw:
            await self._one(await self.route_message(route, command))
            return
        request = await self._route_request(route)
        await self._call(f"{command} route {_route_text(route)}", "route", command, **request)

    async def del_route(self, route: Route) -> None:
        if self.raw:
            await self._one(await self.route_message(route, "del"))
            return
        request = await self._route_request(route)
        request.pop("proto", None)  # `ip route del` matches any protocol
        await self._call(f"delete route {_route_text(route)}", "route", "del", **request)

    async def find_route(self, route: Route) -> Route | None:
        """The route `ip route replace ROUTE` would overwrite (same table, dst and metric)."""
        default_metric = 1024 if route.family == AF_INET6 else 0
        wanted = default_metric if route.metric is None else route.metric
        for found in await self.route_list(route.family):
            if found.table != route.table or found.dst != route.dst:
                continue
            metric = default_metric if found.metric is None else found.metric
            if metric == wanted:
                return found
        return None

    async def route_list(self, family: int) -> list[Route]:
        """The routes of every table as Route records (the route cache left out)."""
        names = {link.index: link.name for link in await self.links()}
        if self.raw:
            body = struct.pack("=BBBBBBBBI", family, 0, 0, 0, 0, 0, 0, 0, 0)
            replies = self._exchange(Message("routes", RTM_GETROUTE, 0, body))
            return [r for r in (_raw_route(m, names) for m in replies) if r is not None]
        routes = []
        for found in await self.routes(family):
            if int(found.get("flags", 0)) & RTM_F_CLONED:
                continue
            dst = found.get("RTA_DST")
            oif = found.get("RTA_OIF")
            routes.append(
                Route(
                    dst=None
                    if dst is None
                    else ipaddress.ip_network(f"{dst}/{found['dst_len']}", strict=False),
                    family=int(found["family"]),
                    gateway=found.get("RTA_GATEWAY"),
                    dev=None if oif is None else names.get(int(oif)),
                    metric=found.get("RTA_PRIORITY"),
                    table=int(found.get("RTA_TABLE") or found.get("table") or RT_TABLE_MAIN),
                    proto=int(found.get("proto", RTPROT_BOOT)),
                    scope=int(found.get("scope", 0)),
                    src=found.get("RTA_PREFSRC"),
                    onlink=bool(int(found.get("flags", 0)) & RTNH_F_ONLINK),
                    type=_ROUTE_TYPE_NAMES.get(int(found.get("type", 1)), "unicast"),
                )
            )
        return routes

    async def routes(self, family: int, table: int | None = None) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"family": family}
        if table is not None:
            query["table"] = table
        return [
            dict(_flatten(m)) async for m in await self._call("routes", "route", "dump", **query)
        ]

    async def _route_request(self, route: Route) -> dict[str, Any]:
        request: dict[str, Any] = {
            "family": route.family,
            "table": route.table,
            "proto": route.proto,
            "scope": route.effective_scope(),
            "type": route.type,
        }
        if route.dst is None:
            request["dst"] = "default"
        else:
            request["dst"] = str(route.dst.network_address)
            request["dst_len"] = route.dst.prefixlen
        if route.gateway is not None:
            request["gateway"] = route.gateway
        if route.dev is not None:
            request["oif"] = await self.index(route.dev)
        if route.metric is not None:
            request["priority"] = route.metric
        if route.src is not None:
            request["prefsrc"] = route.src
        if route.onlink:
            request["flags"] = RTNH_F_ONLINK
        return request

    async def add_rule(self, rule: Rule) -> None:
        if self.netns is None:
            await self._one(self.rule_message(rule, "add"))
        else:
            await self._call("add rule", "rule", "add", **_rule_request(rule))

    async def del_rule(self, rule: Rule) -> None:
        if self.netns is None:
            await self._one(self.rule_message(rule, "del"))
        else:
            await self._call("delete rule", "rule", "del", **_rule_request(rule))

    async def _one(self, message: Message) -> None:
        (error,) = self.batch([message])
        if error is not None:
            raise error

    # ---------------------------------------------------------------- batches

    async def address_message(
        self,
        verb: str,
        ifname: str,
        address: Address | str,
        *,
        label: str | None = None,
        broadcast: str | None = None,
        peer: str | None = None,
        scope: int | None = None,
        nodad: bool = False,
        preferred: int | None = None,
        valid: int | None = None,
    ) -> Message:
        """The RTM_NEWADDR/RTM_DELADDR `ip addr add|del` sends, for `batch()`.

        `address` may be `ADDR/PREFIX` text (read without ipaddress: a thousand of them
        in one ifup add up).
        """
        family, local, prefixlen = _cidr(address)
        remote = local
        if peer is not None:
            # iproute2: the prefix length is the peer's (32 or 128 when it has none).
            peer_ip = ipaddress.ip_interface(peer)
            remote = peer_ip.ip.packed
            prefixlen = peer_ip.network.prefixlen
        adding = verb in ("add", "replace")
        flags = IFA_F_NODAD if nodad and adding else 0
        body = struct.pack("=BBBBI", family, prefixlen, flags, scope or 0, await self.index(ifname))
        body += _rta(IFA_LOCAL, local) + _rta(IFA_ADDRESS, remote)
        if adding:
            if family == AF_INET:
                text = label if label is not None else ifname
                body += _rta(IFA_LABEL, text.encode() + b"\0")
                if broadcast is not None:
                    body += _rta(IFA_BROADCAST, ipaddress.IPv4Address(broadcast).packed)
            if preferred is not None or valid is not None:
                body += _rta(
                    IFA_CACHEINFO,
                    struct.pack(
                        "=IIII",
                        INFINITY_LIFE if preferred is None else preferred,
                        INFINITY_LIFE if valid is None else valid,
                        0,
                        0,
                    ),
                )
            kind, nl_flags = RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL
        elif verb == "replace":
            kind, nl_flags = RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE
        else:
            kind, nl_flags = RTM_DELADDR, 0
        return Message(f"{verb} address {address} dev {ifname}", kind, nl_flags, body)

    async def route_message(self, route: Route, command: str = "add") -> Message:
        """The RTM_NEWROUTE/RTM_DELROUTE `ip route add|del|replace` sends, for `batch()`."""
        if command == "del":
            # `ip route del` matches any protocol and scope (RT_SCOPE_NOWHERE).
            proto, scope, kind_of = 0, 255, 0 if route.type == "unicast" else _TYPES[route.type]
        else:
            proto, scope, kind_of = route.proto, route.effective_scope(), _TYPES[route.type]
        table = route.table
        dst_len = 0 if route.dst is None else route.dst.prefixlen
        flags = RTNH_F_ONLINK if route.onlink else 0
        body = struct.pack(
            "=BBBBBBBBI",
            route.family,
            dst_len,
            0,
            0,
            table if table < 256 else 0,
            proto,
            scope,
            kind_of,
            flags,
        )
        body += _rta(RTA_TABLE, struct.pack("=I", table))
        if route.dst is not None and dst_len:
            body += _rta(RTA_DST, route.dst.network_address.packed)
        if route.gateway is not None:
            body += _rta(RTA_GATEWAY, ipaddress.ip_address(route.gateway).packed)
        if route.dev is not None:
            body += _rta(RTA_OIF, struct.pack("=I", await self.index(route.dev)))
        if route.metric is not None:
            body += _rta(RTA_PRIORITY, struct.pack("=I", route.metric))
        if route.src is not None:
            body += _rta(RTA_PREFSRC, ipaddress.ip_address(route.src).packed)
        if command == "del":
            kind, nl_flags = RTM_DELROUTE, 0
        elif command == "replace":
            kind, nl_flags = RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE
        else:
            kind, nl_flags = RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL
        return Message(f"{command} route {_route_text(route)}", kind, nl_flags, body)

    def rule_message(self, rule: Rule, command: str = "add") -> Message:
        """The RTM_NEWRULE/RTM_DELRULE `ip rule add|del` sends, for `batch()`.

        Without a priority none is sent, so the kernel picks one below the last rule's,
        as it does for `ip rule add` (pyroute2 would send 32000).
        """
        src_len = 0 if rule.src is None else rule.src.prefixlen
        dst_len = 0 if rule.dst is None else rule.dst.prefixlen
        table = rule.table
        body = struct.pack(
            "=BBBBBBBBI",
            rule.family,
            dst_len,
            src_len,
            0,
            table if table < 256 else 0,
            0,
            0,
            FR_ACT_TO_TBL,
            0,
        )
        if table >= 256:
            body += _rta(FRA_TABLE, struct.pack("=I", table))
        if rule.priority is not None:
            body += _rta(FRA_PRIORITY, struct.pack("=I", rule.priority))
        if rule.src is not None:
            body += _rta(FRA_SRC, rule.src.network_address.packed)
        if rule.dst is not None:
            body += _rta(FRA_DST, rule.dst.network_address.packed)
        if rule.iifname is not None:
            body += _rta(FRA_IIFNAME, rule.iifname.encode() + b"\0")
        if rule.oifname is not None:
            body += _rta(FRA_OIFNAME, rule.oifname.encode() + b"\0")
        if rule.fwmark is not None:
            body += _rta(FRA_FWMARK, struct.pack("=I", rule.fwmark))
        if command == "del":
            return Message("delete rule", RTM_DELRULE, 0, body)
        return Message("add rule", RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, body)

    def _socket(self) -> socket.socket:
        if self._raw is None:
            self._raw = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
            self._raw.bind((0, 0))
            # Room for a whole batch of failure answers, each without the request echoed.
            try:
                self._raw.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 1 << 21)
            except OSError:
                self._raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            self._raw.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        return self._raw

    def _exchange(self, message: Message, *, dump: bool = True) -> list[bytes]:
        """One request (a dump by default); the payloads of the answers, headers off."""
        raw = self._socket()
        self._seq += 1
        seq = self._seq
        flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else 0) | message.flags
        raw.sendall(
            struct.pack("=IHHII", 16 + len(message.body), message.type, flags, seq, 0)
            + message.body
        )
        payloads: list[bytes] = []
        while True:
            buffer = raw.recv(1 << 20)
            at = 0
            while at + 16 <= len(buffer):
                length, kind, _, got, _ = struct.unpack_from("=IHHII", buffer, at)
                if length < 16:
                    break
                payload = buffer[at + 16 : at + length]
                at += (length + 3) & ~3
                if got != seq:
                    continue
                if kind == NLMSG_DONE:
                    return payloads
                if kind == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", payload)
                    if code:
                        raise KernelError(message.what, -code, os.strerror(-code))
                    return payloads
                payloads.append(payload)
                if not dump:
                    return payloads

    def batch(self, messages: Sequence[Message]) -> list[KernelError | None]:
        """Send `messages` in order, many per sendmsg(); one result per message.

        The kernel handles the messages of a socket one after the other, as if they came
        one by one, so this only saves the round trips. In this process's namespace only.
        """
        if self.netns is not None:
            raise RuntimeError("Kernel.batch works in the current network namespace only")
        raw = self._socket()
        results: list[KernelError | None] = []
        for start in range(0, len(messages), _BATCH_SIZE):
            chunk = messages[start : start + _BATCH_SIZE]
            self._seq += 1
            first = self._seq
            data = bytearray()
            last = first + len(chunk) - 1
            for offset, message in enumerate(chunk):
                # Only the last asks for an ack: the kernel answers failures anyway, and
                # handles the messages in order, so the last ack means all are done.
                ack = NLM_F_ACK if first + offset == last else 0
                data += struct.pack(
                    "=IHHII",
                    16 + len(message.body),
                    message.type,
                    NLM_F_REQUEST | ack | message.flags,
                    first + offset,
                    0,
                )
                data += message.body
            self._seq += len(chunk)
            raw.sendall(bytes(data))
            answers: dict[int, int] = {}
            while last not in answers:
                buffer = raw.recv(1 << 20)
                at = 0
                while at + 16 <= len(buffer):
                    length, kind, _, seq, _ = struct.unpack_from("=IHHII", buffer, at)
                    if kind == NLMSG_ERROR and first <= seq <= last:
                        (code,) = struct.unpack_from("=i", buffer, at + 16)
                        answers[seq] = -code
                    at += (length + 3) & ~3
                    if length < 16:
                        break
            for offset, message in enumerate(chunk):
                code = answers.get(first + offset, 0)
                results.append(
                    None if code == 0 else KernelError(message.what, code, os.strerror(code))
                )
        return results

    # ---------------------------------------------------------------- DAD

    async def wait_dad(self, ifname: str, address: Address, attempts: int, interval: float) -> None:
        """Wait until no address in `address`'s prefix is tentative, as settle-dad.sh does.

        settle-dad.sh polls `ip -6 addr list dev IFACE to ADDRESS/NETMASK tentative` up to
        `attempts` times, `interval` seconds apart, then fails if one is `dadfailed`. The
        script's own polls (a fork of ip each) make it wait a little longer than
        attempts x interval; ifvip polls more often and gives one more interval.
        Raises KernelError when DAD failed (a duplicate answered) or the time ran out.
        """
        if attempts <= 0:
            return
        network = address.network
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (attempts + 1) * interval
        step = min(interval, 0.05)
        while True:
            mine = [a for a in await self.addresses(ifname, AF_INET6) if a.address.ip in network]
            if not any(a.tentative for a in mine):
                if any(a.dad_failed for a in mine):
                    raise KernelError(
                        f"DAD for {address}", errno.EADDRINUSE, "duplicate address detected"
                    )
                return
            if loop.time() >= deadline:
                break
            await asyncio.sleep(step)
        raise KernelError(f"DAD for {address}", errno.ETIMEDOUT, "still tentative, timed out")

    async def wait_link_local(self, ifname: str, attempts: int, interval: float) -> None:
        """Wait for a usable (not tentative) link-local address, as wait-for-ll6.sh does."""
        for attempt in range(max(attempts, 1)):
            if any(
                a.scope == RT_SCOPE_LINK and not a.tentative
                for a in await self.addresses(ifname, AF_INET6)
            ):
                return
            if attempt + 1 < attempts:
                await asyncio.sleep(interval)
        raise KernelError(ifname, errno.ETIMEDOUT, "Could not get a link-local address")

    async def flush_addresses(
        self,
        ifname: str,
        family: int | None = None,
        *,
        scope: int | None = None,
        mngtmpaddr: bool = False,
    ) -> list[AddressInfo]:
        """`ip [-4|-6] addr flush dev IFNAME [scope S] [mngtmpaddr]`; returns what went."""
        gone = []
        for info in await self.addresses(ifname, family):
            if info.ifname != ifname.split(":", 1)[0]:
                continue
            if scope is not None and info.scope != scope:
                continue
            if mngtmpaddr and not info.flags & IFA_F_MANAGETEMPADDR:
                continue
            try:
                await self.del_address(ifname, info.address, peer=info.peer)
            except KernelError as exc:
                if exc.errno != errno.EADDRNOTAVAIL:  # a secondary went with its primary
                    raise
                continue
            gone.append(info)
        return gone

    # ---------------------------------------------------------------- virtual links

    async def add_link(self, ifname: str, kind: str, **attrs: Any) -> None:
        """Create a link of `kind` (gre, ipip, sit, ip6gre, ip6tnl, vlan...)."""
        request: dict[str, Any] = {"ifname": ifname, "kind": kind}
        for key, value in attrs.items():
            if value is not None:
                request[key] = value
        self._indexes.clear()
        await self._call(f"add link {ifname} type {kind}", "link", "add", **request)

    async def rename_link(self, ifname: str, new: str) -> None:
        index = await self.index(ifname)
        self._indexes.clear()
        await self._call(f"rename {ifname} to {new}", "link", "set", index=index, ifname=new)

    async def del_link(self, ifname: str) -> None:
        index = await self.index(ifname)
        self._indexes.clear()
        await self._call(f"delete link {ifname}", "link", "del", index=index)


_ROUTE_TYPE_NAMES: Final = {number: name for name, number in _TYPES.items()}


def _strerror(code: int) -> str:
    import os  # noqa: PLC0415 - only on the error path

    return os.strerror(code)


def _flatten(msg: Any) -> list[tuple[str, Any]]:
    fields = [(k, v) for k, v in msg.items() if k != "attrs"]
    fields += [(k, v) for k, v in msg.get("attrs", [])]
    return fields


def _link_info(msg: Any) -> LinkInfo:
    return LinkInfo(
        name=msg.get("ifname"),
        index=int(msg["index"]),
        up=bool(msg["flags"] & 1),
        mtu=int(msg.get("mtu") or 0),
        mac=msg.get("address") or "00:00:00:00:00:00",
        alias=msg.get("ifalias"),
        carrier=bool(msg.get("carrier", 0)),
    )


def _address_info(msg: Any, names: dict[int, str]) -> AddressInfo:
    local = msg.get("local")
    address = msg.get("address")
    peer = None
    if local is not None and address is not None and local != address:
        peer = address
    ip = local or address
    cache = msg.get("cacheinfo") or msg.get("IFA_CACHEINFO") or {}
    return AddressInfo(
        ifname=names.get(int(msg["index"]), str(msg["index"])),
        address=ipaddress.ip_interface(f"{ip}/{msg['prefixlen']}"),
        label=msg.get("label"),
        scope=int(msg.get("scope") or 0),
        flags=int(msg.get("flags") or 0),
        broadcast=msg.get("broadcast"),
        peer=peer,
        preferred=int(cache.get("ifa_preferred", INFINITY_LIFE)) if cache else INFINITY_LIFE,
        valid=int(cache.get("ifa_valid", INFINITY_LIFE)) if cache else INFINITY_LIFE,
        index=int(msg["index"]),
    )


def _cidr(address: Address | str) -> tuple[int, bytes, int]:
    """(family, packed address, prefix length) of an interface address or its text."""
    if not isinstance(address, str):
        family = AF_INET6 if address.version == 6 else AF_INET
        return family, address.ip.packed, address.network.prefixlen
    text, _, prefix = address.partition("/")
    family = AF_INET6 if ":" in text else AF_INET
    try:
        packed = socket.inet_pton(socket.AF_INET6 if family == AF_INET6 else socket.AF_INET, text)
        length = int(prefix) if prefix else (128 if family == AF_INET6 else 32)
    except (OSError, ValueError):
        raise ValueError(f"invalid address {address!r}") from None
    if not 0 <= length <= (128 if family == AF_INET6 else 32):
        raise ValueError(f"invalid prefix length in {address!r}")
    return family, packed, length


def _raw_attrs(data: bytes, at: int) -> dict[int, bytes]:
    """The route attributes from offset `at` (the first of each type)."""
    attrs: dict[int, bytes] = {}
    while at + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, at)
        if length < 4:
            break
        attrs.setdefault(kind & 0x3FFF, data[at + 4 : at + length])
        at += (length + 3) & ~3
    return attrs


def _u32(attrs: dict[int, bytes], kind: int) -> int | None:
    value = attrs.get(kind)
    return None if value is None else int(struct.unpack_from("=I", value)[0])


def _text(attrs: dict[int, bytes], kind: int) -> str | None:
    value = attrs.get(kind)
    return None if value is None else value.split(b"\0", 1)[0].decode(errors="replace")


def _ip(value: bytes | None) -> str | None:
    if value is None:
        return None
    return str(ipaddress.ip_address(value))


def _raw_link(payload: bytes) -> LinkInfo:
    _family, _type, index, flags, _change = struct.unpack_from("=BxHiII", payload)
    attrs = _raw_attrs(payload, 16)
    mac = attrs.get(IFLA_ADDRESS)
    carrier = attrs.get(IFLA_CARRIER)
    return LinkInfo(
        name=_text(attrs, IFLA_IFNAME) or str(index),
        index=index,
        up=bool(flags & 1),
        mtu=_u32(attrs, IFLA_MTU) or 0,
        mac=":".join(f"{b:02x}" for b in mac) if mac else "00:00:00:00:00:00",
        alias=_text(attrs, IFLA_IFALIAS) or None,
        carrier=bool(carrier and carrier[0]),
    )


def _raw_address(payload: bytes, names: dict[int, str]) -> AddressInfo:
    _family, prefixlen, flags, scope, index = struct.unpack_from("=BBBBI", payload)
    attrs = _raw_attrs(payload, 8)
    local = _ip(attrs.get(IFA_LOCAL))
    address = _ip(attrs.get(IFA_ADDRESS))
    peer = address if local is not None and address is not None and local != address else None
    cache = attrs.get(IFA_CACHEINFO)
    preferred, valid = struct.unpack_from("=II", cache) if cache else (INFINITY_LIFE,) * 2
    return AddressInfo(
        ifname=names.get(index, str(index)),
        address=ipaddress.ip_interface(f"{local or address}/{prefixlen}"),
        label=_text(attrs, IFA_LABEL),
        scope=scope,
        flags=_u32(attrs, IFA_FLAGS) or flags,
        broadcast=_ip(attrs.get(IFA_BROADCAST)),
        peer=peer,
        preferred=preferred,
        valid=valid,
        index=index,
    )


def _raw_route(payload: bytes, names: dict[int, str]) -> Route | None:
    family, dst_len, _src, _tos, table, proto, scope, kind, flags = struct.unpack_from(
        "=BBBBBBBBI", payload
    )
    if flags & RTM_F_CLONED:
        return None
    attrs = _raw_attrs(payload, 12)
    dst = attrs.get(RTA_DST)
    oif = _u32(attrs, RTA_OIF)
    return Route(
        dst=None if dst is None else ipaddress.ip_network((dst, dst_len), strict=False),
        family=family,
        gateway=_ip(attrs.get(RTA_GATEWAY)),
        dev=None if oif is None else names.get(oif),
        metric=_u32(attrs, RTA_PRIORITY),
        table=_u32(attrs, RTA_TABLE) or table,
        proto=proto,
        scope=scope,
        src=_ip(attrs.get(RTA_PREFSRC)),
        onlink=bool(flags & RTNH_F_ONLINK),
        type=_ROUTE_TYPE_NAMES.get(kind, "unicast"),
    )


def _route_text(route: Route) -> str:
    parts = [str(route.dst) if route.dst is not None else "default"]
    if route.gateway:
        parts += ["via", route.gateway]
    if route.dev:
        parts += ["dev", route.dev]
    if route.metric is not None:
        parts += ["metric", str(route.metric)]
    if route.table != RT_TABLE_MAIN:
        parts += ["table", str(route.table)]
    return " ".join(parts)


def _rule_request(rule: Rule) -> dict[str, Any]:
    request: dict[str, Any] = {"family": rule.family, "table": rule.table, "action": "to_tbl"}
    if rule.priority is not None:
        request["priority"] = rule.priority
    if rule.src is not None:
        request["src"] = str(rule.src.network_address)
        request["src_len"] = rule.src.prefixlen
    if rule.dst is not None:
        request["dst"] = str(rule.dst.network_address)
        request["dst_len"] = rule.dst.prefixlen
    if rule.iifname is not None:
        request["iifname"] = rule.iifname
    if rule.oifname is not None:
        request["oifname"] = rule.oifname
    if rule.fwmark is not None:
        request["fwmark"] = rule.fwmark
    return request
