"""Group configuration: ucarp-compatible options and environment, validated before anything runs.

`ifvip run` takes ucarp 1.5.2's options with ucarp's names and meanings (specs/carp.md §4),
ifvip's own (`--vip`, `--protocol`, `--interfaces`/`--manage`...), `IFVIP_*` variables for
all of them, and the `UCARP_*` variables of the kubernetize/ucarp image as aliases. This
module turns them into frozen `GroupConfig`s, or into a list of problems, each naming the
option, which the CLI prints before exiting 78 (EX_CONFIG) without touching the network.

Passwords are `Secret`s: they print as `***` everywhere (logs, status, errors, repr).
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Generic, Protocol, TypeVar

from ifvip.election.carp import master_down_interval
from ifvip.wire.carp import PASSWORD_MAX
from ifvip.wire.inet import GROUP_V4

if TYPE_CHECKING:
    from ifvip.interfaces.model import InterfacesFile

EX_CONFIG: Final = 78
VRRP2_PASSWORD_MAX: Final = 8
IFNAMSIZ: Final = 16


class ConfigProblems(Exception):  # noqa: N818 - a collection of problems, not one error
    """One or more configuration problems, each a line naming its option."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


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


@dataclass(frozen=True)
class GroupConfig:
    """One CARP group, as ucarp's options describe it (plus ifvip's additions)."""

    interface: str
    srcip: ipaddress.IPv4Address
    vhid: int
    password: Secret
    addr: str  # the VIP as typed: ucarp passes it to scripts verbatim ($2)
    vips: tuple[Vip, ...]
    advbase: int = 1
    advskew: int = 0
    deadratio: int = 3
    preempt: bool = False
    neutral: bool = False
    upscript: str | None = None
    downscript: str | None = None
    xparam: str | None = None
    ignoreifstate: bool = False
    nomcast: bool = False
    mcast: ipaddress.IPv4Address = GROUP_V4
    forge_mac: bool = False  # ucarp's 00:00:5e:00:00:VHID source instead of the real MAC
    interfaces_file: str | None = None
    manage: tuple[str, ...] = ()
    garp_repeat: float = 0.0
    explicit_vips: tuple[Vip, ...] = ()  # the --vip ones (added even beside scripts/stanzas)
    lifetime: int | None = None  # VIP lifetime in seconds; None: automatic; 0: permanent
    ucarp_stanza: str | None = None  # IFACE:ucarp of a group declared with ucarp-* options

    @property
    def name(self) -> str:
        return f"vhid {self.vhid}"

    @property
    def needs_engine(self) -> bool:
        """Whether MASTER means ifup/ifdown of stanzas (and not the stanza's own scripts)."""
        scripts = self.upscript is not None or self.downscript is not None
        return bool(self.manage) or (self.ucarp_stanza is not None and not scripts)

    @property
    def added_vips(self) -> tuple[Vip, ...]:
        """The VIPs ifvip itself adds on MASTER and deletes on BACKUP and at exit (the
        others are the scripts' or the managed stanzas' business), as launch.carp_role."""
        if self.needs_engine or self.upscript is not None or self.downscript is not None:
            return self.explicit_vips
        return self.vips

    def master_down_interval(self) -> float:
        return master_down_interval(self.advbase, self.deadratio, self.advskew)


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


def parse_int(
    value: str, option: str, low: int, high: int, problems: list[str], *, auto_base: bool = False
) -> int | None:
    """`value` as an integer in low..high (`auto_base`: 0x.. and 0o.. too), or None with a
    problem naming --option."""
    try:
        number = int(value, 0) if auto_base else int(value)
    except ValueError:
        problems.append(f"--{option}: '{value}' is not a number")
        return None
    if not low <= number <= high:
        problems.append(f"--{option}: {number} is out of range {low}..{high}")
        return None
    return number


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


def build_carp_group(
    *,
    interface: str | None,
    srcip: str | None,
    vhid: str | None,
    password: str | None,
    passfile: str | None,
    addr: str | None,
    vips: Sequence[str] = (),
    masklen: str | None = None,
    advbase: str = "1",
    advskew: str = "0",
    deadratio: str = "3",
    preempt: bool = False,
    neutral: bool = False,
    upscript: str | None = None,
    downscript: str | None = None,
    xparam: str | None = None,
    ignoreifstate: bool = False,
    nomcast: bool = False,
    mcast: str = str(GROUP_V4),
    forge_mac: bool = False,
    interfaces_file: str | None = None,
    manage: Sequence[str] = (),
    links: Sequence[str] | None = None,
    lifetime: str | None = None,
    garp_repeat: str | None = None,
    ucarp_stanza: str | None = None,
) -> GroupConfig:
    """Validate ucarp-style options into a GroupConfig; raise ConfigProblems with every issue.

    `links` is the list of interface names that exist (None: do not check).
    """
    problems: list[str] = []
    if not interface:
        problems.append("--interface: no interface given (ucarp -i)")
    elif len(interface.encode()) >= IFNAMSIZ:
        problems.append(f"--interface: '{interface}' is longer than 15 bytes")
    elif links is not None and interface not in links:
        problems.append(f"--interface: no such interface '{interface}'")
    source = None
    if not srcip:
        problems.append("--srcip: a persistent source address is required (ucarp -s)")
    else:
        try:
            source = ipaddress.IPv4Address(srcip)
        except ValueError:
            problems.append(f"--srcip: '{srcip}' is not an IPv4 address")
    number = None
    if vhid is None:
        problems.append("--vhid: the virtual host id is required (ucarp -v, 1..255)")
    else:
        number = parse_int(vhid, "vhid", 1, 255, problems, auto_base=True)
    secret = read_password(password, passfile, "pass", problems)
    if secret is None and not any(p.startswith(("--pass", "--passfile")) for p in problems):
        problems.append("--pass: a password is required (ucarp -p, or --passfile)")
    elif secret is not None:
        if not secret.value:
            problems.append("--pass: the password is empty")
        elif len(secret.value) > PASSWORD_MAX:
            problems.append(
                f"--pass: the password is longer than {PASSWORD_MAX} bytes (ucarp refuses it)"
            )
    prefix = None
    if masklen is not None:
        prefix = parse_int(masklen, "masklen", 0, 32, problems)
    parsed: list[Vip] = []
    if addr is not None:
        try:
            address = ipaddress.IPv4Address(addr)
            parsed.append(
                Vip(ipaddress.IPv4Interface(f"{address}/{prefix if prefix is not None else 32}"))
            )
        except ValueError:
            problems.append(f"--addr: '{addr}' is not an IPv4 address")
    parsed += parse_vips(vips, links, problems)
    if addr is None and not vips:
        problems.append("--addr: the virtual address is required (ucarp -a, or --vip)")
    base = parse_int(advbase, "advbase", 0, 255, problems, auto_base=True)
    skew = parse_int(advskew, "advskew", 0, 255, problems, auto_base=True)
    if base == 0 and skew == 0:
        problems.append("--advbase: advbase 0 with advskew 0 is not allowed (ucarp refuses it)")
    ratio = parse_int(deadratio, "deadratio", 1, 255, problems)
    try:
        group = ipaddress.IPv4Address(mcast)
        if not group.is_multicast:
            problems.append(f"--mcast: {mcast} is not a multicast address")
    except ValueError:
        problems.append(f"--mcast: '{mcast}' is not an IPv4 address")
        group = GROUP_V4
    for option, script in (("upscript", upscript), ("downscript", downscript)):
        if script is not None and not os.access(script, os.X_OK):
            problems.append(f"--{option}: {script} is not an executable file")
    if manage and not interfaces_file:
        problems.append("--manage: needs --interfaces FILE")
    life = None
    if lifetime is not None:
        life = parse_int(lifetime, "vip-lifetime", 0, 0xFFFFFFFE, problems)
    repeat = 0.0
    if garp_repeat:
        try:
            repeat = float(garp_repeat)
            if repeat < 0:
                raise ValueError
        except ValueError:
            problems.append(f"--garp-repeat: '{garp_repeat}' is not a number of seconds")
    if source is not None and source in {vip.interface.ip for vip in parsed}:
        problems.append(f"--addr: {source} is the source address (-s) itself, not a virtual one")
    if problems:
        raise ConfigProblems(problems)
    assert source is not None and number is not None and secret is not None
    assert base is not None and skew is not None and ratio is not None
    return GroupConfig(
        interface=interface or "",
        srcip=source,
        vhid=number,
        password=secret,
        addr=addr if addr is not None else str(parsed[0].interface.ip),
        vips=tuple(parsed),
        advbase=base,
        advskew=skew,
        deadratio=ratio,
        preempt=preempt,
        neutral=neutral,
        upscript=upscript,
        downscript=downscript,
        xparam=xparam,
        ignoreifstate=ignoreifstate,
        nomcast=nomcast,
        mcast=group,
        forge_mac=forge_mac,
        interfaces_file=interfaces_file,
        manage=tuple(manage),
        garp_repeat=repeat,
        explicit_vips=tuple(parsed[1:] if addr is not None else parsed),
        lifetime=life,
        ucarp_stanza=ucarp_stanza,
    )


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


FALSE_WORDS: Final = frozenset({"no", "off", "false", "0"})


def carp_groups_from_interfaces(
    defn: InterfacesFile, path: str, *, links: Sequence[str] | None = None
) -> list[GroupConfig]:
    """One group per stanza carrying Debian's `ucarp-vid`, as /etc/network/if-up.d/ucarp runs
    ucarp (specs/carp.md §4): `-i IFACE -s ADDRESS -z -v VID -p PASSWORD -a VIP`, `-P` unless
    `ucarp-master` is no/off/false/0, and MASTER meaning `ifup IFACE:ucarp`."""
    groups: list[GroupConfig] = []
    problems: list[str] = []
    seen: dict[tuple[str, int], str] = {}  # (interface, vhid) -> where it was first
    for stanza in defn.ifaces:
        vid = stanza.get("ucarp-vid")
        if vid is None or stanza.family != "inet":
            continue
        where = str(stanza.origin)
        missing = [o for o in ("ucarp-vip", "ucarp-password") if stanza.get(o) is None]
        if missing:
            problems.append(f"{where}: ucarp-vid needs {' and '.join(missing)}")
            continue
        scripts = stanza.get("ucarp-upscript") or stanza.get("ucarp-downscript")
        if not scripts and not defn.stanzas(f"{stanza.name}:ucarp"):
            # MASTER means `ifup IFACE:ucarp`: without that stanza it would add nothing.
            problems.append(
                f"{where}: ucarp-vid needs an 'iface {stanza.name}:ucarp' stanza "
                "(what MASTER brings up) or ucarp-upscript"
            )
            continue
        address = stanza.get("address")
        master = stanza.get("ucarp-master")
        nomcast = stanza.get("ucarp-nomcast")
        try:
            groups.append(
                build_carp_group(
                    interface=stanza.name,
                    srcip=address.split("/", 1)[0] if address else None,
                    vhid=vid,
                    password=stanza.get("ucarp-password"),
                    passfile=None,
                    addr=stanza.get("ucarp-vip"),
                    advbase=stanza.get("ucarp-advbase") or "1",
                    advskew=stanza.get("ucarp-advskew") or "0",
                    deadratio=stanza.get("ucarp-deadratio") or "3",
                    preempt=master is not None and master.lower() not in FALSE_WORDS,
                    nomcast=nomcast is not None and nomcast.lower() not in FALSE_WORDS,
                    xparam=stanza.get("ucarp-xparam"),
                    upscript=stanza.get("ucarp-upscript"),
                    downscript=stanza.get("ucarp-downscript"),
                    interfaces_file=path,
                    ucarp_stanza=f"{stanza.name}:ucarp",
                    links=links,
                )
            )
        except ConfigProblems as exc:
            problems += [f"{where}: {p}" for p in exc.problems]
            continue
        key = (groups[-1].interface, groups[-1].vhid)
        if key in seen:
            problems.append(
                f"{where}: ucarp-vid {key[1]} on {key[0]} is already the group of {seen[key]}"
            )
        seen.setdefault(key, where)
    if problems:
        raise ConfigProblems(problems)
    return groups


def managed_problems(defn: InterfacesFile, path: str, manage: Sequence[str]) -> list[str]:
    """`--manage NAME` must name stanzas of the file (MASTER would otherwise add nothing)."""
    return [f"--manage: no stanza '{name}' in {path}" for name in manage if not defn.stanzas(name)]


def vhid_in_file(defn: InterfacesFile, path: str, interface: str | None, vhid: int) -> list[str]:
    """A command-line group whose interface (None: any) and vhid a `ucarp-vid` stanza of
    the file also has: two speakers (Debian's ucarp hook runs one for the stanza) in one
    group, or, without --manage, a -v that the file's groups silently replace."""
    found = []
    for stanza in defn.ifaces:
        vid = stanza.get("ucarp-vid")
        if vid is None or interface not in (None, stanza.name):
            continue
        try:
            number = int(vid, 0)
        except ValueError:
            continue
        if number == vhid:
            found.append(
                f"--vhid: {vhid} on {stanza.name} is also the ucarp-vid of {stanza.origin} "
                f"in {path}"
            )
    return found


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
      "ADDRESS/LEN"): BACKUP and exit would delete the host's own address;
    - `srcip` (given: CARP's -s) that is not an address of `interface`: adverts could not
      leave from it (ucarp refuses it too)."""
    problems = []
    for vip in vips:
        for host in addresses:
            if (
                host.permanent
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
            shown = ", ".join(_key_text(k) for k in keys)
            parts.append(f"{len(keys)} {label}" + (f" ({shown})" if shown else ""))
        return "; ".join(parts)


def _key_text(key: Hashable) -> str:
    if isinstance(key, tuple) and len(key) == 3:
        protocol, interface, number = key
        return f"{'vrid' if protocol == 'vrrp' else 'vhid'} {number} on {interface}"
    return str(key)


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
