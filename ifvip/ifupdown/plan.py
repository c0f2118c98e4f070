"""Plans: the ordered operations an ifup or ifdown carries out, as pure data.

The planner (`methods.py`, `hooks.py`) turns stanzas into `Op`s; an executor carries them
out (`executor.NetlinkExecutor` on the kernel, `DryRunExecutor` below for `-n`). This module
is the contract between the two halves and imports nothing that touches the system.

Contract for executors (ifvip/ifupdown/executor.py, engine.py):

- Every Op is a frozen, keyword-only dataclass. Common fields:
  `origin` (the stanza line it came from, `ifvip.interfaces.model.Origin`, or None),
  `text` (the command line exactly as ifupdown prints it, when there is one: the expanded
  method template or the hook line as written; None for ops ifvip made up, such as
  inverses), `ignore_failure` (ifupdown's `-` prefix, `|| true`, `2>/dev/null` idioms:
  a failure of this op is not a failure of the stanza).
- `render()` is the equivalent command: `text` when set, else a canonical `ip ...` line.
  `-n` prints exactly this, one line per op.
- `apply(op)` returns the op *as applied*: ops with a `previous` field get it filled with
  what the kernel had before (old sysctl value, old MTU/MAC/up state, the route `replace`
  overwrote, ...). The journal stores `returned_op.to_dict()`; `op_from_dict()` reads it
  back. `inverse()` of the returned op is the op that restores the state before it; None
  means there is nothing to undo (a Shell line, a wait, a no-op, or a change that turned
  out to change nothing).
- Field conventions: interface names are the kernel device (`ifname`; an alias stanza
  `eth0:1` gives `ifname="eth0"`, `label="eth0:1"`); addresses are `ADDR/PREFIX` strings
  (always with the prefix); route `dst` None is the default route; `family` is 4 or 6;
  `table` is a number (None: main); `proto` a number (3 = boot, what `ip route add` gives);
  `scope` a name (`global`, `site`, `link`, `host`) or a number as text, None meaning the
  kernel's (for routes: `ip route`'s) choice.
- `Shell`, `RunParts`, `StartDhcp` and `StopDhcp` run under `/bin/sh -c` with exactly
  `env` as the environment (built by `env.py`); `env` is never shown in repr or logs.
- `NoOp` does nothing; it exists so that `-n` prints what ifupdown prints (its blank lines
  for vanished optional commands, `modprobe`, ...).

A `Plan` is one target (`PHYS=LOGICAL`, one direction): the link-level steps, then each
matching stanza with its `Step`s (an op and the `PHASE` it runs in) in ifupdown's order,
then the link-level steps that follow on ifdown.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Iterator, Mapping
from dataclasses import field
from typing import IO, Any, ClassVar, Final

from ifvip.interfaces.model import Origin
from ifvip.record import record

Env = tuple[tuple[str, str], ...]

RTPROT_BOOT: Final = 3
RT_TABLE_MAIN: Final = 254
PROTOCOLS: Final = {"redirect": 1, "kernel": 2, "boot": 3, "static": 4, "ra": 9, "dhcp": 16}
ROUTE_TYPES: Final = frozenset(
    {"unicast", "local", "broadcast", "multicast", "throw", "unreachable", "prohibit", "blackhole"}
)

# Phases as ifupdown's PHASE variable names them (specs/ifupdown.md §3-4).
PRE_UP: Final = "pre-up"
POST_UP: Final = "post-up"
PRE_DOWN: Final = "pre-down"
POST_DOWN: Final = "post-down"


def _family_of(address: str) -> int:
    return 6 if ":" in address.split("/", maxsplit=1)[0] else 4


def _words(*parts: str | None) -> str:
    return " ".join(p for p in parts if p)


def _opt(name: str, value: object) -> str | None:
    return None if value is None else f"{name} {value}"


@record
class Op:
    """One operation; see the module docstring for the contract."""

    origin: Origin | None = field(default=None, compare=False)
    text: str | None = field(default=None, compare=False)
    ignore_failure: bool = False
    quiet: bool = False  # ifupdown -n does not print it (settle-dad.sh): dry-run skips it

    _registry: ClassVar[dict[str, type[Op]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Op._registry[cls.__name__] = cls

    def render(self) -> str:
        return self.text if self.text is not None else self.canonical()

    def canonical(self) -> str:
        """The equivalent command in canonical form (used when there is no `text`)."""
        raise NotImplementedError

    def inverse(self) -> Op | None:
        return None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": type(self).__name__}
        for f in dataclasses.fields(self):
            out[f.name] = _encode(getattr(self, f.name))
        return out

    def where(self) -> str:
        """`path:line` of the origin for messages (`path:line: up ip route ...: error`)."""
        return f"{self.origin.path}:{self.origin.line}" if self.origin else "ifvip"


@record(kw_only=False)
class LinkSettings:
    """A link's settings as SetLink found them (filled by the executor)."""

    up: bool
    mtu: int
    address: str
    alias: str | None = None


# ---------------------------------------------------------------- addresses


@record
class _AddressOp(Op):
    """The fields `ip addr add` and `ip addr del` share; each is the other's inverse."""

    ifname: str
    address: str
    peer: str | None = None
    broadcast: str | None = None
    scope: str | None = None
    label: str | None = None
    nodad: bool = False
    preferred_lft: int | None = None  # seconds; None: forever
    valid_lft: int | None = None

    @property
    def family(self) -> int:
        return _family_of(self.address)

    def _twin(self, cls: type[AddAddress | DelAddress]) -> Op:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(_AddressOp)}
        values.update(text=None, ignore_failure=False)
        return cls(**values)


@record
class AddAddress(_AddressOp):
    """`ip addr add ADDRESS/PREFIX [peer P] [broadcast B] [scope S] dev IFNAME [label L] ...`."""

    def canonical(self) -> str:
        return _address_command(self, "add")

    def inverse(self) -> Op | None:
        return self._twin(DelAddress)


@record
class DelAddress(_AddressOp):
    """`ip addr del ...`; the executor may fill the flags it found, so inverse() re-adds it."""

    def canonical(self) -> str:
        return _address_command(self, "del")

    def inverse(self) -> Op | None:
        return self._twin(AddAddress)


def _address_command(op: AddAddress | DelAddress, verb: str) -> str:
    return _words(
        f"ip -{op.family} addr {verb} {op.address}",
        _opt("peer", op.peer),
        _opt("broadcast", op.broadcast),
        _opt("scope", op.scope),
        f"dev {op.ifname}",
        _opt("label", op.label),
        "nodad" if op.nodad and verb == "add" else None,
        _opt("preferred_lft", op.preferred_lft if verb == "add" else None),
        _opt("valid_lft", op.valid_lft if verb == "add" else None),
    )


@record
class FlushAddresses(Op):
    """`ip [-4|-6] addr flush dev IFNAME [scope S] [mngtmpaddr]`; nothing to undo."""

    ifname: str
    family: int | None = None
    scope: str | None = None
    mngtmpaddr: bool = False

    def canonical(self) -> str:
        return _words(
            f"ip -{self.family}" if self.family else "ip",
            f"addr flush dev {self.ifname}",
            _opt("scope", self.scope),
            "mngtmpaddr" if self.mngtmpaddr else None,
        )


@record
class WaitDad(Op):
    """Wait until `address` (None: a link-local address) is no longer tentative.

    settle-dad.sh / wait-for-ll6.sh done natively: at most `attempts` polls `interval`
    seconds apart; a DAD failure or a timeout fails the stanza.
    """

    ifname: str
    address: str | None
    attempts: int = 60
    interval: float = 0.1

    def canonical(self) -> str:
        if self.address is None:
            return "/lib/ifupdown/wait-for-ll6.sh"
        return "/lib/ifupdown/settle-dad.sh"


# ---------------------------------------------------------------- routes and rules


@record
class AddRoute(Op):
    """`ip [-6] route add|replace DST [via GW] [dev DEV] [table T] [metric M] ...`.

    With `replace`, the executor fills `previous` with the route it overwrote (None when
    there was none), so inverse() puts that one back instead of deleting.
    """

    family: int
    dst: str | None = None  # CIDR; None: default
    gateway: str | None = None
    dev: str | None = None
    table: int | None = None
    metric: int | None = None
    src: str | None = None
    onlink: bool = False
    proto: int = RTPROT_BOOT
    scope: str | None = None
    type: str = "unicast"
    replace: bool = False
    previous: AddRoute | None = None

    def canonical(self) -> str:
        return _route_command(self, "replace" if self.replace else "add")

    def inverse(self) -> Op | None:
        if self.previous is not None:
            return dataclasses.replace(self.previous, replace=True, text=None, previous=None)
        return DelRoute(**_route_fields(self), origin=self.origin)


@record
class DelRoute(Op):
    """`ip [-6] route del ...`; inverse() re-adds the route as described."""

    family: int
    dst: str | None = None
    gateway: str | None = None
    dev: str | None = None
    table: int | None = None
    metric: int | None = None
    src: str | None = None
    onlink: bool = False
    proto: int = RTPROT_BOOT
    scope: str | None = None
    type: str = "unicast"

    def canonical(self) -> str:
        return _route_command(self, "del")

    def inverse(self) -> Op | None:
        return AddRoute(**_route_fields(self), origin=self.origin)


def _route_fields(op: AddRoute | DelRoute) -> dict[str, Any]:
    names = [f.name for f in dataclasses.fields(DelRoute) if f.name not in Op.__dataclass_fields__]
    return {name: getattr(op, name) for name in names}


def _route_command(op: AddRoute | DelRoute, verb: str) -> str:
    proto = {v: k for k, v in PROTOCOLS.items()}.get(op.proto, str(op.proto))
    return _words(
        f"ip -{op.family} route {verb}",
        None if op.type == "unicast" else op.type,
        op.dst or "default",
        _opt("via", op.gateway),
        _opt("dev", op.dev),
        _opt("table", op.table if op.table not in (None, RT_TABLE_MAIN) else None),
        _opt("metric", op.metric),
        _opt("src", op.src),
        "onlink" if op.onlink else None,
        _opt("proto", proto if op.proto != RTPROT_BOOT else None),
        _opt("scope", op.scope),
    )


@record
class AddRule(Op):
    """`ip [-6] rule add [priority P] [from SRC] [to DST] [iif I] [oif O] [fwmark M] table T`."""

    family: int
    priority: int | None = None
    src: str | None = None  # CIDR
    dst: str | None = None
    table: int = RT_TABLE_MAIN
    iifname: str | None = None
    oifname: str | None = None
    fwmark: int | None = None

    def canonical(self) -> str:
        return _rule_command(self, "add")

    def inverse(self) -> Op | None:
        return DelRule(**_rule_fields(self), origin=self.origin)


@record
class DelRule(Op):
    family: int
    priority: int | None = None
    src: str | None = None
    dst: str | None = None
    table: int = RT_TABLE_MAIN
    iifname: str | None = None
    oifname: str | None = None
    fwmark: int | None = None

    def canonical(self) -> str:
        return _rule_command(self, "del")

    def inverse(self) -> Op | None:
        return AddRule(**_rule_fields(self), origin=self.origin)


def _rule_fields(op: AddRule | DelRule) -> dict[str, Any]:
    names = [f.name for f in dataclasses.fields(DelRule) if f.name not in Op.__dataclass_fields__]
    return {name: getattr(op, name) for name in names}


def _rule_command(op: AddRule | DelRule, verb: str) -> str:
    return _words(
        f"ip -{op.family} rule {verb}",
        _opt("priority", op.priority),
        _opt("from", op.src),
        _opt("to", op.dst),
        _opt("iif", op.iifname),
        _opt("oif", op.oifname),
        _opt("fwmark", None if op.fwmark is None else hex(op.fwmark)),
        f"table {op.table}",
    )


# ---------------------------------------------------------------- links and sysctls


@record
class SetLink(Op):
    """`ip link set dev IFNAME [mtu M] [address MAC] [alias A] [up|down]`.

    The executor fills `previous` with the link's settings before the change; inverse()
    then restores exactly the fields this op changed (None if it changed nothing).
    """

    ifname: str
    up: bool | None = None
    mtu: int | None = None
    address: str | None = None
    alias: str | None = None
    previous: LinkSettings | None = None

    def canonical(self) -> str:
        return _words(
            f"ip link set dev {self.ifname}",
            _opt("mtu", self.mtu),
            _opt("address", self.address),
            None if self.alias is None else f'alias "{self.alias}"',
            None if self.up is None else ("up" if self.up else "down"),
        )

    def inverse(self) -> Op | None:
        prev = self.previous
        if prev is None:
            return None
        changes: dict[str, Any] = {}
        if self.up is not None and self.up != prev.up:
            changes["up"] = prev.up
        if self.mtu is not None and self.mtu != prev.mtu:
            changes["mtu"] = prev.mtu
        if self.address is not None and self.address.lower() != prev.address.lower():
            changes["address"] = prev.address
        if self.alias is not None and self.alias != (prev.alias or ""):
            changes["alias"] = prev.alias or ""
        if not changes:
            return None
        return SetLink(ifname=self.ifname, origin=self.origin, **changes)


@record
class SetInet6Mtu(Op):
    """inet6's MTU step: the link MTU if it is lower than `mtu`, else the IPv6 MTU sysctl.

    The executor fills `via` ("link" or "sysctl") and `previous` (the old value as text).
    """

    ifname: str
    mtu: int
    via: str | None = None
    previous: str | None = None

    def canonical(self) -> str:
        dev = self.ifname
        sysctl_dev = dev.replace(".", "/")
        return (
            f'if [ "$(cat /sys/class/net/{dev}/mtu)" -lt {self.mtu} ]; then ip link set dev '
            f"{dev} mtu {self.mtu}; else sysctl -q -e -w net.ipv6.conf.{sysctl_dev}.mtu="
            f"{self.mtu}; fi"
        )

    def inverse(self) -> Op | None:
        if self.previous is None or self.previous == str(self.mtu):
            return None
        if self.via == "link":
            return SetLink(ifname=self.ifname, mtu=int(self.previous), origin=self.origin)
        if self.via == "sysctl":
            name = f"net.ipv6.conf.{self.ifname.replace('.', '/')}.mtu"
            return WriteSysctl(name=name, value=self.previous, origin=self.origin)
        return None


@record
class WriteSysctl(Op):
    """`sysctl -w NAME=VALUE`. `name` is sysctl's dotted form (a `/` stands for a dot
    inside a component, e.g. `net.ipv6.conf.eth0/5.accept_ra`); the executor fills
    `previous` with the old value, and inverse() writes it back."""

    name: str
    value: str
    previous: str | None = None

    def canonical(self) -> str:
        return f"sysctl -w {self.name}={self.value}"

    def inverse(self) -> Op | None:
        if self.previous is None or self.previous == self.value:
            return None
        return WriteSysctl(name=self.name, value=self.previous, origin=self.origin)


def sysctl_name(path: str) -> str:
    """`/proc/sys/net/ipv6/conf/eth0.5/accept_ra` → `net.ipv6.conf.eth0/5.accept_ra`."""
    parts = path.removeprefix("/proc/sys/").strip("/").split("/")
    return ".".join(part.replace(".", "/") for part in parts)


TUNNEL_KINDS: Final = {
    "gre": "gre",
    "ipip": "ipip",
    "sit": "sit",
    "ip6gre": "ip6gre",
    "ip6ip6": "ip6tnl",
    "ipip6": "ip6tnl",
    "vti": "vti",
    "vlan": "vlan",
}


@record
class AddLink(Op):
    """Create a tunnel (`ip [-6] tunnel add IFNAME mode MODE remote R [local L] [ttl T]
    [encaplimit E]`) or a VLAN (`ip link add link LINK name IFNAME type vlan id N`).

    `mode` is ifupdown's word (gre, ipip, sit, ip6gre, ip6ip6, ipip6, vlan); `kind` is the
    kernel's link kind for it. `remote` "any" (6to4) means no remote.
    """

    ifname: str
    mode: str
    remote: str | None = None
    local: str | None = None
    ttl: int | None = None
    encaplimit: str | None = None
    link: str | None = None
    vlan_id: int | None = None
    # ifupdown's VLAN step: do nothing when `link` is missing or `ifname` exists already.
    # The executor fills `created` (False: it did nothing, so there is nothing to undo).
    exist_ok: bool = False
    created: bool | None = None

    @property
    def kind(self) -> str:
        return TUNNEL_KINDS.get(self.mode, self.mode)

    def canonical(self) -> str:
        if self.mode == "vlan":
            return f"ip link add link {self.link} name {self.ifname} type vlan id {self.vlan_id}"
        six = "-6 " if self.mode in ("ip6gre", "ip6ip6", "ipip6") else ""
        return _words(
            f"ip {six}tunnel add {self.ifname} mode {self.mode}",
            _opt("remote", self.remote),
            _opt("local", self.local),
            _opt("ttl", self.ttl),
            _opt("encaplimit", self.encaplimit),
        )

    def inverse(self) -> Op | None:
        if self.created is False:
            return None
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(DelLink)}
        values.update(text=None, ignore_failure=False)
        return DelLink(**values)


@record
class DelLink(Op):
    """`ip link del IFNAME` (`ip tunnel del`); with `mode` known, inverse() recreates it."""

    ifname: str
    mode: str | None = None
    remote: str | None = None
    local: str | None = None
    ttl: int | None = None
    encaplimit: str | None = None
    link: str | None = None
    vlan_id: int | None = None

    def canonical(self) -> str:
        return f"ip link del {self.ifname}"

    def inverse(self) -> Op | None:
        if self.mode is None:
            return None
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(DelLink)}
        values.update(text=None, ignore_failure=False, quiet=False)
        return AddLink(**values)


@record
class RenameLink(Op):
    """`ip link set IFNAME name NEW` (ifupdown's `rename`); inverse() renames it back."""

    ifname: str
    new: str

    def canonical(self) -> str:
        return f"ip link set {self.ifname} name {self.new}"

    def inverse(self) -> Op | None:
        return RenameLink(ifname=self.new, new=self.ifname, origin=self.origin)


# ---------------------------------------------------------------- processes


@record
class Shell(Op):
    """A hook line (or method command) run as `/bin/sh -c COMMAND` with exactly `env`."""

    command: str
    env: Env = field(default=(), repr=False)
    phase: str = POST_UP

    def canonical(self) -> str:
        return self.command


@record
class RunParts(Op):
    """`run-parts [--exit-on-error] [--verbose] DIRECTORY` with `env` (if-*.d scripts)."""

    directory: str
    env: Env = field(default=(), repr=False)
    phase: str = POST_UP
    exit_on_error: bool = True
    verbose: bool = False

    def canonical(self) -> str:
        return _words(
            "run-parts",
            "--exit-on-error" if self.exit_on_error else None,
            "--verbose" if self.verbose else None,
            self.directory,
        )


@record
class StartDhcp(Op):
    """Start the DHCP client ifupdown picks (`client`: dhclient, udhcpc, dhcpcd), by running
    `command` under /bin/sh; inverse() runs `stop_command` (release / kill)."""

    ifname: str
    family: int = 4
    client: str | None = None
    command: str
    stop_command: str | None = None
    env: Env = field(default=(), repr=False)

    def canonical(self) -> str:
        return self.command

    def inverse(self) -> Op | None:
        if self.stop_command is None:
            return None
        return StopDhcp(
            ifname=self.ifname,
            family=self.family,
            client=self.client,
            command=self.stop_command,
            env=self.env,
            origin=self.origin,
            ignore_failure=True,
        )


@record
class StopDhcp(Op):
    """Release the lease and stop the client (`command` under /bin/sh)."""

    ifname: str
    family: int = 4
    client: str | None = None
    command: str
    env: Env = field(default=(), repr=False)

    def canonical(self) -> str:
        return self.command


@record
class NoOp(Op):
    """Nothing to do: a line ifupdown prints (a blank, `modprobe ...`) that ifvip needs not run."""

    reason: str = ""

    def canonical(self) -> str:
        return ""


# ---------------------------------------------------------------- journal form


def _encode(value: Any) -> Any:
    if isinstance(value, Op):
        return value.to_dict()
    if isinstance(value, Origin):
        return {"path": value.path, "line": value.line, "col": value.col}
    if isinstance(value, LinkSettings):
        return {"link": dataclasses.asdict(value)}
    if isinstance(value, tuple):
        return [_encode(v) for v in value]
    return value


def _decode(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "origin":
        return Origin(value["path"], int(value["line"]), int(value.get("col", 1)))
    if isinstance(value, dict) and "op" in value:
        return op_from_dict(value)
    if isinstance(value, dict) and "link" in value:
        return LinkSettings(**value["link"])
    if isinstance(value, list):
        return tuple(_decode("", v) for v in value)
    return value


def op_from_dict(data: Mapping[str, Any]) -> Op:
    """The Op a `to_dict()` came from (raises ValueError on an unknown or malformed one)."""
    cls = Op._registry.get(str(data.get("op")))
    if cls is None:
        raise ValueError(f"unknown op {data.get('op')!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: _decode(k, v) for k, v in data.items() if k in names}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"malformed {cls.__name__}: {exc}") from None


# ---------------------------------------------------------------- plans


@record(kw_only=False)
class Step:
    """An op and the PHASE it runs in; `stage` names its place (`pre-up` lines,
    `if-pre-up.d`, `method`, `up` lines, `if-up.d`, `link`, ...)."""

    op: Op
    phase: str
    stage: str


@record(kw_only=False)
class StanzaPlan:
    """The steps of one stanza (`iface LOGICAL FAMILY METHOD`)."""

    logical: str
    family: str
    method: str
    origin: Origin | None
    steps: tuple[Step, ...]
    # What ifdown says about the stanza and goes on (ifupdown's `missing required
    # variable` when down): printed after `configuring interface`, without `ifdown: `.
    messages: tuple[str, ...] = ()


@record(kw_only=False)
class Plan:
    """One target in one direction: link steps, stanzas in file order, closing link steps."""

    physical: str
    logical: str
    mode: str  # "start" (ifup) or "stop" (ifdown)
    before: tuple[Step, ...] = ()
    stanzas: tuple[StanzaPlan, ...] = ()
    after: tuple[Step, ...] = ()

    def steps(self) -> Iterator[Step]:
        yield from self.before
        for stanza in self.stanzas:
            yield from stanza.steps
        yield from self.after

    def ops(self) -> Iterator[Op]:
        for step in self.steps():
            yield step.op

    def rewritten(self, change: Callable[[Step], Step | None]) -> Plan:
        """The plan with every step passed through `change` (None leaves the step out)."""

        def each(steps: tuple[Step, ...]) -> tuple[Step, ...]:
            return tuple(new for step in steps if (new := change(step)) is not None)

        return dataclasses.replace(
            self,
            before=each(self.before),
            stanzas=tuple(dataclasses.replace(s, steps=each(s.steps)) for s in self.stanzas),
            after=each(self.after),
        )


class DryRunExecutor:
    """`-n`: print each op's render() on its own line, change nothing."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    async def apply(self, op: Op) -> Op:
        if not op.quiet:
            self.stream.write(op.render() + "\n")
        return op


def prefix_of(netmask: str) -> int | None:
    """A netmask as ifupdown stores it (dotted quad or a length) → prefix length."""
    if netmask.isdigit():
        return int(netmask)
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen
    except ValueError:
        return None
