"""`ifvip check`: what ifupdown lets through and then breaks on, as `path:line:col` diagnostics.

The loader already reports ifupdown's own parse errors and repeated options. This module
adds the checks driven by the option schema: required options, values of the wrong shape
(addresses, netmasks, MTUs...), interface names the kernel cannot hold, methods ifvip
cannot apply, and options the method does not know (a warning: if-*.d scripts may use them).
"""

from __future__ import annotations

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

IFNAMSIZ: Final = 16  # the kernel's limit, NUL included: names hold at most 15 bytes
UCARP_PASSWORD_MAX: Final = 19  # ucarp refuses longer passwords (specs/carp.md §1)

# Options whose value is a password written in the file itself, and option names that
# name a file holding one (`*-passfile`, `*-pass-file`, `*-password-file`).
INLINE_SECRETS: Final = ("ucarp-password",)
SECRET_FILE_SUFFIXES: Final = ("passfile", "pass-file", "password-file")

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
}


def _error(origin: Origin, msg: str, *, warning: bool = False) -> ConfigError:
    return ConfigError(origin.path, origin.line, origin.col, msg, warning=warning)


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
    if not spec.supported:
        yield _error(
            stanza.origin,
            f"method {stanza.family} {stanza.method} is read but ifvip ifup does not apply it",
            warning=True,
        )
    given = {o.name for o in stanza.options}
    for required in (o for o in spec.options if o.required):
        if required.name not in given:
            yield _error(
                stanza.origin,
                f"{stanza.name}: {stanza.family} {stanza.method} needs option '{required.name}'"
                + (" (a template: every stanza that inherits it must set it)" if template else ""),
                warning=template,
            )
    for option in stanza.options:
        if option.is_hook:
            continue
        yield from _secret_checks(option.name, option.value.split("\n", 1)[0], option.origin)
        known: OptionSpec | None = spec.option(option.name) or common_option(option.name)
        if known is None:
            if not option.name.startswith(ADDON_PREFIXES):
                yield _error(
                    option.origin,
                    f"option '{option.name}' is not known for {stanza.family} {stanza.method}"
                    " (only if-*.d scripts can use it)",
                    warning=True,
                )
            continue
        value = option.value.split("\n", 1)[0]
        if not _VALID[known.kind](value):
            yield _error(
                option.origin,
                f"{option.name} '{value}' is not a valid {known.kind.value}",
            )
        if option.name == "ucarp-password" and len(_raw(value)) > UCARP_PASSWORD_MAX:
            yield _error(
                option.origin,
                f"ucarp-password is longer than {UCARP_PASSWORD_MAX} bytes (ucarp refuses it)",
            )


def check(defn: InterfacesFile) -> list[ConfigError]:
    """Every diagnostic for the file: the loader's, then the schema's, in file order."""
    problems = list(defn.diagnostics)
    templates = {s.inherits for s in defn.ifaces if s.inherits}
    listed = {name for _cls, names in defn.classes for name in names}
    for stanza in defn.ifaces:
        if stanza.builtin:
            continue
        template = stanza.name in templates and stanza.name not in listed
        if _name_too_long(stanza.name) and not template:
            problems.append(
                _error(
                    stanza.origin,
                    f"interface name '{stanza.name}' is longer than {IFNAMSIZ - 1} bytes",
                )
            )
        problems.extend(check_stanza(stanza, template=template))
    problems.sort(key=lambda p: (p.path != defn.path, p.path, p.line, p.col))
    return problems
