"""The kernel as ifvip changes it: addresses, routes, rules, links and sysctls over netlink.

A thin async layer over a pyroute2 netlink socket (one per `Kernel`) that speaks in
the terms of `ip`: every change is made the way the equivalent `ip` command would make it
(routes carry `proto boot` and the scope `ip route add` picks, rules without a priority
get the kernel's, addresses their label), so the kernel state ifvip leaves is the same as
ifupdown's. Reads return small frozen records; `set_link` returns what was there before,
so the executor can journal exactly what to restore. Sysctls are files under /proc/sys
(pyroute2 does not write them).

Requests are pyroute2 messages (`ifinfmsg`, `ifaddrmsg`, `rtmsg`, `fibmsg`) built as `ip`
builds them and sent on pyroute2's netlink socket (ifupdown/rtnl.py: the socket, marshal
and message classes, without the rest of pyroute2); `Kernel.batch()` sends many of them
at once (pyroute2 encodes them into one buffer, one send; the kernel's answers are read
back through pyroute2's queue and parser by sequence number), so a thousand `up ip addr add` lines
cost one round of requests instead of a thousand round trips. Only tunnel and VLAN
creation goes through AsyncIPRoute (its request filters build the kinds' nested data).

pyroute2 is imported on first use, so commands that never touch the kernel (`ifup -n`,
`ifquery`, `check`) do not load it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, TypeAlias

from ifvip.record import record

AF_INET: Final = 2
AF_INET6: Final = 10

RTPROT_BOOT: Final = 3  # what `ip route add` gives a route unless told otherwise
RT_SCOPE_UNIVERSE: Final = 0
RT_SCOPE_LINK: Final = 253
RT_SCOPE_HOST: Final = 254
RT_SCOPE_NOWHERE: Final = 255
RT_TABLE_MAIN: Final = 254
RTNH_F_ONLINK: Final = 4
RTM_F_CLONED: Final = 0x200
FR_ACT_TO_TBL: Final = 1

IFA_F_NODAD: Final = 0x02
IFA_F_DADFAILED: Final = 0x08
IFA_F_TENTATIVE: Final = 0x40
IFA_F_PERMANENT: Final = 0x80
IFA_F_MANAGETEMPADDR: Final = 0x100

INFINITY_LIFE: Final = 0xFFFFFFFF

SCOPES: Final = {"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254}

Address: TypeAlias = ipaddress.IPv4Interface | ipaddress.IPv6Interface

# Requests per send: the kernel's answers to one send must fit in the socket's receive
# buffer (a failure answer echoes its request), or they would be dropped.
_BATCH_SIZE: Final = 256
_BATCH_TIMEOUT: Final = 30.0  # seconds to wait for the answers to one send
_SEQ_FIRST: Final = 0x10000  # batched requests' sequence numbers (see Kernel._sequence)
_SEQ_LAST: Final = 0x7FFFFFFF
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
_ROUTE_TYPE_NAMES: Final = {number: name for name, number in _TYPES.items()}


def preload() -> None:
    """Import pyroute2's netlink modules now rather than on the first request."""
    _pyroute2()


def _pyroute2() -> Any:
    """ifvip.ifupdown.rtnl: pyroute2's socket and message classes, imported on first use."""
    from ifvip.ifupdown import rtnl  # noqa: PLC0415 - pyroute2 loads only when needed

    return rtnl


@record(kw_only=False)
class Request:
    """One rtnetlink request for `Kernel.batch()`: a pyroute2 message with its type and
    flags (`NLM_F_CREATE|NLM_F_EXCL` for an add...); `what` names it in errors."""

    what: str
    msg: Any  # a pyroute2 nlmsg: ifaddrmsg, rtmsg or fibmsg
    type: int
    flags: int


class KernelError(Exception):
    """A netlink request failed; `errno` is the kernel's answer (EEXIST, ENODEV...)."""

    def __init__(self, what: str, code: int, message: str) -> None:
        super().__init__(f"{what}: {message}")
        self.errno = code


@record(kw_only=False)
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
    proto: int = 0  # IFA_PROTO: who added it (0: unspecified, as most programs leave it)

    @property
    def family(self) -> int:
        return AF_INET6 if self.address.version == 6 else AF_INET

    @property
    def tentative(self) -> bool:
        return bool(self.flags & IFA_F_TENTATIVE)

    @property
    def dad_failed(self) -> bool:
        return bool(self.flags & IFA_F_DADFAILED)


@record(kw_only=False)
class LinkInfo:
    name: str
    index: int
    up: bool
    mtu: int
    mac: str
    alias: str | None
    carrier: bool


@record(kw_only=False)
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


@record(kw_only=False)
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
    """One pyroute2 rtnetlink socket, optionally in a named network namespace.

    The socket is opened on the first request, so a Kernel that is never used costs
    nothing (not even pyroute2's import).
    """

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self._ipr: Any = None
        self._indexes: dict[str, int] = {}  # ifname -> ifindex, forgotten on link add/del
        self._seq = _SEQ_FIRST - 1

    async def __aenter__(self) -> Kernel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _pyroute(self) -> Any:
        if self._ipr is None:
            ipr = _pyroute2().RtnlSocket(netns=self.netns)
            await ipr.setup_endpoint()
            self._ipr = ipr
        return self._ipr

    async def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    def forget_indexes(self) -> None:
        """Forget the cached ifindexes (after a hook may have renamed or made links)."""
        self._indexes.clear()

    async def _request(self, what: str, msg: Any, msg_type: int, flags: int) -> list[Any]:
        """One request (a get, a dump or a change with its acknowledgement) and its
        answers, the kernel's refusal raised as KernelError."""
        ipr = await self._pyroute()
        try:
            answers: list[Any] = await ipr.request(msg, msg_type, flags)
        except _pyroute2().NetlinkError as exc:
            raise KernelError(what, exc.code, os.strerror(exc.code)) from None
        return answers

    async def _dump(self, what: str, msg: Any, msg_type: int) -> list[Any]:
        nl = _pyroute2()
        return await self._request(what, msg, msg_type, nl.NLM_F_REQUEST | nl.NLM_F_DUMP)

    async def _link_request(
        self, what: str, msg_type: int, flags: int, *, index: int = 0, **attrs: Any
    ) -> list[Any]:
        """An RTM_*LINK request as `ip link` sends it: the ifindex in the header and the
        attributes by pyroute2's names (IFLA_IFNAME, IFLA_MTU...)."""
        nl = _pyroute2()
        msg = nl.ifinfmsg()
        msg["index"] = index
        state = attrs.pop("state", None)
        if state is not None:  # IFF_UP set or cleared, and only it in the change mask
            msg["flags"] = nl.IFF_UP if state == "up" else 0
            msg["change"] = nl.IFF_UP
        msg["attrs"] = [[f"IFLA_{name.upper()}", value] for name, value in attrs.items()]
        return await self._request(what, msg, msg_type, nl.NLM_F_REQUEST | flags)

    # ---------------------------------------------------------------- links

    async def index(self, ifname: str) -> int:
        # An alias name (eth0:1) is a label on eth0: the kernel ignores the suffix too.
        base = ifname.split(":", 1)[0]
        known = self._indexes.get(base)
        if known is not None:
            return known
        if self.netns is None:
            # The socket is in this process's namespace: ask as `ip` does (if_nametoindex).
            try:
                found = [socket.if_nametoindex(base)]
            except OSError:
                found = []
        else:
            found = await self._lookup(base)
        if not found:
            raise KernelError(base, errno.ENODEV, "Cannot find device")
        self._indexes[base] = int(found[0])
        return int(found[0])

    async def _lookup(self, name: str) -> list[int]:
        """The index of link `name` in the socket's namespace (none: [])."""
        nl = _pyroute2()
        try:
            found = await self._link_request(name, nl.RTM_GETLINK, nl.NLM_F_ACK, ifname=name)
        except KernelError:
            return []
        return [int(msg["index"]) for msg in found[:1]]

    async def link(self, ifname: str) -> LinkInfo:
        nl = _pyroute2()
        index = await self.index(ifname)
        (msg,) = await self._link_request(ifname, nl.RTM_GETLINK, nl.NLM_F_ACK, index=index)
        return _link_info(msg)

    async def links(self) -> list[LinkInfo]:
        nl = _pyroute2()
        return [_link_info(m) for m in await self._dump("links", nl.ifinfmsg(), nl.RTM_GETLINK)]

    async def _names(self) -> dict[int, str]:
        return {link.index: link.name for link in await self.links()}

    async def set_link(
        self,
        ifname: str,
        *,
        up: bool | None = None,
        mtu: int | None = None,
        mac: str | None = None,
        alias: str | None = None,
        before: LinkInfo | None = None,
    ) -> LinkInfo:
        """Change a link as `ip link set` does; return how it was before (`before`, when
        the caller knows it, is not read again).

        An up/down state, MTU or alias the link already has is not sent again (a second
        stanza's `ip link set dev eth0 up`): the kernel would do nothing with it. A MAC
        address always is: the kernel refuses a change on a running link of most drivers,
        even to the same address, and so must ifvip."""
        if before is None:
            before = await self.link(ifname)
        changes: dict[str, Any] = {}
        if mtu is not None and mtu != before.mtu:
            changes["mtu"] = mtu
        if mac is not None:
            changes["address"] = mac
        if alias is not None and alias != before.alias:
            changes["ifalias"] = alias
        if up is not None and up != before.up:
            changes["state"] = "up" if up else "down"  # IFF_UP in the change mask only then
        if changes:
            nl = _pyroute2()
            await self._link_request(
                f"set link {ifname}", nl.RTM_NEWLINK, nl.NLM_F_ACK, index=before.index, **changes
            )
        return before

    # ---------------------------------------------------------------- addresses

    async def addresses(
        self, ifname: str | None = None, family: int | None = None
    ) -> list[AddressInfo]:
        index = None if ifname is None else await self.index(ifname)
        names = await self._names()
        nl = _pyroute2()
        query = nl.ifaddrmsg()
        query["family"] = family or 0
        found = [
            _address_info(m, names) for m in await self._dump("addresses", query, nl.RTM_GETADDR)
        ]
        return [
            a
            for a in found
            if (index is None or a.index == index) and (family is None or a.family == family)
        ]

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
        proto: int | None = None,
    ) -> None:
        """`ip addr add|replace ADDRESS dev IFNAME [label L] [broadcast B] [peer P] ...
        [proto P]`."""
        for retry in (False, True):
            request = await self.address_message(
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
                proto=proto,
            )
            try:
                await self._one(request)
                return
            except KernelError as exc:
                if retry or not self._made_anew(ifname, exc):
                    raise

    async def del_address(self, ifname: str, address: Address, *, peer: str | None = None) -> None:
        for retry in (False, True):
            try:
                await self._one(await self.address_message("del", ifname, address, peer=peer))
                return
            except KernelError as exc:
                if retry or not self._made_anew(ifname, exc):
                    raise

    def _made_anew(self, ifname: str, error: KernelError) -> bool:
        """ENODEV for a cached index: the link may have been deleted and made again under
        its name (a NIC reset, a hot-plug); forget the index, so the caller asks once more."""
        base = ifname.split(":", 1)[0]
        return error.errno == errno.ENODEV and self._indexes.pop(base, None) is not None

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
        proto: int | None = None,
    ) -> Request:
        """The request `ip addr add|replace|del` sends (`verb`), for `batch()`.

        `address` may be `ADDR/PREFIX` text (read without ipaddress: a thousand of them
        in one ifup add up). As iproute2 does: IFA_LOCAL is the address and IFA_ADDRESS the
        peer (or the address again), with the peer's prefix length when there is one; an
        IPv4 address gets the interface's name as label unless given one.
        """
        nl = _pyroute2()
        family, local, prefixlen = _cidr(address)
        remote = local
        if peer is not None:
            peer_family, remote, prefixlen = _cidr(peer)
            if peer_family != family:
                raise ValueError(f"peer {peer} is not of the family of {address}")
        adding = verb in ("add", "replace")
        msg = nl.ifaddrmsg()
        msg["family"] = family
        msg["prefixlen"] = prefixlen
        msg["flags"] = IFA_F_NODAD if nodad and adding else 0
        msg["scope"] = scope or 0
        msg["index"] = await self.index(ifname)
        attrs: list[list[Any]] = [["IFA_LOCAL", local], ["IFA_ADDRESS", remote]]
        if adding:
            if family == AF_INET:
                attrs.append(["IFA_LABEL", label if label is not None else ifname])
                if broadcast is not None:
                    attrs.append(["IFA_BROADCAST", str(ipaddress.IPv4Address(broadcast))])
            if preferred is not None or valid is not None:
                cacheinfo = {
                    "ifa_preferred": INFINITY_LIFE if preferred is None else preferred,
                    "ifa_valid": INFINITY_LIFE if valid is None else valid,
                    "cstamp": 0,
                    "tstamp": 0,
                }
                attrs.append(["IFA_CACHEINFO", cacheinfo])
            if proto is not None:  # who added it (IFA_PROTO, Linux 6.1): `ip addr show proto P`
                attrs.append(["IFA_PROTO", proto])
        msg["attrs"] = attrs
        if verb == "add":
            kind, flags = nl.RTM_NEWADDR, nl.NLM_F_CREATE | nl.NLM_F_EXCL
        elif verb == "replace":
            kind, flags = nl.RTM_NEWADDR, nl.NLM_F_CREATE | nl.NLM_F_REPLACE
        elif verb == "del":
            kind, flags = nl.RTM_DELADDR, 0
        else:
            raise ValueError(f"unknown address command {verb!r}")
        return Request(f"{verb} address {address} dev {ifname}", msg, kind, flags)

    # ---------------------------------------------------------------- routes and rules

    async def add_route(self, route: Route, *, command: str = "add") -> None:
        """`ip route add|replace ROUTE` (`command`)."""
        await self._one(await self.route_message(route, command))

    async def del_route(self, route: Route) -> None:
        await self._one(await self.route_message(route, "del"))

    async def route_message(self, route: Route, command: str = "add") -> Request:
        """The request `ip route add|replace|del` sends, for `batch()`.

        As iproute2: the table both in the header (when it fits) and as RTA_TABLE, and a
        delete matches any protocol and scope, and any type unless one was given.
        """
        nl = _pyroute2()
        if command == "del":
            proto, scope = 0, RT_SCOPE_NOWHERE
            kind_of = 0 if route.type == "unicast" else _TYPES[route.type]
        else:
            proto, scope, kind_of = route.proto, route.effective_scope(), _TYPES[route.type]
        table = route.table
        msg = nl.rtmsg()
        msg["family"] = route.family
        msg["dst_len"] = 0 if route.dst is None else route.dst.prefixlen
        msg["table"] = table if table < 256 else 0
        msg["proto"] = proto
        msg["scope"] = scope
        msg["type"] = kind_of
        msg["flags"] = RTNH_F_ONLINK if route.onlink else 0
        attrs: list[list[Any]] = [["RTA_TABLE", table]]
        if route.dst is not None and route.dst.prefixlen:
            attrs.append(["RTA_DST", str(route.dst.network_address)])
        if route.gateway is not None:
            attrs.append(["RTA_GATEWAY", str(ipaddress.ip_address(route.gateway))])
        if route.dev is not None:
            attrs.append(["RTA_OIF", await self.index(route.dev)])
        if route.metric is not None:
            attrs.append(["RTA_PRIORITY", route.metric])
        if route.src is not None:
            attrs.append(["RTA_PREFSRC", str(ipaddress.ip_address(route.src))])
        msg["attrs"] = attrs
        if command == "del":
            kind, flags = nl.RTM_DELROUTE, 0
        elif command == "replace":
            kind, flags = nl.RTM_NEWROUTE, nl.NLM_F_CREATE | nl.NLM_F_REPLACE
        elif command == "add":
            kind, flags = nl.RTM_NEWROUTE, nl.NLM_F_CREATE | nl.NLM_F_EXCL
        else:
            raise ValueError(f"unknown route command {command!r}")
        return Request(f"{command} route {_route_text(route)}", msg, kind, flags)

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
        names = await self._names()
        routes = []
        for found in await self.routes(family):
            flags = int(found.get("flags", 0))
            if flags & RTM_F_CLONED:
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
                    onlink=bool(flags & RTNH_F_ONLINK),
                    type=_ROUTE_TYPE_NAMES.get(int(found.get("type", 1)), "unicast"),
                )
            )
        return routes

    async def routes(self, family: int, table: int | None = None) -> list[dict[str, Any]]:
        """The routes of `family` (of `table`, or all) as flat dicts of pyroute2's names."""
        nl = _pyroute2()
        query = nl.rtmsg()
        query["family"] = family
        routes = [dict(_flatten(m)) for m in await self._dump("routes", query, nl.RTM_GETROUTE)]
        if table is None:
            return routes
        return [r for r in routes if (r.get("RTA_TABLE") or r.get("table")) == table]

    async def add_rule(self, rule: Rule) -> None:
        await self._one(self.rule_message(rule, "add"))

    async def del_rule(self, rule: Rule) -> None:
        await self._one(self.rule_message(rule, "del"))

    def rule_message(self, rule: Rule, command: str = "add") -> Request:
        """The request `ip rule add|del` sends, for `batch()`.

        Without a priority none is sent, so the kernel picks one below the last rule's,
        as it does for `ip rule add` (pyroute2's `rule()` would send 32000).
        """
        nl = _pyroute2()
        table = rule.table
        msg = nl.fibmsg()
        msg["family"] = rule.family
        msg["dst_len"] = 0 if rule.dst is None else rule.dst.prefixlen
        msg["src_len"] = 0 if rule.src is None else rule.src.prefixlen
        msg["table"] = table if table < 256 else 0
        msg["action"] = FR_ACT_TO_TBL
        attrs: list[list[Any]] = []
        if table >= 256:
            attrs.append(["FRA_TABLE", table])
        if rule.priority is not None:
            attrs.append(["FRA_PRIORITY", rule.priority])
        if rule.src is not None:
            attrs.append(["FRA_SRC", str(rule.src.network_address)])
        if rule.dst is not None:
            attrs.append(["FRA_DST", str(rule.dst.network_address)])
        if rule.iifname is not None:
            attrs.append(["FRA_IIFNAME", rule.iifname])
        if rule.oifname is not None:
            attrs.append(["FRA_OIFNAME", rule.oifname])
        if rule.fwmark is not None:
            attrs.append(["FRA_FWMARK", rule.fwmark])
        msg["attrs"] = attrs
        if command == "del":
            return Request("delete rule", msg, nl.RTM_DELRULE, 0)
        if command == "add":
            return Request("add rule", msg, nl.RTM_NEWRULE, nl.NLM_F_CREATE | nl.NLM_F_EXCL)
        raise ValueError(f"unknown rule command {command!r}")

    # ---------------------------------------------------------------- batches

    async def _one(self, request: Request) -> None:
        (error,) = await self.batch([request])
        if error is not None:
            raise error

    async def batch(self, requests: Sequence[Request]) -> list[KernelError | None]:
        """Send `requests` in order, many per send; one result per request.

        The kernel handles the requests of one socket one after the other, as if they came
        one by one (a failure does not stop the ones after it), so this only saves the
        round trips. Only the last request of each send asks for an acknowledgement: the
        kernel answers failures anyway, and once the last answer is in, every earlier
        failure's answer is queued under its own sequence number.

        The kernel does the work of a send inside the send call, so each send runs in a
        worker thread while this one encodes the next chunk; sends stay in order, and at
        most two chunks' answers are outstanding (they fit the socket's receive buffer).
        """
        if not requests:
            return []
        ipr = await self._pyroute()
        results: list[KernelError | None] = []
        encoded: list[list[int]] = []  # every chunk's sequence numbers, to free at the end
        try:
            if len(requests) <= _BATCH_SIZE:  # one send: nothing to overlap it with
                data, seqs = self._encode(ipr, requests)
                encoded.append(seqs)
                ipr.send(data)
                results.extend(await self._answers(ipr, requests, seqs))
            else:
                await self._pipelined(ipr, requests, results, encoded)
        finally:
            queues = ipr.msg_queue.queues
            for seq in (seq for seqs in encoded for seq in seqs if seq in queues):
                ipr.msg_queue.free_tag(seq)
        return results

    async def _pipelined(
        self,
        ipr: Any,
        requests: Sequence[Request],
        results: list[KernelError | None],
        encoded: list[list[int]],
    ) -> None:
        """batch() for more than one send: chunk N+1 is encoded while the kernel works
        through chunk N in a worker thread."""
        sock = ipr.socket  # pyroute2's socket state is per thread: take it from this one
        loop = asyncio.get_running_loop()
        sending: asyncio.Future[Any] | None = None
        previous: tuple[Sequence[Request], list[int]] | None = None  # sent, answers unread
        try:
            for start in range(0, len(requests), _BATCH_SIZE):
                chunk = requests[start : start + _BATCH_SIZE]
                data, seqs = self._encode(ipr, chunk)
                encoded.append(seqs)
                if sending is not None:
                    await sending  # the previous send is done: the order is kept
                sending = loop.run_in_executor(None, sock.send, data)
                if previous is not None:
                    results.extend(await self._answers(ipr, *previous))
                previous = (chunk, seqs)
            assert sending is not None and previous is not None
            await sending
            results.extend(await self._answers(ipr, *previous))
        finally:
            if sending is not None and not sending.done():  # cancelled mid-send
                with contextlib.suppress(BaseException):
                    await asyncio.shield(sending)

    def _encode(self, ipr: Any, chunk: Sequence[Request]) -> tuple[bytes, list[int]]:
        """One send's worth of requests as bytes, each with an answer queue of its own."""
        nl = _pyroute2()
        data = bytearray()
        seqs: list[int] = []
        pid = ipr.epid or os.getpid()
        for position, request in enumerate(chunk):
            flags = nl.NLM_F_REQUEST | request.flags
            if position == len(chunk) - 1:
                flags |= nl.NLM_F_ACK
            seq = self._sequence()
            header = request.msg["header"]
            header["type"] = request.type
            header["flags"] = flags
            header["sequence_number"] = seq
            header["pid"] = pid
            request.msg.reset()
            request.msg.encode()
            ipr.msg_queue.ensure_tag(seq)
            seqs.append(seq)
            data += request.msg.data
        return bytes(data), seqs

    def _sequence(self) -> int:
        """The next sequence number of a batched request.

        Batches number their requests from a range of their own, above the 0xff-0xffff
        that pyroute2's own calls allocate from on the same socket, so the two never meet;
        pyroute2's allocator is not used for them (its per-request bookkeeping costs more
        than encoding a request).
        """
        self._seq = self._seq + 1 if self._seq < _SEQ_LAST else _SEQ_FIRST
        return self._seq

    async def _answers(
        self, ipr: Any, chunk: Sequence[Request], seqs: list[int]
    ) -> list[KernelError | None]:
        """The answers to one send: the last request's acknowledgement, then whatever
        pyroute2's queue holds for each earlier one (an error, or nothing: it was done).
        Each answer's queue is freed once read; batch() frees what is left."""
        queues = ipr.msg_queue.queues  # pyroute2's per-sequence-number answer queues
        try:
            async with asyncio.timeout(_BATCH_TIMEOUT):
                last = await self._answer(ipr, chunk[-1], seqs[-1])
        except TimeoutError:  # the answers were lost (they cannot be with _BATCH_SIZE)
            timeout = KernelError("netlink", errno.ETIMEDOUT, "no answer from the kernel")
            return [timeout] * len(seqs)
        answers: list[KernelError | None] = []
        for request, seq in zip(chunk[:-1], seqs[:-1], strict=True):
            if queues[seq].empty():
                answers.append(None)
            else:
                answers.append(await self._answer(ipr, request, seq))
        answers.append(last)
        return answers

    @staticmethod
    async def _answer(ipr: Any, request: Request, seq: int) -> KernelError | None:
        try:
            async for _ in ipr.get(msg_seq=seq):
                pass
        except _pyroute2().NetlinkError as exc:
            return KernelError(request.what, exc.code, os.strerror(exc.code))
        return None

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
        chosen = [
            info
            for info in await self.addresses(ifname, family)
            if info.ifname == ifname.split(":", 1)[0]
            and (scope is None or info.scope == scope)
            and (not mngtmpaddr or info.flags & IFA_F_MANAGETEMPADDR)
        ]
        requests = [
            await self.address_message("del", ifname, info.address, peer=info.peer)
            for info in chosen
        ]
        gone = []
        for info, error in zip(chosen, await self.batch(requests), strict=True):
            if error is None:
                gone.append(info)
            elif error.errno != errno.EADDRNOTAVAIL:  # a secondary went with its primary
                raise error
        return gone

    # ---------------------------------------------------------------- virtual links

    async def add_link(self, ifname: str, kind: str, **attrs: Any) -> None:
        """Create a link of `kind` (gre, ipip, sit, ip6gre, ip6tnl, vlan...).

        pyroute2's AsyncIPRoute turns the keyword attributes (`gre_remote`, `vlan_id`,
        `link`...) into the kind's nested IFLA_INFO_DATA; it is imported for this only
        (a tunnel or VLAN stanza), on a socket of its own in the same namespace."""
        from pyroute2.iproute.linux import AsyncIPRoute  # noqa: PLC0415 - rarely needed

        request: dict[str, Any] = {"ifname": ifname, "kind": kind}
        for key, value in attrs.items():
            if value is not None:
                request[key] = value
        self.forget_indexes()
        ipr = AsyncIPRoute(netns=self.netns) if self.netns else AsyncIPRoute()
        try:
            await ipr.setup_endpoint()
            await ipr.link("add", **request)
        except _pyroute2().NetlinkError as exc:
            what = f"add link {ifname} type {kind}"
            raise KernelError(what, exc.code, os.strerror(exc.code)) from None
        finally:
            ipr.close()

    async def rename_link(self, ifname: str, new: str) -> None:
        nl = _pyroute2()
        index = await self.index(ifname)
        self.forget_indexes()
        what = f"rename {ifname} to {new}"
        await self._link_request(what, nl.RTM_NEWLINK, nl.NLM_F_ACK, index=index, ifname=new)

    async def del_link(self, ifname: str) -> None:
        nl = _pyroute2()
        index = await self.index(ifname)
        self.forget_indexes()
        await self._link_request(f"delete link {ifname}", nl.RTM_DELLINK, nl.NLM_F_ACK, index=index)


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
        flags=int(msg.get("flags") or 0),  # IFA_FLAGS (all 32 bits) if the kernel sent it
        broadcast=msg.get("broadcast"),
        peer=peer,
        preferred=int(cache.get("ifa_preferred", INFINITY_LIFE)) if cache else INFINITY_LIFE,
        valid=int(cache.get("ifa_valid", INFINITY_LIFE)) if cache else INFINITY_LIFE,
        index=int(msg["index"]),
        proto=int(msg.get("proto") or 0),
    )


def _cidr(address: Address | str) -> tuple[int, str, int]:
    """(family, address text, prefix length) of an interface address or its text."""
    if not isinstance(address, str):
        family = AF_INET6 if address.version == 6 else AF_INET
        return family, str(address.ip), address.network.prefixlen
    text, _, prefix = address.partition("/")
    family = AF_INET6 if ":" in text else AF_INET
    try:
        socket.inet_pton(socket.AF_INET6 if family == AF_INET6 else socket.AF_INET, text)
        length = int(prefix) if prefix else (128 if family == AF_INET6 else 32)
    except (OSError, ValueError):
        raise ValueError(f"invalid address {address!r}") from None
    if not 0 <= length <= (128 if family == AF_INET6 else 32):
        raise ValueError(f"invalid prefix length in {address!r}")
    return family, text, length


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
