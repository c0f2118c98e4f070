"""`ifvip run --protocol vrrp`'s options → one VRRP group (keepalived's vrrp_instance), with
the checks against the interfaces file and the host; `from_file` gives the groups of the
`vrrp-*` stanzas of an interfaces file (launch.build_plan, beside CARP's)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ifvip.daemon import host
from ifvip.daemon.ifup import engine_factory
from ifvip.daemon.operations import Composed, operations_and_policy
from ifvip.daemon.settings import (
    ConfigProblems,
    host_problems,
    keywords_for,
    managed_problems,
    read_interfaces,
)
from ifvip.daemon.vrrp.config import VrrpConfig, build_vrrp_group, vrrp_groups_from_interfaces
from ifvip.daemon.vrrp.discover import configure

if TYPE_CHECKING:
    from ifvip.interfaces.model import InterfacesFile


def compose(o: Mapping[str, Any], links: list[str]) -> Composed:
    """The VRRP group of these options (protocols.PROTOCOLS["vrrp"]); ConfigProblems."""
    if o["password"] or o["passfile"] or o["addr"]:
        raise ConfigProblems(["-p/-o/-a are CARP's; VRRP takes --auth-pass and --vip"])
    interfaces_file, manage = o["interfaces_file"], o["manage"]
    vrrp = configure(
        **keywords_for(build_vrrp_group, o, but=("interface", "srcip", "vips")),
        interface=o["interface"],
        srcip=o["srcip"],
        vips=o["vips"],
        links=links,
        vrid=o["vhid"],  # -v/--vhid/--vrid
        version=o["vrrp_version"],
        checksum=o["vrrp_checksum"],
        lifetime=o["vip_lifetime"],
    )
    if interfaces_file:
        managed = read_interfaces(interfaces_file)
        if problems := managed_problems(managed, interfaces_file, manage):
            raise ConfigProblems(problems)
    engines = engine_factory(o["ifstate_dir"], o["script_timeout"]) if manage else None
    if engines is not None and interfaces_file:
        engines(interfaces_file)
    state_dir = o["state_dir"]
    ops, policy = operations_and_policy(o, "vrrp", state_dir, links, [vrrp.vips])
    if problems := host_checks([vrrp], state_dir):
        raise ConfigProblems(problems)
    return Composed((vrrp,), ops, policy, engines)


def host_checks(configs: Sequence[VrrpConfig], state_dir: str, *, named: bool = False) -> list[str]:
    """What the kernel's addresses say against these groups (read once, nothing changed):
    a VIP that is the host's own (but the address owner's, priority 255: RFC 5798)."""
    checked = [c for c in configs if c.priority != 255]
    if not checked:
        return []
    problems: list[str] = []
    addresses, ours = host.host_addresses(), host.journaled(state_dir)
    for c in checked:
        found = host_problems(
            interface=c.interface, srcip=None, vips=c.vips, addresses=addresses, ours=ours
        )
        problems += [f"({c.group_name} on {c.interface}) {p}" for p in found] if named else found
    return problems


def from_file(
    defn: InterfacesFile,
    path: str,
    links: list[str],
    state_dir: str,
    only: Collection[str] | None = None,
) -> list[Any]:
    """The VRRP groups of the file's `vrrp-*` stanzas (none: an empty list), checked
    against the host (protocols.PROTOCOLS["vrrp"].from_file); ConfigProblems."""
    configs = vrrp_groups_from_interfaces(defn, path, links, build=configure, only=only)
    if problems := host_checks(configs, state_dir, named=True):
        raise ConfigProblems(problems)
    return list(configs)
