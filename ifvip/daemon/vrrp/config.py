"""VRRP group configuration: keepalived-style options validated into a frozen `VrrpConfig`.

`ifvip run --protocol vrrp` takes keepalived's vrrp_instance settings as options
(`--vrid`, `--priority`, `--advert-int`, `--nopreempt`, `--preempt-delay`, `--auth-pass`,
`--unicast-peer`, `--notify`, the GARP counts and delays...) and the options CARP groups
share (`--vip`, `--interface`, `--srcip`, scripts, `--interfaces/--manage`, lifetimes).
Every problem is collected and named by its option (`ConfigProblems`, exit 78), with
keepalived's rules (specs/vrrp.md §2.5): v2 intervals in whole seconds 1..255, v3 in units
of 10 ms up to 40.95 s, passwords of at most 8 bytes and v2 only, `preempt_delay` not with
`nopreempt`, one address family per group, IPv6 only with VRRPv3. `own` (the interface's
addresses, found by the caller) and the source are filtered out of the unicast peers.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final

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
from ifvip.election.vrrp import VrrpParams, master_down_interval_us
from ifvip.errors import ConfigError
from ifvip.wire.inet import GROUP_V4, GROUP_V6
from ifvip.wire.vrrp import SECONDS_TEXT, V3_INTERVAL_MAX_CS, VRRP_AUTH_LEN, AuthType, ChecksumForm

if TYPE_CHECKING:
    from ifvip.interfaces.model import Iface, InterfacesFile

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class VrrpConfig:
    """One VRRP instance, as keepalived's vrrp_instance describes it (plus ifvip's options)."""

    interface: str
    srcip: IPAddress  # primary IPv4 or link-local IPv6 of the interface
    vrid: int
    vips: tuple[Vip, ...]  # advertised in this order
    priority: int = 100
    version: int = 3
    advert_int_cs: int = 100
    preempt: bool = True
    preempt_delay: float = 0.0
    password: Secret | None = None  # VRRPv2 PASS
    unicast_peers: tuple[IPAddress, ...] = ()
    notify: tuple[str, ...] = ()
    instance: str = ""  # keepalived's instance name, for notify (default VI_<vrid>)
    checksum: ChecksumForm = ChecksumForm.PSEUDO_HEADER
    garp_master_repeat: int = 5
    garp_master_delay: float = 5.0
    garp_master_refresh: float = 0.0
    upscript: str | None = None
    downscript: str | None = None
    xparam: str | None = None
    interfaces_file: str | None = None
    manage: tuple[str, ...] = ()
    ignoreifstate: bool = False
    lifetime: int | None = None  # None: automatic; 0: permanent
    sync_group: str | None = None  # members of one sync group are MASTER together or not at all
    label: str | None = None  # its name when `vrid N` is not unique in the process (launch)

    protocol: ClassVar[str] = "vrrp"  # protocols.PROTOCOLS

    @property
    def number(self) -> int:
        return self.vrid

    @property
    def group_name(self) -> str:
        """What the speaker, the logs, status, metrics and --check-group call it."""
        return self.label or f"vrid {self.vrid}"

    @property
    def needs_engine(self) -> bool:
        """Whether MASTER means ifup/ifdown of stanzas (--manage, vrrp-manage)."""
        return bool(self.manage)

    @property
    def name(self) -> str:
        """keepalived's instance name, for notify scripts."""
        return self.instance or f"VI_{self.vrid}"

    @property
    def family(self) -> int:
        return self.srcip.version

    @property
    def group(self) -> IPAddress:
        return GROUP_V4 if self.family == 4 else GROUP_V6

    @property
    def auth_type(self) -> int:
        return AuthType.PASS if self.password is not None else AuthType.NONE

    def addresses(self) -> tuple[IPAddress, ...]:
        return tuple(v.interface.ip for v in self.vips)

    def params(self) -> VrrpParams:
        return VrrpParams(
            vrid=self.vrid,
            own_ip=self.srcip,
            addresses=self.addresses(),
            priority=self.priority,
            version=self.version,
            advert_int_cs=self.advert_int_cs,
            preempt=self.preempt,
            preempt_delay=self.preempt_delay,
            garp_master_repeat=self.garp_master_repeat,
            garp_master_delay=self.garp_master_delay,
            garp_master_refresh=self.garp_master_refresh,
            unicast_peers=self.unicast_peers,
            synced=self.sync_group is not None,
        )

    def master_down_interval(self) -> float:
        return master_down_interval_us(self.version, self.priority, self.advert_int_cs) / 1e6


def _seconds(text: str, option: str, problems: list[str]) -> tuple[int, int] | None:
    """`text` as an exact number of seconds (wire/vrrp.SECONDS_TEXT), `(n, places)` for
    n / 10**places: 0.07 s is 7 centiseconds, where a float makes it 7.000000000000001
    (`decimal` would cost the idle daemon a third of a megabyte)."""
    match = SECONDS_TEXT.fullmatch(text)
    if match is None:
        problems.append(f"--{option}: '{text}' is not a number of seconds")
        return None
    whole, fraction = (match[1], match[2] or "") if match[1] is not None else ("0", match[3])
    return int(whole + fraction), len(fraction)


def _in_units(value: tuple[int, int], per_second: int) -> int | None:
    """`value` (from `_seconds`) counted in 1/per_second s, or None if not a whole count."""
    n, places = value
    scale: int = 10**places
    units, rest = divmod(n * per_second, scale)
    return None if rest else units


def _float(value: tuple[int, int]) -> float:
    n, places = value
    scale: int = 10**places
    return n / scale


def build_vrrp_group(
    *,
    interface: str | None,
    srcip: str | None,
    vrid: str | None,
    vips: Sequence[str],
    priority: str = "100",
    version: str | None = None,
    advert_int: str = "1",
    nopreempt: bool = False,
    preempt_delay: str | None = None,
    auth_pass: str | None = None,
    auth_pass_file: str | None = None,
    unicast_peers: Sequence[str] = (),
    notify: Sequence[str] = (),
    instance: str | None = None,
    checksum: str = "pseudo-header",
    garp_master_repeat: str = "5",
    garp_master_delay: str = "5",
    garp_master_refresh: str = "0",
    upscript: str | None = None,
    downscript: str | None = None,
    xparam: str | None = None,
    interfaces_file: str | None = None,
    manage: Sequence[str] = (),
    ignoreifstate: bool = False,
    lifetime: str | None = None,
    links: Sequence[str] | None = None,
    own: Sequence[str] = (),
    sync_group: str | None = None,
) -> VrrpConfig:
    """Validate keepalived-style options into a VrrpConfig; raise ConfigProblems with every issue.

    `srcip` is the advert source (the caller finds the interface's primary IPv4 or link-local
    IPv6 when the user gave none); `links` the interface names that exist (None: unchecked).
    """
    problems: list[str] = []
    check_interface(interface, links, problems)

    parsed = parse_vips(vips, links, problems)
    if not vips:
        problems.append("--vip: a VRRP group needs at least one virtual address")
    families = {v.interface.version for v in parsed}
    if len(families) > 1:
        problems.append(
            "--vip: IPv4 and IPv6 addresses in one group; keepalived needs one family per "
            "instance (run two groups)"
        )
    family = families.pop() if len(families) == 1 else 4

    source: IPAddress | None = None
    if not srcip:
        problems.append(
            "--srcip: no source address (the interface has no "
            + ("IPv4 address)" if family == 4 else "IPv6 link-local address)")
        )
    else:
        try:
            source = ipaddress.ip_address(srcip)
        except ValueError:
            problems.append(f"--srcip: '{srcip}' is not an IP address")
        else:
            if source.version != family:
                problems.append(f"--srcip: {source} is not of the VIPs' family (IPv{family})")
    number = None
    if vrid is None:
        problems.append("--vrid: the virtual router id is required (1..255)")
    else:
        number = parse_int(vrid, "vrid", 1, 255, problems, auto_base=True)
    prio = parse_int(priority, "priority", 1, 255, problems, auto_base=True)

    ver = 3 if family == 6 else 2
    if version is not None:
        ver_given = parse_int(version, "vrrp-version", 2, 3, problems, auto_base=True)
        if ver_given is not None:
            ver = ver_given
    if ver == 2 and family == 6:
        problems.append("--vrrp-version: VRRPv2 is IPv4 only; IPv6 needs version 3")

    interval_cs = 100
    seconds = _seconds(advert_int, "advert-int", problems)
    if seconds is not None:
        if ver == 2:
            whole = _in_units(seconds, 1)
            if whole is None or not 1 <= whole <= 255:
                problems.append(
                    f"--advert-int: {advert_int}: VRRPv2 intervals are whole seconds 1..255"
                )
            else:
                interval_cs = whole * 100
        else:
            cs = _in_units(seconds, 100)
            if cs is None or not 1 <= cs <= V3_INTERVAL_MAX_CS:
                problems.append(
                    f"--advert-int: {advert_int}: VRRPv3 intervals are 0.01..40.95 s in "
                    "units of 10 ms"
                )
            else:
                interval_cs = cs

    delay = 0.0
    if preempt_delay is not None:
        value = _seconds(preempt_delay, "preempt-delay", problems)
        if value is not None:
            delay = _float(value)
            if delay > 1000:
                problems.append(f"--preempt-delay: {preempt_delay} is over 1000 s")
        if nopreempt and delay:
            problems.append("--preempt-delay: incompatible with --nopreempt")
    if prio == 255 and (nopreempt or delay):
        problems.append("--nopreempt/--preempt-delay: the address owner (priority 255) preempts")

    secret = None
    if auth_pass is not None or auth_pass_file is not None:
        if auth_pass is not None and auth_pass_file is not None:
            problems.append("--auth-pass and --auth-pass-file are both given; use one")
        else:
            option = "auth-pass" if auth_pass is not None else "auth-pass-file"
            secret = read_password(auth_pass, auth_pass_file, option, problems)
            if secret is not None and not secret.value:
                problems.append(f"--{option}: the password is empty")
            elif secret is not None and len(secret.value) > VRRP_AUTH_LEN:
                problems.append(
                    f"--{option}: the password is longer than {VRRP_AUTH_LEN} bytes "
                    f"(keepalived truncates it; give the {VRRP_AUTH_LEN} bytes it uses)"
                )
        if ver == 3:
            problems.append("--auth-pass: VRRPv3 has no authentication (keepalived ignores it)")

    mine = {ipaddress.ip_address(a) for a in own}  # the interface's addresses (discovered)
    peers: list[IPAddress] = []
    for text in unicast_peers:
        for word in text.split():
            try:
                peer = ipaddress.ip_address(word)
            except ValueError:
                problems.append(f"--unicast-peer: '{word}' is not an IP address")
                continue
            if peer.version != family:
                problems.append(f"--unicast-peer: {peer} is not of the VIPs' family")
            elif peer != source and peer not in mine and peer not in peers:
                # Our own addresses are filtered out, as OpenShift does: one peer list
                # serves every node (osixia#33). IPv6 adverts to peers leave from the
                # link-local source named in IPV6_PKTINFO (transport.py), never a VIP.
                peers.append(peer)

    scripts = [("notify", n) for n in notify] + [("upscript", upscript), ("downscript", downscript)]
    check_actions(scripts, manage, interfaces_file, problems)
    try:
        form = ChecksumForm(checksum)
    except ValueError:
        problems.append(f"--vrrp-checksum: '{checksum}' is not pseudo-header or message-only")
        form = ChecksumForm.PSEUDO_HEADER
    repeat = parse_int(garp_master_repeat, "garp-master-repeat", 1, 255, problems, auto_base=True)
    garp_delay = _seconds(garp_master_delay, "garp-master-delay", problems)
    refresh = _seconds(garp_master_refresh, "garp-master-refresh", problems)
    life = parse_lifetime(lifetime, problems)
    sync = parse_sync_group(sync_group, problems)

    if problems:
        raise ConfigProblems(problems)
    assert source is not None and number is not None and prio is not None
    assert repeat is not None and garp_delay is not None and refresh is not None
    return VrrpConfig(
        interface=interface or "",
        srcip=source,
        vrid=number,
        vips=tuple(parsed),
        priority=prio,
        version=ver,
        advert_int_cs=interval_cs,
        preempt=not nopreempt,
        preempt_delay=delay,
        password=secret,
        unicast_peers=tuple(peers),
        notify=tuple(notify),
        instance=instance or "",
        checksum=form,
        garp_master_repeat=repeat,
        garp_master_delay=_float(garp_delay),
        garp_master_refresh=_float(refresh),
        upscript=upscript,
        downscript=downscript,
        xparam=xparam,
        interfaces_file=interfaces_file,
        manage=tuple(manage),
        ignoreifstate=ignoreifstate,
        lifetime=life,
        sync_group=sync,
    )


def link_local_first(config: VrrpConfig) -> str | None:
    """RFC 5798 §5.2.9's warning: with IPv6 the first VIP should be link-local."""
    if config.family == 6 and not config.vips[0].interface.ip.is_link_local:
        return (
            f"(vrid {config.vrid}) the first IPv6 virtual address {config.vips[0].interface.ip} "
            "should be link local (RFC 5798 §5.2.9)"
        )
    return None


# ------------------------------------------------------------- groups of an interfaces file

# Each vrrp-* option of a stanza → the keyword of build_vrrp_group it fills and the
# `ifvip run` option its problems name (`--advert-int: ...` becomes `vrrp-advert-int: ...`
# at the option's path:line:col). The yes/no and list options are converted below.
FILE_OPTIONS: Final[dict[str, tuple[str, str]]] = {
    "vrrp-id": ("vrid", "vrid"),
    "vrrp-address": ("vips", "vip"),
    "vrrp-priority": ("priority", "priority"),
    "vrrp-version": ("version", "vrrp-version"),
    "vrrp-advert-int": ("advert_int", "advert-int"),
    "vrrp-preempt": ("", "nopreempt"),
    "vrrp-nopreempt": ("nopreempt", "nopreempt"),
    "vrrp-preempt-delay": ("preempt_delay", "preempt-delay"),
    "vrrp-auth-pass-file": ("auth_pass_file", "auth-pass-file"),
    "vrrp-unicast-peer": ("unicast_peers", "unicast-peer"),
    "vrrp-srcip": ("", "srcip"),  # _source()
    "vrrp-manage": ("manage", "manage"),
    "vrrp-notify": ("notify", "notify"),
    "vrrp-instance": ("instance", "instance"),
    "vrrp-upscript": ("upscript", "upscript"),
    "vrrp-downscript": ("downscript", "downscript"),
    "vrrp-xparam": ("xparam", "xparam"),
    "vrrp-checksum": ("checksum", "vrrp-checksum"),
    "vrrp-garp-master-repeat": ("garp_master_repeat", "garp-master-repeat"),
    "vrrp-garp-master-delay": ("garp_master_delay", "garp-master-delay"),
    "vrrp-garp-master-refresh": ("garp_master_refresh", "garp-master-refresh"),
    "vrrp-vip-lifetime": ("lifetime", "vip-lifetime"),
    "vrrp-ignoreifstate": ("ignoreifstate", "ignoreifstate"),
}
# Problems of build_vrrp_group whose flag is not one of FILE_OPTIONS': the file options
# that may have given the value, in the order they are looked for on the stanza.
_ALSO: Final[dict[str, tuple[str, ...]]] = {
    "--passfile": ("vrrp-auth-pass-file",),
    "--auth-pass": ("vrrp-auth-pass-file",),
    "--auth-pass and --auth-pass-file are both given; use one": ("vrrp-auth-pass-file",),
    "--nopreempt/--preempt-delay": ("vrrp-nopreempt", "vrrp-preempt", "vrrp-preempt-delay"),
    "--preempt-delay": ("vrrp-preempt-delay",),
    "--notify/--upscript/--downscript": ("vrrp-notify", "vrrp-upscript", "vrrp-downscript"),
}
_BY_FLAG: Final = {f"--{cli}": (name,) for name, (_kw, cli) in FILE_OPTIONS.items()}
_LISTS: Final = ("vips", "unicast_peers", "manage", "notify")
_FLAGS: Final = ("nopreempt", "ignoreifstate")

VrrpBuilder = Callable[..., VrrpConfig]


def _located(problem: str, stanza: Iface) -> ConfigError:
    """`--advert-int: ...` of build_vrrp_group as `path:line:col: vrrp-advert-int: ...` at
    the option that gave the value (the stanza's line when no option did)."""
    flag, sep, rest = problem.partition(": ")
    names = _ALSO.get(problem) or _ALSO.get(flag) or _BY_FLAG.get(flag) or ()
    if not sep or problem in _ALSO:
        rest = problem
    word = rest.split(" ", 1)[0]  # a script's problem starts with its path
    for name in names:
        option = next((o for o in stanza.options if o.name == name), None)
        if option is None:
            continue
        if len(names) > 1 and flag.startswith("--notify") and word not in option.value.split():
            continue
        return at(option.origin, f"{name}: {rest}", stanza)
    return at(stanza.origin, problem, stanza)


def _stanza_options(stanza: Iface) -> dict[str, Any]:
    """build_vrrp_group's keywords from a stanza's vrrp-* options (values unchecked)."""
    given: dict[str, Any] = {}
    for name, (keyword, _cli) in FILE_OPTIONS.items():
        value = stanza.get(name)
        if value is None or not keyword:
            continue
        if keyword in _LISTS:
            given[keyword] = tuple(value.split())
        elif keyword in _FLAGS:
            given[keyword] = value == "yes"
        else:
            given[keyword] = value
    if stanza.get("vrrp-preempt") == "no":
        given["nopreempt"] = True
    return given


def _source(stanza: Iface) -> str | None:
    """The advert source a stanza gives: vrrp-srcip, else the address of an `inet static`
    stanza for IPv4 VIPs (as Debian's ucarp hook takes `address`); None: found on the host
    (the interface's primary IPv4 or its link-local IPv6)."""
    given = stanza.get("vrrp-srcip")
    if given:
        return given
    words = (stanza.get("vrrp-address") or "").split()
    first = words[0].partition("@")[0].partition("/")[0] if words else ""
    address = stanza.get("address")
    if stanza.family == "inet" and address and ":" not in first:
        return address.split("/", 1)[0]
    return None


def vrrp_groups_from_interfaces(
    defn: InterfacesFile,
    path: str,
    links: Sequence[str] | None = None,
    *,
    build: VrrpBuilder,
    only: Collection[str] | None = None,
) -> list[VrrpConfig]:
    """One VRRP group per stanza carrying `vrrp-id`, on the stanza's interface, with its
    vrrp-* options (ifvip-interfaces(5)) and `ifvip-sync-group`; MASTER adds the
    vrrp-address VIPs (and ifups vrrp-manage stanzas). Every problem is named
    `path:line:col` (ConfigProblems): the schema's (interfaces/check.py), then the
    group's. `build` makes the group from build_vrrp_group's keywords (the daemon passes
    discover.configure, which finds what the file leaves to the host: the link-local
    source of an IPv6 group, the interface's own addresses among the unicast peers).
    `only`: the stanzas of these interfaces alone (the others are neither read nor checked)."""
    groups, errors = read_vrrp_groups(defn, path, links, build=build, only=only)
    if errors:
        raise ConfigProblems([str(e) for e in errors])
    return groups


def file_errors(defn: InterfacesFile, path: str) -> list[ConfigError]:
    """What `ifvip run --interfaces` would refuse in the file's vrrp-* groups, read without
    the host (`ifvip check`; protocols.PROTOCOLS["vrrp"].file_checker)."""
    return read_vrrp_groups(defn, path, build=_unhosted)[1]


def _unhosted(
    *, srcip: str | None, vips: Sequence[str], auth_pass_file: str | None = None, **options: Any
) -> VrrpConfig:
    """build_vrrp_group with stand-ins for what the host has: the source it would find (an
    IPv6 group's link-local address) and the password file, which `run` reads there (a file
    this user may read is checked as `run` checks it)."""
    if not srcip:
        srcip = "fe80::1" if any(":" in v for v in vips) else "192.0.2.1"
    if auth_pass_file is not None and not os.access(auth_pass_file, os.R_OK):
        options["auth_pass"] = "unread"
        auth_pass_file = None
    return build_vrrp_group(srcip=srcip, vips=vips, auth_pass_file=auth_pass_file, **options)


def read_vrrp_groups(
    defn: InterfacesFile,
    path: str,
    links: Sequence[str] | None = None,
    *,
    build: VrrpBuilder,
    only: Collection[str] | None = None,
) -> tuple[list[VrrpConfig], list[ConfigError]]:
    """vrrp_groups_from_interfaces' groups and problems, each problem on its stanza."""
    from ifvip.interfaces.check import check_stanza  # noqa: PLC0415 - the schema's checks

    groups: list[VrrpConfig] = []
    errors: list[ConfigError] = []
    seen: dict[tuple[str, int], str] = {}
    for stanza in defn.ifaces:
        if stanza.get("vrrp-id") is None or stanza.builtin:
            continue
        if only is not None and stanza.name not in only:
            continue
        found = [e for e in check_stanza(stanza) if not e.warning]
        found = [e for e in found if "vrrp-" in e.msg or "ifvip-sync-group" in e.msg]
        if found:
            errors += found
            continue
        options = _stanza_options(stanza)
        try:
            group = build(
                interface=stanza.name,
                srcip=_source(stanza),
                links=links,
                interfaces_file=path,
                sync_group=stanza.get("ifvip-sync-group"),
                **options,
            )
        except ConfigProblems as exc:
            errors += [_located(p, stanza) for p in exc.problems]
            continue
        key = (group.interface, group.vrid)
        if key in seen:
            errors.append(
                at(
                    stanza.origin,
                    f"vrrp-id {key[1]} on {key[0]} is already the group of {seen[key]}"
                    " (one VRID per interface in one process)",
                    stanza,
                )
            )
            continue
        seen[key] = str(stanza.origin)
        missing = [m for m in group.manage if not defn.stanzas(m)]
        for name in missing:
            errors.append(at(stanza.origin, f"vrrp-manage: no stanza '{name}' in {path}", stanza))
        groups.append(group)
    return groups, errors
