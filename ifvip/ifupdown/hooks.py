"""Hook lines and if-*.d directories as Ops; well-known commands are done natively.

ifupdown runs every `pre-up`/`up`/`down`/`post-down` line with `/bin/sh -c` in the
environment of `env.py` (a leading `-` ignores its failure). ifvip does the same, except
for the commands it understands *exactly*: `ip [-4|-6] addr|route|rule|link ...`, net-tools
`route add|del`, `echo V > /proc/sys/...` and `sysctl -w k=v`. Those become native Ops
(journaled, and undone by ifdown), after the expansions the shell would do: `$VAR` and
`${VAR}` from the hook's environment, field splitting of unquoted values, single and
simple double quotes. Anything else — pipes, `;`, `&&`, redirections other than the echo
form, command substitution, globbing, `${VAR:-x}`, unknown variables, an option ifvip does
not know — keeps the line a `Shell` op, so the shell does what it always did.

A native op renders as the original line: `-n` prints the hook as ifupdown does.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from ifvip.ifupdown.plan import (
    PROTOCOLS,
    ROUTE_TYPES,
    RT_TABLE_MAIN,
    AddAddress,
    AddRoute,
    AddRule,
    DelAddress,
    DelRoute,
    DelRule,
    Env,
    Op,
    RunParts,
    SetLink,
    Shell,
    WriteSysctl,
    sysctl_name,
)
from ifvip.interfaces.model import Origin

TABLES: Final = {"main": 254, "local": 255, "default": 253}
SCOPE_NAMES: Final = ("global", "universe", "site", "link", "host")
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPECIAL: Final = set("|&;<>()`\\*?[]#~{}!")
_IFNAME: Final = re.compile(r"[A-Za-z0-9_.@-]{1,15}")  # no ':' (an alias is not a device)


class NotExactError(Exception):
    """The line is not one ifvip understands exactly: it stays a Shell op."""


def run_parts(
    directory: str,
    *,
    env: Env,
    phase: str,
    exit_on_error: bool,
    verbose: bool,
    origin: Origin | None = None,
) -> RunParts:
    """`run-parts [--exit-on-error ][--verbose ]DIR`, as ifupdown prints and runs it."""
    return RunParts(
        directory=directory,
        env=env,
        phase=phase,
        exit_on_error=exit_on_error,
        verbose=verbose,
        origin=origin,
        ignore_failure=not exit_on_error,
    )


def hook_op(
    line: str,
    env: Env,
    phase: str,
    origin: Origin | None,
    rt_tables: Mapping[str, int] | None = None,
) -> Op:
    """The op for one hook line: native when understood exactly, else Shell."""
    ignore = line.startswith("-")
    command = line[1:] if ignore else line
    try:
        op = parse_command(command, dict(env), {**TABLES, **(rt_tables or {})})
    except NotExactError:
        return Shell(
            command=command,
            env=env,
            phase=phase,
            origin=origin,
            text=command,
            ignore_failure=ignore,
        )
    import dataclasses  # noqa: PLC0415

    return dataclasses.replace(
        op, text=command, origin=origin, ignore_failure=ignore or op.ignore_failure
    )


# ---------------------------------------------------------------- the shell subset


def words(command: str, env: Mapping[str, str]) -> list[str]:
    """Split and expand a simple command as /bin/sh would; NotExactError outside the subset."""
    tokens = _tokens(command, env)
    if tokens and tokens[0] and not tokens[0][0][1]:
        head = tokens[0][0][0]
        if re.match(r"[A-Za-z_][A-Za-z0-9_]*=", head):
            raise NotExactError("an assignment")
    out: list[str] = []
    for parts in tokens:
        out.extend(_fields(parts))
    return out


# A word is a list of parts: (text, True) when quoted or literal, (value, False) when it
# is the result of an unquoted expansion (subject to field splitting).
_Part = tuple[str, bool]


def _tokens(command: str, env: Mapping[str, str]) -> list[list[_Part]]:
    tokens: list[list[_Part]] = []
    current: list[_Part] = []
    i, n = 0, len(command)
    while i < n:
        char = command[i]
        if char in " \t":
            if current:
                tokens.append(current)
                current = []
            i += 1
        elif char == "'":
            end = command.find("'", i + 1)
            if end < 0:
                raise NotExactError("unterminated quote")
            current.append((command[i + 1 : end], True))
            i = end + 1
        elif char == '"':
            end = command.find('"', i + 1)
            if end < 0:
                raise NotExactError("unterminated quote")
            inner = command[i + 1 : end]
            if any(c in inner for c in "`\\"):
                raise NotExactError("escapes in double quotes")
            current.append((_expand_vars(inner, env), True))
            i = end + 1
        elif char == "$":
            name, i = _variable(command, i)
            value = _lookup(name, env)
            if any(c in value for c in "*?["):
                raise NotExactError("a glob in an expansion")
            current.append((value, False))
        elif char in _SPECIAL or char == "\n":
            if char == "#" and current:
                current.append((char, True))  # '#' inside a word is data
                i += 1
                continue
            raise NotExactError(f"shell syntax {char!r}")
        else:
            start = i
            while i < n and command[i] not in " \t'\"$\n" and command[i] not in _SPECIAL:
                i += 1
            current.append((command[start:i], True))
    if current:
        tokens.append(current)
    return tokens


def _fields(parts: list[_Part]) -> list[str]:
    """Field splitting of one word on IFS whitespace (space, tab, newline)."""
    fields: list[str] = []
    current: list[str] = []
    started = False
    for text, literal in parts:
        if literal:
            current.append(text)
            started = True
            continue
        for k, piece in enumerate(re.split(r"[ \t\n]+", text)):
            if k > 0 and started:
                fields.append("".join(current))
                current, started = [], False
            if piece:
                current.append(piece)
                started = True
    if started:
        fields.append("".join(current))
    return fields


def _variable(command: str, i: int) -> tuple[str, int]:
    if command.startswith("${", i):
        end = command.find("}", i + 2)
        name = command[i + 2 : end] if end >= 0 else ""
        if not _NAME.fullmatch(name):
            raise NotExactError("a parameter expansion")
        return name, end + 1
    match = _NAME.match(command, i + 1)
    if not match:
        raise NotExactError("a special parameter")
    return match.group(), match.end()


def _lookup(name: str, env: Mapping[str, str]) -> str:
    if name not in env:
        raise NotExactError(f"${name} is not in the hook environment")
    return env[name]


def _expand_vars(text: str, env: Mapping[str, str]) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "$":
            name, i = _variable(text, i)
            out.append(_lookup(name, env))
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


# ---------------------------------------------------------------- commands


def parse_command(command: str, env: Mapping[str, str], tables: Mapping[str, int]) -> Op:
    ignore = False
    stripped = command.rstrip()
    for tail in ("|| true", "|| :", "||true"):
        if stripped.endswith(tail):
            stripped = stripped[: -len(tail)]
            ignore = True
            break
    if "|" in stripped or "&" in stripped or ";" in stripped:
        raise NotExactError("a compound command")
    redirect = _echo_redirect(stripped)
    if redirect is not None:
        op: Op = redirect(env)
    else:
        argv = words(stripped, env)
        if not argv:
            raise NotExactError("an empty command")
        program = argv[0].rsplit("/", 1)[-1] if argv[0] in _PATHS else argv[0]
        handler = _COMMANDS.get(program)
        if handler is None or (argv[0] != program and argv[0] not in _PATHS):
            raise NotExactError(f"{argv[0]} is not a well-known command")
        op = handler(argv[1:], tables)
    if ignore:
        import dataclasses  # noqa: PLC0415

        op = dataclasses.replace(op, ignore_failure=True)
    return op


_PATHS: Final = {
    f"{d}/{p}"
    for d in ("/sbin", "/bin", "/usr/sbin", "/usr/bin")
    for p in ("ip", "route", "sysctl")
}


def _echo_redirect(command: str) -> Callable[[Mapping[str, str]], Op] | None:
    """`echo VALUE > /proc/sys/PATH`: the one redirection ifvip does itself."""
    match = re.fullmatch(r"(?:/bin/)?echo\s+(.*?)\s*>\s*(/proc/sys/\S+)\s*", command)
    if not match or ">" in match.group(1):
        return None
    value_text, path_text = match.groups()

    def build(env: Mapping[str, str]) -> Op:
        values = words(value_text, env)
        path = words(path_text, env)
        if len(values) != 1 or len(path) != 1 or values[0].startswith("-") or "\\" in values[0]:
            raise NotExactError("echo of anything but one word")
        if ".." in path[0] or not path[0].startswith("/proc/sys/"):
            raise NotExactError("not a sysctl path")
        return WriteSysctl(name=sysctl_name(path[0]), value=values[0])

    return build


def _sysctl(args: list[str], _tables: Mapping[str, int]) -> Op:
    flags = {a for a in args if a.startswith("-")}
    rest = [a for a in args if not a.startswith("-")]
    if "-w" not in flags or not flags <= {"-w", "-q"} or len(rest) != 1 or "=" not in rest[0]:
        raise NotExactError("sysctl other than -w k=v")
    key, _, value = rest[0].partition("=")
    return WriteSysctl(name=_sysctl_key(key), value=value)


def _sysctl_key(key: str) -> str:
    """procps: a key whose first separator is `/` is a path, dots in it are literal."""
    if not key or ".." in key or key.startswith(("/", ".")):
        raise NotExactError("a strange sysctl key")
    first = min((key.find(c) for c in "./" if c in key), default=-1)
    if first >= 0 and key[first] == "/":
        return sysctl_name(key)
    return key


# -------- ip


def _ip(args: list[str], tables: Mapping[str, int]) -> Op:
    family: int | None = None
    while args and args[0].startswith("-"):
        flag = args.pop(0)
        if flag == "-4":
            family = 4
        elif flag == "-6":
            family = 6
        else:
            raise NotExactError(f"ip {flag}")
    if len(args) < 2:
        raise NotExactError("ip without an object and a command")
    obj, verb, rest = args[0], args[1], args[2:]
    if obj in ("addr", "address", "a"):
        return _ip_addr(verb, rest, family)
    if obj in ("route", "r", "ro"):
        return _ip_route(verb, rest, family, tables)
    if obj in ("rule", "ru"):
        return _ip_rule(verb, rest, family, tables)
    if obj in ("link", "l"):
        return _ip_link(verb, rest)
    raise NotExactError(f"ip {obj}")


def _pairs(
    rest: list[str], keys: Sequence[str], flags: Sequence[str] = ()
) -> tuple[dict[str, str], set[str], list[str]]:
    """`key value` pairs, bare flags and the remaining positional words, each key once."""
    values: dict[str, str] = {}
    seen_flags: set[str] = set()
    positional: list[str] = []
    i = 0
    while i < len(rest):
        word = rest[i]
        if word in keys:
            if word in values or i + 1 >= len(rest):
                raise NotExactError(f"{word} twice or without a value")
            values[word] = rest[i + 1]
            i += 2
        elif word in flags:
            seen_flags.add(word)
            i += 1
        else:
            positional.append(word)
            i += 1
    return values, seen_flags, positional


def _device(name: str) -> str:
    if not _IFNAME.fullmatch(name):
        raise NotExactError(f"device {name!r}")
    return name


def _interface(text: str, family: int | None) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        raise NotExactError(f"address {text!r}") from None
    if family is not None and iface.version != family:
        raise NotExactError("address of the other family")
    mask = text.split("/", 1)[1] if "/" in text else ""
    # ip takes a dotted netmask only if it is one (leading ones); ipaddress would also take
    # a host mask.
    if mask and not mask.isdigit() and (iface.version != 4 or not _leading_ones(mask)):
        raise NotExactError(f"netmask {mask!r}")
    return iface


def _leading_ones(mask: str) -> bool:
    try:
        bits = int(ipaddress.IPv4Address(mask))
    except ValueError:
        return False
    inverted = ~bits & 0xFFFFFFFF
    return inverted & (inverted + 1) == 0


def _network(text: str, family: int | None) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        network = ipaddress.ip_network(text, strict=True)
    except ValueError:
        raise NotExactError(f"prefix {text!r}") from None
    if family is not None and network.version != family:
        raise NotExactError("prefix of the other family")
    return network


def _address(text: str, family: int | None) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise NotExactError(f"address {text!r}") from None
    if family is not None and address.version != family:
        raise NotExactError("address of the other family")
    return str(address)


def _number(text: str, low: int = 0, high: int = 0xFFFFFFFF) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise NotExactError(f"number {text!r}")
    return int(text)


def _lifetime(text: str) -> int | None:
    return None if text == "forever" else _number(text)


def ip_addr_fields(
    address: str, peer: str | None, broadcast: str | None
) -> tuple[str, str | None, str | None]:
    """(address, peer, broadcast) of `ip addr add ADDRESS [peer P] [broadcast B|+|-]` as ip
    sends them: with a peer, the prefix length is the peer's (32/128 without one), and
    `+`/`-` are computed from the peer, for prefixes up to /30 only (iproute2 ipaddress.c).
    """
    local = ipaddress.ip_interface(address)
    base = local
    if peer is not None:
        remote = ipaddress.ip_interface(peer)
        if remote.version != local.version:
            raise ValueError(peer)
        base = remote
        address = f"{local.ip}/{remote.network.prefixlen}"
        peer = str(remote.ip)
    if broadcast in ("+", "-"):
        network = base.network
        if network.prefixlen > 30:
            broadcast = None
        else:
            base_ip = int(base.ip)
            mask = int(network.netmask)
            value = base_ip | (~mask & 0xFFFFFFFF) if broadcast == "+" else base_ip & mask
            broadcast = str(ipaddress.IPv4Address(value))
    return address, peer, broadcast


def default_scope(address: str, scope: str | None) -> str | None:
    """The scope `ip addr add` gives without `scope`: host for 127.0.0.0/8, else the kernel's."""
    if scope is None and address.startswith("127."):
        return "host"
    return scope


def _ip_addr(verb: str, rest: list[str], family: int | None) -> Op:
    if verb not in ("add", "del", "delete"):
        raise NotExactError(f"ip addr {verb}")
    keys = (
        "dev",
        "peer",
        "broadcast",
        "brd",
        "label",
        "scope",
        "preferred_lft",
        "valid_lft",
        "local",
    )
    values, flags, positional = _pairs(rest, keys, ("nodad",))
    if "local" in values:
        positional.append(values.pop("local"))
    if len(positional) != 1 or "dev" not in values:
        raise NotExactError("ip addr without exactly one address and a dev")
    text = positional[0]
    if "/" not in text and verb != "add":
        raise NotExactError("ip addr del without a prefix length")
    iface = _interface(text, family)
    version = iface.version
    dev = _device(values["dev"])
    label = values.get("label")
    if label is not None and (version == 6 or not label.startswith(dev) or len(label) > 15):
        raise NotExactError("a label ip would refuse")
    if "broadcast" in values and "brd" in values:
        raise NotExactError("broadcast twice")
    broadcast = values.get("broadcast", values.get("brd"))
    if broadcast is not None and version == 6:
        raise NotExactError("broadcast on IPv6")
    if broadcast is not None and broadcast not in ("+", "-"):
        broadcast = _address(broadcast, 4)
    peer = values.get("peer")
    if peer is not None:
        _interface(peer, version) if "/" in peer else _address(peer, version)
    try:
        address, peer, broadcast = ip_addr_fields(str(iface), peer, broadcast)
    except ValueError:
        raise NotExactError("a peer ip would refuse") from None
    scope = values.get("scope")
    if scope is not None and scope not in SCOPE_NAMES and not scope.isdigit():
        raise NotExactError(f"scope {scope}")
    fields: dict[str, Any] = {
        "ifname": dev,
        "address": address,
        "peer": peer,
        "broadcast": broadcast,
        "scope": default_scope(address, "global" if scope == "universe" else scope),
        "label": label,
    }
    if verb == "add":
        return AddAddress(
            **fields,
            nodad="nodad" in flags,
            preferred_lft=_lifetime(values["preferred_lft"]) if "preferred_lft" in values else None,
            valid_lft=_lifetime(values["valid_lft"]) if "valid_lft" in values else None,
        )
    if flags or "preferred_lft" in values or "valid_lft" in values:
        raise NotExactError("ip addr del with add-only options")
    return DelAddress(**fields)


def _table(text: str, tables: Mapping[str, int]) -> int:
    if text.isdigit():
        return _number(text, 0, 0xFFFFFFFF)
    if text in tables:
        return tables[text]
    raise NotExactError(f"table {text!r}")


def _ip_route(verb: str, rest: list[str], family: int | None, tables: Mapping[str, int]) -> Op:
    if verb not in ("add", "del", "delete", "replace"):
        raise NotExactError(f"ip route {verb}")
    keys = ("via", "dev", "table", "metric", "priority", "preference", "src", "proto", "scope")
    values, flags, positional = _pairs(rest, keys, ("onlink",))
    route_type = "unicast"
    if positional and positional[0] in ROUTE_TYPES:
        route_type = positional.pop(0)
    if positional[:1] == ["to"]:
        positional.pop(0)
    if len(positional) != 1:
        raise NotExactError("ip route without exactly one destination")
    metrics = [values[k] for k in ("metric", "priority", "preference") if k in values]
    if len(metrics) > 1:
        raise NotExactError("metric twice")
    dst_text = positional[0]
    gateway = values.get("via")
    if dst_text in ("default", "all", "any"):
        dst = None
        if family is None:
            family = 6 if gateway is not None and ":" in gateway else 4
    else:
        network = _network(dst_text, family)
        family = network.version
        dst = str(network)
    if family is None:  # pragma: no cover - set above
        raise NotExactError("no family")
    gw = _address(gateway, family) if gateway is not None else None
    scope = values.get("scope")
    if scope is not None and scope not in SCOPE_NAMES and not scope.isdigit():
        raise NotExactError(f"scope {scope}")
    proto_text = values.get("proto", "boot")
    proto = PROTOCOLS.get(proto_text)
    if proto is None:
        proto = _number(proto_text, 0, 255)
    if route_type != "unicast":
        # ip picks other scopes for other types; ifvip keeps those lines in the shell.
        raise NotExactError(f"a {route_type} route")
    table = _table(values["table"], tables) if "table" in values else None
    fields: dict[str, Any] = {
        "family": family,
        "dst": dst,
        "gateway": gw,
        "dev": _device(values["dev"]) if "dev" in values else None,
        "table": None if table == RT_TABLE_MAIN else table,
        "metric": _number(metrics[0]) if metrics else None,
        "src": _address(values["src"], family) if "src" in values else None,
        "onlink": "onlink" in flags,
        "proto": proto,
        "scope": "global" if scope == "universe" else scope,
        "type": route_type,
    }
    if fields["dev"] is None and gw is None and route_type == "unicast":
        raise NotExactError("a route with neither a gateway nor a device")
    if verb in {"del", "delete"}:
        return DelRoute(**fields)
    return AddRoute(**fields, replace=verb == "replace")


def _ip_rule(verb: str, rest: list[str], family: int | None, tables: Mapping[str, int]) -> Op:
    if verb not in ("add", "del", "delete"):
        raise NotExactError(f"ip rule {verb}")
    keys = (
        "from",
        "to",
        "iif",
        "dev",
        "oif",
        "fwmark",
        "priority",
        "pref",
        "preference",
        "table",
        "lookup",
    )
    values, flags, positional = _pairs(rest, keys)
    if positional or flags:
        raise NotExactError("ip rule with words ifvip does not know")

    def one(*names: str) -> str | None:
        found = [values[n] for n in names if n in values]
        if len(found) > 1:
            raise NotExactError(f"{names[0]} twice")
        return found[0] if found else None

    def prefix(text: str | None) -> str | None:
        nonlocal family
        if text is None or text == "all":
            return None
        network = _network(text, family)
        family = network.version
        return str(network)

    src = prefix(one("from"))
    dst = prefix(one("to"))
    table_text = one("table", "lookup")
    if table_text is None and verb != "add":
        raise NotExactError("ip rule del without a table")
    priority = one("priority", "pref", "preference")
    fwmark = one("fwmark")
    mark: int | None = None
    if fwmark is not None:
        try:
            mark = int(fwmark, 0)
        except ValueError:
            raise NotExactError(f"fwmark {fwmark}") from None
    iif = one("iif", "dev")
    oif = one("oif")
    fields: dict[str, Any] = {
        "family": family or 4,
        "priority": _number(priority) if priority is not None else None,
        "src": src,
        "dst": dst,
        "table": _table(table_text, tables) if table_text is not None else RT_TABLE_MAIN,
        "iifname": _device(iif) if iif is not None else None,
        "oifname": _device(oif) if oif is not None else None,
        "fwmark": mark,
    }
    if verb == "add":
        return AddRule(**fields)
    return DelRule(**fields)


_MAC: Final = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")


def _ip_link(verb: str, rest: list[str]) -> Op:
    if verb != "set":
        raise NotExactError(f"ip link {verb}")
    if rest[:1] == ["dev"]:
        rest = rest[1:]
    if not rest:
        raise NotExactError("ip link set without a device")
    dev = _device(rest[0])
    values, flags, positional = _pairs(rest[1:], ("mtu", "address"), ("up", "down"))
    if positional or flags == {"up", "down"}:
        raise NotExactError("ip link set with words ifvip does not know")
    mac = values.get("address")
    if mac is not None and not _MAC.fullmatch(mac):
        raise NotExactError(f"address {mac}")
    if not values and not flags:
        raise NotExactError("ip link set without a change")
    return SetLink(
        ifname=dev,
        up=True if "up" in flags else False if "down" in flags else None,
        mtu=_number(values["mtu"], 68, 0xFFFF) if "mtu" in values else None,
        address=mac.lower() if mac is not None else None,
    )


# -------- net-tools route


def _route(args: list[str], _tables: Mapping[str, int]) -> Op:
    if not args or args[0] not in ("add", "del"):
        raise NotExactError("route other than add/del")
    verb, rest = args[0], args[1:]
    kind = None
    if rest and rest[0] in ("-net", "-host"):
        kind = rest.pop(0)
    if not rest:
        raise NotExactError("route without a target")
    target = rest.pop(0)
    values, _flags, positional = _pairs(rest, ("netmask", "gw", "gateway", "dev", "metric"))
    if "gw" in values and "gateway" in values:
        raise NotExactError("gw twice")
    if len(positional) > 1 or (positional and "dev" in values):
        raise NotExactError("route with words ifvip does not know")
    dev = values.get("dev") or (positional[0] if positional else None)
    if target == "default":
        if kind is not None or "netmask" in values:
            raise NotExactError("route default with -net/-host/netmask")
        dst = None
    elif kind == "-host":
        if "/" in target or "netmask" in values:
            raise NotExactError("route -host with a mask")
        dst = f"{_address(target, 4)}/32"
    elif kind == "-net":
        if "netmask" in values:
            if "/" in target:
                raise NotExactError("a prefix and a netmask")
            dst = str(_network(f"{_address(target, 4)}/{_address(values['netmask'], 4)}", 4))
        elif "/" in target:
            dst = str(_network(target, 4))
        else:
            raise NotExactError("route -net without a mask (net-tools guesses a class)")
    else:
        raise NotExactError("route without -net or -host (net-tools guesses)")
    gateway = values.get("gw", values.get("gateway"))
    fields: dict[str, Any] = {
        "family": 4,
        "dst": dst,
        "gateway": _address(gateway, 4) if gateway is not None else None,
        "dev": _device(dev) if dev is not None else None,
        "metric": _number(values["metric"]) if "metric" in values else None,
    }
    if fields["gateway"] is None and fields["dev"] is None:
        raise NotExactError("route without a gateway or a device")
    if verb == "add":
        return AddRoute(**fields)
    return DelRoute(**fields)


_COMMANDS: Final[dict[str, Callable[[list[str], Mapping[str, int]], Op]]] = {
    "ip": _ip,
    "route": _route,
    "sysctl": _sysctl,
}
