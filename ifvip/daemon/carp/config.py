"""CARP's group configuration: ucarp-compatible options, validated before anything runs.

`ifvip run` takes ucarp 1.5.2's options with ucarp's names and meanings (specs/carp.md §4),
and `ucarp-*` stanzas of an interfaces file; this module turns them into frozen
`GroupConfig`s, or into a list of problems, each naming the option (ConfigProblems).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Final

from ifvip.daemon.settings import (
    ConfigProblems,
    Secret,
    Vip,
    at,
    check_actions,
    check_interface,
    parse_int,
    parse_lifetime,
    parse_sync_group,
    parse_vips,
    read_password,
)
from ifvip.election.carp import master_down_interval
from ifvip.errors import ConfigError
from ifvip.wire.carp import PASSWORD_MAX
from ifvip.wire.inet import GROUP_V4

if TYPE_CHECKING:
    from ifvip.interfaces.model import InterfacesFile

log = logging.getLogger("ifvip")


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
    sync_group: str | None = None  # members of one sync group are MASTER together or not at all
    label: str | None = None  # its name when `vhid N` is not unique in the process (launch)

    protocol: ClassVar[str] = "carp"  # protocols.PROTOCOLS

    @property
    def number(self) -> int:
        return self.vhid

    @property
    def name(self) -> str:
        return self.label or f"vhid {self.vhid}"

    group_name = name  # what the speaker, the logs, status, metrics and --check-group call it

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
    sync_group: str | None = None,
) -> GroupConfig:
    """Validate ucarp-style options into a GroupConfig; raise ConfigProblems with every issue.

    `links` is the list of interface names that exist (None: do not check).
    """
    problems: list[str] = []
    check_interface(interface, links, problems, hint=" (ucarp -i)")
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
    scripts = (("upscript", upscript), ("downscript", downscript))
    check_actions(scripts, manage, interfaces_file, problems)
    life = parse_lifetime(lifetime, problems)
    repeat = 0.0
    if garp_repeat:
        try:
            repeat = float(garp_repeat)
            if repeat < 0:
                raise ValueError
        except ValueError:
            problems.append(f"--garp-repeat: '{garp_repeat}' is not a number of seconds")
    sync = parse_sync_group(sync_group, problems)
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
        sync_group=sync,
    )


FALSE_WORDS: Final = frozenset({"no", "off", "false", "0"})


def carp_groups_from_interfaces(
    defn: InterfacesFile,
    path: str,
    *,
    links: Sequence[str] | None = None,
    only: Collection[str] | None = None,
) -> list[GroupConfig]:
    """One group per stanza carrying Debian's `ucarp-vid`, as /etc/network/if-up.d/ucarp runs
    ucarp (specs/carp.md §4): `-i IFACE -s ADDRESS -z -v VID -p PASSWORD -a VIP`, `-P` unless
    `ucarp-master` is no/off/false/0, and MASTER meaning `ifup IFACE:ucarp`; the stanza's
    `ifvip-sync-group` names its sync group. `only`: the stanzas of these interfaces alone
    (the others are neither read nor checked)."""
    groups, errors = read_carp_groups(defn, path, links=links, only=only)
    if errors:
        raise ConfigProblems([str(e) for e in errors])
    return groups


def file_errors(defn: InterfacesFile, path: str) -> list[ConfigError]:
    """What `ifvip run --interfaces` would refuse in the file's ucarp-* groups, read without
    the host (`ifvip check`; protocols.PROTOCOLS["carp"].file_checker)."""
    return read_carp_groups(defn, path)[1]


def read_carp_groups(
    defn: InterfacesFile,
    path: str,
    *,
    links: Sequence[str] | None = None,
    only: Collection[str] | None = None,
) -> tuple[list[GroupConfig], list[ConfigError]]:
    """carp_groups_from_interfaces' groups and problems, each problem on its stanza."""
    from ifvip.interfaces.check import check_stanza  # noqa: PLC0415 - the schema's checks

    groups: list[GroupConfig] = []
    errors: list[ConfigError] = []
    seen: dict[tuple[str, int], str] = {}  # (interface, vhid) -> where it was first
    for stanza in defn.ifaces:
        vid = stanza.get("ucarp-vid")
        if vid is None or stanza.family != "inet" or (only is not None and stanza.name not in only):
            continue
        where = str(stanza.origin)
        found = check_stanza(stanza)
        sync = [e for e in found if not e.warning and "ifvip-sync-group" in e.msg]
        if sync:
            errors += sync
            continue
        missing = [o for o in ("ucarp-vip", "ucarp-password") if stanza.get(o) is None]
        if missing:
            errors.append(at(stanza.origin, f"ucarp-vid needs {' and '.join(missing)}", stanza))
            continue
        scripts = stanza.get("ucarp-upscript") or stanza.get("ucarp-downscript")
        if not scripts and not defn.stanzas(f"{stanza.name}:ucarp"):
            # MASTER means `ifup IFACE:ucarp`: without that stanza it would add nothing.
            errors.append(
                at(
                    stanza.origin,
                    f"ucarp-vid needs an 'iface {stanza.name}:ucarp' stanza "
                    "(what MASTER brings up) or ucarp-upscript",
                    stanza,
                )
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
                    sync_group=stanza.get("ifvip-sync-group"),
                )
            )
        except ConfigProblems as exc:
            errors += [at(stanza.origin, p, stanza) for p in exc.problems]
            continue
        key = (groups[-1].interface, groups[-1].vhid)
        if key in seen:
            errors.append(
                at(
                    stanza.origin,
                    f"ucarp-vid {key[1]} on {key[0]} is already the group of {seen[key]}",
                    stanza,
                )
            )
        seen.setdefault(key, where)
    return groups, errors


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


DEBIAN_UCARP_HOOK: Final = "/etc/network/if-up.d/ucarp"


def warn_debian_ucarp_hook(configs: Sequence[GroupConfig], hook: str = DEBIAN_UCARP_HOOK) -> bool:
    """Say so when Debian's ucarp package is installed beside groups from `ucarp-*` stanzas:
    its if-up.d hook starts a ucarp of its own for each of them on `ifup IFACE`, a second
    speaker for the same VHID, holding the VIP against ifvip's. True if it warned."""
    if not configs or not os.access(hook, os.X_OK):
        return False
    names = ", ".join(f"{c.interface} (vhid {c.vhid})" for c in configs)
    log.warning(
        "%s (Debian's ucarp package) starts a second speaker for the ucarp-* stanzas of %s "
        "on every ifup: remove the ucarp package, or its hook, where ifvip runs them",
        hook,
        names,
    )
    return True
