"""Configuration pieces both protocols share, validated before anything runs.

`ConfigProblems` (every problem, each naming its option; the CLI prints them and exits 78,
EX_CONFIG, without touching the network), `Secret` (a password that prints as `***`
everywhere: logs, status, errors, repr), `Vip`, the integer parser and password reader the
option builders use, the checks against the host's addresses and the `--interfaces` file,
the VIP lifetime, and the reload diff (`diff_groups`). Each protocol's own options are
validated in its package: carp/config.py, vrrp_config.py.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable, Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, Protocol, TypeVar

from ifvip.errors import ConfigError

if TYPE_CHECKING:
    from ifvip.interfaces.model import Iface, InterfacesFile, Origin

EX_CONFIG: Final = 78
IFNAMSIZ: Final = 16


class ConfigProblems(Exception):  # noqa: N818 - a collection of problems, not one error
    """One or more configuration problems, each a line naming its option."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def at(origin: Origin, message: str, stanza: Iface) -> ConfigError:
    """A problem of the group a stanza declares, at the line that gave it (`path:line:col`)
    and scoped to the stanza's interface, as the schema's are (interfaces/check.py)."""
    return ConfigError(origin.path, origin.line, origin.col, message, interface=stanza.name)


@dataclass(frozen=True)
class Secret:
    """A password: compared and used as bytes, never shown."""

    value: bytes = field(repr=False)

    def __str__(self) -> str:
        return "***"

    def __repr__(self) -> str:
        return "Secret(***)"

    def __bool__(self) -> bool:
        return bool(self.value)


@dataclass(frozen=True)
class Vip:
    """A virtual address with its prefix and, optionally, the device it goes on."""

    interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    device: str | None = None

    @classmethod
    def parse(cls, text: str, *, default_len: int | None = None) -> Vip:
        address, _, device = text.partition("@")
        if "/" not in address and default_len is not None:
            address = f"{address}/{default_len}"
        interface = ipaddress.ip_interface(address)
        return cls(interface, device or None)

    def __str__(self) -> str:
        return f"{self.interface}" + (f"@{self.device}" if self.device else "")


class Lifetimed(Protocol):
    """A group configuration of either protocol, as far as its VIPs' lifetime goes."""

    @property
    def lifetime(self) -> int | None: ...

    def master_down_interval(self) -> float: ...


def vip_lifetime(config: Lifetimed) -> int | None:
    """Seconds an ifvip-added VIP lives without a refresh (None: permanent).

    Two master-down intervals, rounded up: longer than the silence after which a backup
    takes over, so a live master never loses its VIP, and short enough that a SIGKILLed or
    stopped master's VIP is gone one master-down interval after the backup took it.
    """
    if config.lifetime == 0:
        return None
    if config.lifetime is not None:
        return config.lifetime
    return max(2, math.ceil(2 * config.master_down_interval()))


def keywords_for(
    builder: Callable[..., object], options: Mapping[str, Any], *, but: Collection[str] = ()
) -> dict[str, Any]:
    """The `ifvip run` options that `builder` takes as keyword parameters of the same name
    (a click option's name is its builder's parameter: `--advskew` is `advskew`), but those
    the caller gives itself. One name per option, from the command line to the config."""
    code = builder.__code__  # not inspect.signature: the daemon does not load inspect
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    return {name: options[name] for name in names if name in options and name not in but}


def parse_int(
    value: str, option: str, low: int, high: int, problems: list[str], *, auto_base: bool = False
) -> int | None:
    """`value` as an integer in low..high (`auto_base`: 0x.. and 0o.. too), or None with a
    problem naming --option. The one integer parser of the daemon's options."""
    try:
        number = int(value, 0) if auto_base else int(value)
    except ValueError:
        problems.append(f"--{option}: '{value}' is not a whole number")
        return None
    if not low <= number <= high:
        problems.append(f"--{option}: {number} is out of range {low}..{high}")
        return None
    return number


def check_interface(
    interface: str | None, links: Collection[str] | None, problems: list[str], *, hint: str = ""
) -> None:
    """--interface: given (`hint`: where else it may come from), a kernel name (at most 15
    bytes) and, when `links` lists the interfaces that exist, one of them."""
    if not interface:
        problems.append(f"--interface: no interface given{hint}")
    elif len(interface.encode()) >= IFNAMSIZ:
        problems.append(f"--interface: '{interface}' is longer than 15 bytes")
    elif links is not None and interface not in links:
        problems.append(f"--interface: no such interface '{interface}'")


def check_actions(
    scripts: Sequence[tuple[str, str | None]],
    manage: Sequence[str],
    interfaces_file: str | None,
    problems: list[str],
) -> None:
    """What MASTER runs, of either protocol: each (option, script) given is executable, and
    --manage names a file to take its stanzas from."""
    for option, script in scripts:
        if script is not None and not os.access(script, os.X_OK):
            problems.append(f"--{option}: {script} is not an executable file")
    if manage and not interfaces_file:
        problems.append("--manage: needs --interfaces FILE")


def parse_lifetime(value: str | None, problems: list[str]) -> int | None:
    """--vip-lifetime SECONDS (0: permanent; None when not given): the longest lifetime the
    kernel keeps finite is 0xFFFFFFFE (0xFFFFFFFF is `forever`)."""
    if value is None:
        return None
    return parse_int(value, "vip-lifetime", 0, 0xFFFFFFFE, problems, auto_base=True)


def read_password(
    value: str | None, passfile: str | None, option: str, problems: list[str]
) -> Secret | None:
    """The password from `--pass` or the first line of `--passfile` (ucarp strips only \\n)."""
    if value is not None and passfile is not None:
        problems.append(f"--{option} and --passfile are both given; use one")
        return None
    if passfile is not None:
        try:
            with open(passfile, "rb") as handle:
                first = handle.readline()
        except OSError as exc:
            problems.append(f"--passfile: cannot read {passfile}: {exc.strerror}")
            return None
        return Secret(first.rstrip(b"\n"))
    if value is None:
        return None
    return Secret(value.encode())


SYNC_GROUP_WORD: Final = re.compile(r"[A-Za-z0-9_.-]+")


def parse_sync_group(value: str | None, problems: list[str]) -> str | None:
    """`--sync-group NAME`: a word (letters, digits, '-', '_', '.'), as ifvip-sync-group."""
    if value is None:
        return None
    if SYNC_GROUP_WORD.fullmatch(value) is None:
        problems.append(f"--sync-group: '{value}' is not a word (letters, digits, '-', '_', '.')")
        return None
    return value


def parse_vips(texts: Sequence[str], links: Sequence[str] | None, problems: list[str]) -> list[Vip]:
    """`--vip ADDRESS/LEN[@DEV]` values; a DEV that does not exist is refused now, not at
    the first MASTER (`links`: the interface names that exist; None: unchecked)."""
    parsed: list[Vip] = []
    for text in texts:
        try:
            vip = Vip.parse(text, default_len=None)
        except ValueError:
            problems.append(f"--vip: '{text}' is not ADDRESS/LEN[@DEV]")
            continue
        if vip.device is not None and links is not None and vip.device not in links:
            problems.append(f"--vip: {text}: no such interface '{vip.device}'")
            continue
        parsed.append(vip)
    return parsed


def managed_problems(defn: InterfacesFile, path: str, manage: Sequence[str]) -> list[str]:
    """`--manage NAME` must name stanzas of the file (MASTER would otherwise add nothing)."""
    return [f"--manage: no stanza '{name}' in {path}" for name in manage if not defn.stanzas(name)]


def read_interfaces(path: str) -> InterfacesFile:
    """The `--interfaces` file, read for `ifvip run`; one that cannot be read, or has
    errors, is a ConfigProblems (not "no stanza has ucarp-vid")."""
    from ifvip.interfaces.loader import load  # noqa: PLC0415 - the parser, when needed

    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigProblems([f"--interfaces: cannot read {path}: {exc.strerror}"]) from None
    defn = load(path)
    if defn.errors:
        raise ConfigProblems([str(e) for e in defn.errors])
    return defn


@dataclass(frozen=True)
class HostAddress:
    """An address the kernel has at start-up: on which link, and whether it is permanent
    (no lifetime: configured by the host, not a VIP added with a lifetime)."""

    link: str
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    permanent: bool
    ifvip: bool = False  # tagged as an ifvip VIP (journal.VIP_PROTO): a leftover, not the host's


def host_problems(
    *,
    interface: str,
    srcip: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
    vips: Sequence[Vip],
    addresses: Sequence[HostAddress],
    ours: Collection[str] = (),
) -> list[str]:
    """What the kernel's addresses at start-up say against a group (pure: the caller reads
    them once, before anything is touched):

    - a VIP ifvip adds and deletes itself (`vips`: not a script's) that is a permanent
      address of the host (not one an ifvip journal in the state directory lists, `ours`:
      "ADDRESS/LEN", nor one the kernel says an ifvip added): BACKUP and exit would delete
      the host's own address;
    - `srcip` (given: CARP's -s) that is not an address of `interface`: adverts could not
      leave from it (ucarp refuses it too)."""
    problems = []
    for vip in vips:
        for host in addresses:
            if (
                host.permanent
                and not host.ifvip
                and host.address.ip == vip.interface.ip
                and str(vip.interface) not in ours
                and str(host.address) not in ours
            ):
                problems.append(
                    f"--vip: {vip.interface.ip} is already an address of {host.link} (the "
                    "host's own: ifvip would delete it on BACKUP and at exit)"
                )
                break
    if srcip is not None and not any(
        h.link == interface and h.address.ip == srcip for h in addresses
    ):
        problems.append(f"--srcip: {srcip} is not an address of {interface}")
    return problems


# ------------------------------------------------------------------------- reload (SIGHUP)

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class GroupDiff(Generic[K]):
    """What a reload does, by group identity (protocol, interface, vhid/vrid):

    - `unchanged`: same identity, equal definition: keeps running untouched;
    - `changed`: same identity, another definition: retired gracefully, then started anew;
    - `removed`: retired gracefully; `added`: started (as BACKUP, like every start).
    Each tuple keeps the order of the configuration it comes from."""

    unchanged: tuple[K, ...] = ()
    changed: tuple[K, ...] = ()
    removed: tuple[K, ...] = ()
    added: tuple[K, ...] = ()

    @property
    def idle(self) -> bool:
        return not (self.changed or self.removed or self.added)

    def summary(self) -> str:
        """`2 unchanged, 1 changed (vhid 42 on eth0), ...` for the reload's log line."""
        parts = []
        for label, keys in (
            ("unchanged", self.unchanged),
            ("changed", self.changed),
            ("removed", self.removed),
            ("added", self.added),
        ):
            shown = ", ".join(str(k) for k in keys)  # launch.GroupKey: "vhid 42 on eth0"
            parts.append(f"{len(keys)} {label}" + (f" ({shown})" if shown else ""))
        return "; ".join(parts)


def diff_groups(old: Mapping[K, object], new: Mapping[K, object]) -> GroupDiff[K]:
    """Compare two configurations, each a mapping of group identity → definition (any
    value with equality: a frozen config, with its checks and routing). Passwords compare
    by value, so a new password is a change."""
    return GroupDiff(
        unchanged=tuple(k for k in old if k in new and old[k] == new[k]),
        changed=tuple(k for k in new if k in old and old[k] != new[k]),
        removed=tuple(k for k in old if k not in new),
        added=tuple(k for k in new if k not in old),
    )


class GroupSettings(Protocol):
    """A group's configuration, of either protocol, as launch.py and the reload see it:
    the protocol it names (a key of protocols.PROTOCOLS), its number (vhid, vrid), its group
    name (`vhid 42`: the speaker's, --check-group's), its interface, VIPs and sync group."""

    protocol: ClassVar[str]

    @property
    def interface(self) -> str: ...

    @property
    def number(self) -> int: ...

    @property
    def group_name(self) -> str: ...

    @property
    def vips(self) -> tuple[Vip, ...]: ...

    @property
    def sync_group(self) -> str | None: ...

    @property
    def needs_engine(self) -> bool: ...  # MASTER means ifup/ifdown of stanzas
