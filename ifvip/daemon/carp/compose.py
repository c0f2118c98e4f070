"""`ifvip run`'s options → CARP groups: from the command line (ucarp's options) or from the
`ucarp-*` stanzas of an interfaces file, with the checks against the file and the host.
`from_file` gives the groups of a file alone (launch.build_plan, beside VRRP's)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ifvip.daemon import host
from ifvip.daemon.carp.config import (
    GroupConfig,
    build_carp_group,
    carp_groups_from_interfaces,
    vhid_in_file,
    warn_debian_ucarp_hook,
)
from ifvip.daemon.ifup import engine_factory
from ifvip.daemon.operations import Composed, operations_and_policy
from ifvip.daemon.settings import (
    ConfigProblems,
    host_problems,
    keywords_for,
    managed_problems,
    read_interfaces,
)

if TYPE_CHECKING:
    from ifvip.interfaces.model import InterfacesFile


def compose(o: Mapping[str, Any], links: list[str]) -> Composed:
    """The CARP groups of these options (protocols.PROTOCOLS["carp"]); ConfigProblems."""
    interfaces_file, manage, vhid = o["interfaces_file"], o["manage"], o["vhid"]
    configs: list[GroupConfig]
    defn: Any = read_interfaces(interfaces_file) if interfaces_file else None
    if interfaces_file and not manage:
        assert defn is not None
        given = int(vhid) if vhid is not None and vhid.strip().isdigit() else None
        if given is not None:  # a -v beside the file's groups: which one is meant?
            problems = vhid_in_file(defn, interfaces_file, o["interface"], given)
            if problems:
                raise ConfigProblems(problems)
        configs = carp_groups_from_interfaces(defn, interfaces_file, links=links)
        if not configs:
            raise ConfigProblems([f"--interfaces: no stanza in {interfaces_file} has ucarp-vid"])
        warn_debian_ucarp_hook(configs)
    else:
        iface, source = o["interface"], o["srcip"]
        if not iface or not source:
            from ifvip.daemon.runtime import discover_defaults  # noqa: PLC0415

            if not iface:
                route_if, first = asyncio.run(discover_defaults())
                iface = route_if
                source = source or first
            elif iface in links:
                source = host.first_address(iface)
        configs = [
            build_carp_group(
                **keywords_for(build_carp_group, o, but=("interface", "srcip", "vips")),
                interface=iface,
                srcip=source,
                vips=[v for text in o["vips"] for v in text.split()],
                links=links,
                lifetime=o["vip_lifetime"],
            )
        ]
    if defn is not None and interfaces_file and manage:
        problems = managed_problems(defn, interfaces_file, manage)
        problems += vhid_in_file(defn, interfaces_file, configs[0].interface, configs[0].vhid)
        if problems:
            raise ConfigProblems(problems)
    engines = engine_factory(o["ifstate_dir"], o["script_timeout"])
    if any(c.needs_engine for c in configs):
        for path in {c.interfaces_file for c in configs if c.interfaces_file}:
            engines(path)  # a missing engine is a configuration problem, found up front
    state_dir = o["state_dir"]
    ops, policy = operations_and_policy(o, "carp", state_dir, links, [c.vips for c in configs])
    # Last, what the kernel has (read once, nothing changed): the host's own addresses.
    if problems := host_checks(configs, state_dir):
        raise ConfigProblems(problems)
    return Composed(tuple(configs), ops, policy, engines)


def host_checks(
    configs: Sequence[GroupConfig], state_dir: str, *, named: bool = False
) -> list[str]:
    """What the kernel's addresses say against these groups (read once, nothing changed);
    each problem names its group when there are several (`named`: always)."""
    problems: list[str] = []
    addresses, ours = host.host_addresses(), host.journaled(state_dir)
    for c in configs:
        found = host_problems(
            interface=c.interface,
            srcip=c.srcip,
            vips=c.added_vips,  # a script's VIP, up since the last run, is not refused
            addresses=addresses,
            ours=ours,
        )
        label = f"({c.name} on {c.interface})" if named else f"({c.name})"
        problems += [f"{label} {p}" for p in found] if named or len(configs) > 1 else found
    return problems


def from_file(
    defn: InterfacesFile,
    path: str,
    links: list[str],
    state_dir: str,
    only: Collection[str] | None = None,
) -> list[Any]:
    """The CARP groups of the file's `ucarp-*` stanzas (none: an empty list), checked
    against the host (protocols.PROTOCOLS["carp"].from_file); ConfigProblems."""
    configs = carp_groups_from_interfaces(defn, path, links=links, only=only)
    if not configs:
        return []
    warn_debian_ucarp_hook(configs)
    if problems := host_checks(configs, state_dir, named=True):
        raise ConfigProblems(problems)
    return list(configs)
