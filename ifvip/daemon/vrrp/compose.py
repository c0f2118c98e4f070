"""`ifvip run --protocol vrrp`'s options → one VRRP group (keepalived's vrrp_instance), with
the checks against the interfaces file and the host."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ifvip.daemon import host
from ifvip.daemon.ifup import engine_factory
from ifvip.daemon.operations import operations_and_policy
from ifvip.daemon.settings import (
    Composed,
    ConfigProblems,
    host_problems,
    managed_problems,
    read_interfaces,
)
from ifvip.daemon.vrrp.discover import configure


def compose(o: Mapping[str, Any], links: list[str]) -> Composed:
    """The VRRP group of these options (launch.PROTOCOLS["vrrp"]); ConfigProblems."""
    if o["password"] or o["passfile"] or o["addr"]:
        raise ConfigProblems(["-p/-o/-a are CARP's; VRRP takes --auth-pass and --vip"])
    interfaces_file, manage = o["interfaces_file"], o["manage"]
    vrrp = configure(
        interface=o["interface"],
        srcip=o["srcip"],
        vips=o["vips"],
        links=links,
        vrid=o["vhid"],
        priority=o["priority"],
        version=o["vrrp_version"],
        advert_int=o["advert_int"],
        nopreempt=o["nopreempt"],
        preempt_delay=o["preempt_delay"],
        auth_pass=o["auth_pass"],
        auth_pass_file=o["auth_pass_file"],
        unicast_peers=o["unicast_peers"],
        notify=o["notify"],
        instance=o["instance"],
        checksum=o["vrrp_checksum"],
        garp_master_repeat=o["garp_master_repeat"],
        garp_master_delay=o["garp_master_delay"],
        garp_master_refresh=o["garp_master_refresh"],
        upscript=o["upscript"],
        downscript=o["downscript"],
        xparam=o["xparam"],
        interfaces_file=interfaces_file,
        manage=manage,
        ignoreifstate=o["ignoreifstate"],
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
    if vrrp.priority != 255:  # the address owner has the VIPs as its own (RFC 5798)
        problems = host_problems(
            interface=vrrp.interface,
            srcip=None,
            vips=vrrp.vips,
            addresses=host.host_addresses(),
            ours=host.journaled(state_dir),
        )
        if problems:
            raise ConfigProblems(problems)
    return Composed((vrrp,), ops, policy, engines)
