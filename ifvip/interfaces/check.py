"""`ifvip check`: what ifupdown lets through and then breaks on, as `path:line:col` diagnostics.

The loader already reports ifupdown's own parse errors and repeated options. This module
adds the checks driven by the option schema: required options, values of the wrong shape
(addresses, netmasks, MTUs...), interface names the kernel cannot hold, end-of-line
comments in values (a warning: ifupdown applies what the shell leaves of them), what makes
`ifup -a` fail in ifupdown as in ifvip (`auto X` without a stanza for X, a loopback that
is not `lo`), and options the method does not know (a warning: if-*.d scripts may use them).

The scope of an error is the interface when it concerns one stanza (`ConfigError.interface`
is set): ifup fails that interface and brings up the others, as ifupdown does. Only errors
that make ifupdown refuse the file as a whole refuse it (`file_errors`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import stat
from collections.abc import Callable, Iterator
from typing import Final

from ifvip.errors import ConfigError
from ifvip.interfaces.model import Iface, InterfacesFile, Origin
from ifvip.interfaces.options import (
    ADDON_PREFIXES,
    Kind,
    OptionSpec,
    common_option,
    method_spec,
)
from ifvip.interfaces.patterns import fnmatch

IFNAMSIZ: Final = 16  # the kernel's limit, NUL included: names hold at most 15 bytes

# Options whose value is a password written in the file itself, and option names that
# name a file holding one (`*-passfile`, `*-pass-file`, `*-password-file`).
INLINE_SECRETS: Final = ("ucarp-password",)
SECRET_FILE_SUFFIXES: Final = ("passfile", "pass-file", "password-file")
# A VRRP password is only read from a file (vrrp-auth-pass-file): these are refused, and
# their value is never repeated in a message.
REFUSED_SECRETS: Final = ("vrrp-auth-pass", "vrrp-password", "vrrp-pass")
# The option that makes a stanza carry a group, per protocol (ifvip-sync-group needs one).
GROUP_KEYS: Final = ("ucarp-vid", "vrrp-id")
_WORD: Final = re.compile(r"[A-Za-z0-9_.-]+")

_MAC = re.compile(r"^[0-9A-Fa-f]{1,2}(:[0-9A-Fa-f]{1,2}){5}$")


def _ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _netmask4(text: str) -> bool:
    if text.isdigit():
        return 0 <= int(text) <= 32
    if not _ipv4(text):
        return False
    bits = int(ipaddress.IPv4Address(text))
    inverted = ~bits & 0xFFFFFFFF
    return inverted & (inverted + 1) == 0  # contiguous ones, then zeros


def _ipv4_cidr(text: str) -> bool:
    address, slash, mask = text.partition("/")
    return _ipv4(address) and (not slash or _netmask4(mask))


def _ipv6_cidr(text: str) -> bool:
    address, slash, prefix = text.partition("/")
    return _ipv6(address) and (not slash or (prefix.isdigit() and int(prefix) <= 128))


def _int(text: str) -> bool:
    return re.fullmatch(r"-?\d+", text) is not None


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _in_range(low: int, high: int) -> Callable[[str], bool]:
    return lambda text: text.isdigit() and low <= int(text) <= high


def _seconds(text: str) -> bool:
    from ifvip.wire.vrrp import SECONDS_TEXT  # noqa: PLC0415 - keepalived's form, VRRP's alone

    return SECONDS_TEXT.fullmatch(text) is not None


def _ip(text: str) -> bool:
    return _ipv4(text) or _ipv6(text)


def _vips(text: str) -> bool:
    """ADDR[/LEN][@DEV] words of one family (`ifvip run --vip`'s form)."""
    families = set()
    for word in text.split():
        address, _, device = word.partition("@")
        if "@" in word and not device:
            return False
        try:
            families.add(ipaddress.ip_interface(address).version)
        except ValueError:
            return False
    return len(families) == 1


_VALID: Final[dict[Kind, Callable[[str], bool]]] = {
    Kind.TEXT: lambda _t: True,
    Kind.PATH: lambda _t: True,
    Kind.INT: _int,
    Kind.NUMBER: _number,
    Kind.BOOL: lambda t: t in ("0", "1"),
    Kind.ONOFF: lambda t: t in ("on", "off"),
    Kind.IPV4: _ipv4,
    Kind.IPV4_CIDR: _ipv4_cidr,
    Kind.NETMASK4: _netmask4,
    Kind.BROADCAST: lambda t: t in ("+", "-") or _ipv4(t),
    Kind.IPV6: _ipv6,
    Kind.IPV6_CIDR: _ipv6_cidr,
    Kind.PREFIX6: _in_range(0, 128),
    Kind.MAC: lambda t: t == "random" or _MAC.match(t.split(" ")[-1]) is not None,
    Kind.MTU: _in_range(68, 65535),
    Kind.SCOPE: lambda t: t in ("global", "site", "link", "host"),
    Kind.VHID: _in_range(1, 255),
    Kind.BYTE: _in_range(0, 255),
    Kind.UINT: str.isdigit,
    Kind.SECONDS: _seconds,
    Kind.YESNO: lambda t: t in ("yes", "no"),
    Kind.IP: _ip,
    Kind.IPS: lambda t: bool(t.split()) and all(_ip(w) for w in t.split()),
    Kind.VIPS: _vips,
    Kind.VRRP_VERSION: lambda t: t in ("2", "3"),
    Kind.CHECKSUM: lambda t: t in ("pseudo-header", "message-only"),
    Kind.WORD: lambda t: _WORD.fullmatch(t) is not None,
}


def _error(
    origin: Origin, msg: str, *, warning: bool = False, interface: str | None = None
) -> ConfigError:
    return ConfigError(
        origin.path, origin.line, origin.col, msg, warning=warning, interface=interface
    )


_EOL_COMMENT: Final = re.compile(r"^(\S.*?)[ \t]+(#.*)$")


def eol_comment(value: str) -> tuple[str, str] | None:
    """(the value before it, the comment) when `value` ends with a shell comment.

    ifupdown keeps `# ...` in the value; its commands hand the line to /bin/sh, which drops
    the comment and everything after it on the line (and the address conversions cut a
    `/prefix # ...` at the first non-digit)."""
    match = _EOL_COMMENT.match(value)
    return None if match is None else (match.group(1), match.group(2))


def _raw(text: str) -> bytes:
    """The file's bytes back: the loader keeps undecodable bytes as surrogate escapes."""
    return text.encode("utf-8", "surrogateescape")


def _name_too_long(name: str) -> bool:
    return len(_raw(name.split(":", 1)[0])) >= IFNAMSIZ


def _world_readable(path: str) -> int | None:
    """The permission bits of `path` if any local user may read it, else None."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # a file that cannot be read is reported by whoever reads it
    return stat.S_IMODE(mode) if mode & stat.S_IROTH else None


def passfile_warning(path: str) -> str | None:
    """Why the password file `path` is unsafe (any local user can read it), or None.

    Used by `ifvip check` for the files an interfaces file names, and meant for `ifvip run`
    to log at start for `--passfile`.
    """
    mode = _world_readable(path)
    if mode is None:
        return None
    return f"password file {path} is world-readable (mode {mode:04o}): chmod o-r {path}"


def _secret_checks(option_name: str, value: str, origin: Origin) -> Iterator[ConfigError]:
    if option_name in INLINE_SECRETS:
        mode = _world_readable(origin.path)
        if mode is not None:
            yield _error(
                origin,
                f"{option_name}: the password is in a file any local user can read"
                f" (mode {mode:04o}): chmod o-r {origin.path}",
                warning=True,
            )
    elif option_name.endswith(SECRET_FILE_SUFFIXES):
        warning = passfile_warning(value)
        if warning is not None:
            yield _error(origin, f"{option_name}: {warning}", warning=True)


def check_stanza(stanza: Iface, *, template: bool = False) -> Iterator[ConfigError]:
    """The schema's diagnostics for one stanza.

    A `template` (a stanza others inherit from and no class lists) is never brought up by
    itself, so an option it leaves to its heirs is only a warning.
    """
    spec = method_spec(stanza.family, stanza.method)
    if spec is None:  # the loader rejected it already
        return
    given = {o.name for o in stanza.options}
    yield from _group_checks(stanza, given)
    for required in (o for o in spec.options if o.required):
        if required.name not in given:
            yield _error(
                stanza.origin,
                f"{stanza.name}: {stanza.family} {stanza.method} needs option '{required.name}'"
                + (" (a template: every stanza that inherits it must set it)" if template else ""),
                warning=template,
                interface=stanza.name,
            )
    for option in stanza.options:
        if option.is_hook or option.name in REFUSED_SECRETS:
            continue
        yield from _secret_checks(option.name, option.value.split("\n", 1)[0], option.origin)
        known: OptionSpec | None = spec.option(option.name) or common_option(option.name)
        if known is None:
            if option.name.startswith("vrrp-") and "vrrp-id" in given:
                yield _error(
                    option.origin,
                    f"option '{option.name}' is not one of ifvip's vrrp-* options "
                    "(see ifvip-interfaces(5)): the group would run without it",
                    interface=stanza.name,
                )
            elif not option.name.startswith(ADDON_PREFIXES):
                yield _error(
                    option.origin,
                    f"option '{option.name}' is not known for {stanza.family} {stanza.method}"
                    " (only if-*.d scripts can use it)",
                    warning=True,
                )
            continue
        value = option.value.split("\n", 1)[0]
        comment = eol_comment(value)
        shaped = known.kind not in (Kind.TEXT, Kind.PATH)
        if comment is not None and shaped and _VALID[known.kind](comment[0]):
            yield _error(
                option.origin,
                f"{option.name} '{value}' ends with a comment: ifupdown applies "
                f"'{comment[0]}' and its command line ends at the '#' (ifvip does the same)",
                warning=True,
                interface=stanza.name,
            )
            continue
        if not _VALID[known.kind](value):
            yield _error(
                option.origin,
                f"{option.name} '{value}' is not a valid {known.kind.value}",
                interface=stanza.name,
            )
        if option.name == "ucarp-password":
            # Loaded only where a file has a CARP password: not on every ifup's way.
            from ifvip.wire.carp import PASSWORD_MAX  # noqa: PLC0415

            if len(_raw(value)) > PASSWORD_MAX:
                yield _error(
                    option.origin,
                    f"ucarp-password is longer than {PASSWORD_MAX} bytes (ucarp refuses it)",
                    interface=stanza.name,
                )


def _link_local_first(text: str) -> bool:
    """Whether vrrp-address's first address is link-local, or IPv4 (the question is IPv6's)."""
    first = ipaddress.ip_interface(text.split(maxsplit=1)[0].partition("@")[0]).ip
    return first.version == 4 or first.is_link_local


def _group_checks(stanza: Iface, given: set[str]) -> Iterator[ConfigError]:
    """What makes a stanza's VRRP group (`vrrp-id`) or sync group wrong whatever the values:
    a vrrp-* option without the group, a group without its addresses, contradicting
    preemption, an inline password, a sync group on a stanza that runs no group."""
    for option in stanza.options:
        if option.is_hook:
            continue
        name = option.name
        if name in REFUSED_SECRETS:
            # The value is a password: never repeated here.
            yield _error(
                option.origin,
                f"{name}: a VRRP password written in the interfaces file is refused; put it "
                "in a file only root can read and name it with vrrp-auth-pass-file",
                interface=stanza.name,
            )
        elif (
            name.startswith("vrrp-")
            and name != "vrrp-id"
            and "vrrp-id" not in given
            and common_option(name) is not None  # another tool's vrrp-* stays its business
        ):
            yield _error(
                option.origin,
                f"{name} without vrrp-id on this stanza: there is no VRRP group to apply it to",
                interface=stanza.name,
            )
        elif name == "ifvip-sync-group" and not given.intersection(GROUP_KEYS):
            yield _error(
                option.origin,
                "ifvip-sync-group on a stanza without ucarp-vid or vrrp-id: it runs no group "
                "that could join the sync group",
                interface=stanza.name,
            )
        elif (
            name == "ifvip-sync-group"
            and "ucarp-vid" in given
            and (stanza.get("ucarp-master") or "no").lower() in ("no", "off", "false", "0")
        ):
            yield _error(
                option.origin,
                "ifvip-sync-group on a CARP group without ucarp-master yes: a held CARP master "
                "only raises its advskew (as OpenBSD's), so its members move together only "
                "when both hosts preempt",
                warning=True,
                interface=stanza.name,
            )
        elif name == "vrrp-address" and _vips(option.value) and not _link_local_first(option.value):
            yield _error(
                option.origin,
                "vrrp-address: the first IPv6 address should be link-local (RFC 5798 §5.2.9; "
                "keepalived and ifvip advertise the addresses in this order)",
                warning=True,
                interface=stanza.name,
            )
        elif name == "vrrp-id" and "vrrp-address" not in given:
            yield _error(
                option.origin,
                "vrrp-id needs vrrp-address (the group's virtual addresses)",
                interface=stanza.name,
            )
        elif (
            name == "vrrp-nopreempt"
            and "vrrp-preempt" in given
            and (stanza.get("vrrp-preempt") == "yes") == (option.value == "yes")
        ):
            yield _error(
                option.origin,
                "vrrp-nopreempt contradicts vrrp-preempt: give one of them",
                interface=stanza.name,
            )


def _owner(defn: InterfacesFile, diagnostic: ConfigError) -> Iface | None:
    """The stanza a diagnostic of the loader falls in: the last one started before it in
    the same file."""
    owner: Iface | None = None
    for stanza in defn.ifaces:
        origin = stanza.origin
        if (
            origin.path == diagnostic.path
            and origin.line <= diagnostic.line
            and (owner is None or origin.line >= owner.origin.line)
        ):
            owner = stanza
    return owner


def _scoped(defn: InterfacesFile, diagnostic: ConfigError) -> ConfigError:
    """A loader error scoped to its stanza when it concerns one: a repeated option makes
    ifupdown's value (the values joined by a newline) fail that interface only."""
    if diagnostic.warning or diagnostic.interface is not None or not defn.ifupdown_ok:
        return diagnostic
    if " repeated (" not in diagnostic.msg or not diagnostic.msg.startswith("option '"):
        return diagnostic
    owner = _owner(defn, diagnostic)
    if owner is None:
        return diagnostic
    return dataclasses.replace(diagnostic, interface=owner.name)


def _class_origin(defn: InterfacesFile, cls: str, name: str) -> Origin:
    """Where `auto NAME` (or `allow-CLASS NAME`) is written: the model keeps the names of a
    class, not their lines, so the files are read again (they were just read). A line
    ending in a backslash goes on on the next one, as in the loader."""
    keyword = "auto" if cls == "auto" else f"allow-{cls}"
    for path in defn.files:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                lines = handle.read().replace("\r", "").split("\n")
        except OSError:
            continue
        for number, line in enumerate(lines, 1):
            words = line.split()
            if not words or words[0] != keyword:
                continue
            joined, following = line, number
            while joined.endswith("\\") and following < len(lines):
                joined = joined[:-1] + " " + lines[following]
                following += 1
            if name in joined.split()[1:]:
                start = line.find(name, line.find(keyword) + len(keyword))
                return Origin(path, number, start + 1 if start >= 0 else 1)
    return Origin(defn.files[0] if defn.files else defn.path, 1, 1)


def ifup_all_failures(defn: InterfacesFile) -> list[ConfigError]:
    """What makes `ifup -a` (or `--allow CLASS`) fail in ifupdown and in ifvip alike, each
    scoped to its interface (the others come up): a class listing a name no stanza
    defines and no mapping maps (`auto allow-hotplug eth1` lists `allow-hotplug`), and a
    loopback stanza for a name that is not `lo` (`ip link set dev lo0 up` fails)."""
    problems: list[ConfigError] = []
    mapped = [p for m in defn.mappings for p in m.patterns]
    for cls, names in defn.classes:
        for name in names:
            if defn.stanzas(name) or any(fnmatch(p, name) for p in mapped):
                continue
            origin = _class_origin(defn, cls, name)
            keyword = "auto" if cls == "auto" else f"allow-{cls}"
            why = (
                f" ('{name}' is a keyword only at the start of a line)"
                if name.startswith("allow-") or name == "auto"
                else ""
            )
            problems.append(
                _error(
                    origin,
                    f"{keyword} {name}: no iface stanza defines {name}{why}; ifup "
                    f"{'-a' if cls == 'auto' else '--allow ' + cls} fails it (unknown "
                    "interface) and brings up the others",
                    interface=name,
                )
            )
    for stanza in defn.ifaces:
        if stanza.builtin or stanza.method != "loopback" or stanza.name.split(":")[0] == "lo":
            continue
        problems.append(
            _error(
                stanza.origin,
                f"{stanza.name}: method {stanza.family} loopback is for lo only; ifup runs "
                f"'ip link set dev {stanza.name} up', which fails unless a link of that "
                "name exists, and does not configure a loopback",
                interface=stanza.name,
            )
        )
    return problems


def invalid_stanzas(defn: InterfacesFile) -> dict[Origin, tuple[ConfigError, ...]]:
    """The errors that fail each stanza (by its origin): ifup applies nothing of such a
    stanza, says why as `path:line:col: message`, and brings up the other interfaces."""
    errors: dict[Origin, list[ConfigError]] = {}
    templates = {s.inherits for s in defn.ifaces if s.inherits}
    listed = {name for _cls, names in defn.classes for name in names}
    for diagnostic in defn.diagnostics:
        scoped = _scoped(defn, diagnostic)
        if scoped.interface is not None:
            owner = _owner(defn, scoped)
            if owner is not None:
                errors.setdefault(owner.origin, []).append(scoped)
    for stanza in defn.ifaces:
        if stanza.builtin:
            continue
        template = stanza.name in templates and stanza.name not in listed
        found = [e for e in _stanza_problems(stanza, template=template) if not e.warning]
        if found:
            errors.setdefault(stanza.origin, []).extend(found)
    return {origin: tuple(found) for origin, found in errors.items()}


def _stanza_problems(stanza: Iface, *, template: bool) -> Iterator[ConfigError]:
    if _name_too_long(stanza.name) and not template:
        yield _error(
            stanza.origin,
            f"interface name '{stanza.name}' is longer than {IFNAMSIZ - 1} bytes",
            interface=stanza.name,
        )
    yield from check_stanza(stanza, template=template)


def file_errors(problems: list[ConfigError]) -> list[ConfigError]:
    """The errors that concern the file as a whole (ifvip refuses it)."""
    return [p for p in problems if not p.warning and p.interface is None]


def check(defn: InterfacesFile) -> list[ConfigError]:
    """Every diagnostic for the file: the loader's, then the schema's, in file order."""
    problems = [_scoped(defn, d) for d in defn.diagnostics]
    templates = {s.inherits for s in defn.ifaces if s.inherits}
    listed = {name for _cls, names in defn.classes for name in names}
    for stanza in defn.ifaces:
        if stanza.builtin:
            continue
        template = stanza.name in templates and stanza.name not in listed
        problems.extend(_stanza_problems(stanza, template=template))
    if defn.ifupdown_ok:
        problems.extend(ifup_all_failures(defn))
    problems.sort(key=lambda p: (p.path != defn.path, p.path, p.line, p.col))
    return problems
