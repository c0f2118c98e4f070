"""What MASTER means for a CARP group, in issue 4's order of precedence: managed stanzas,
then the `IFACE:ucarp` stanza of a `ucarp-*` group, then -u/-d scripts, then ifvip's own
VIPs; `--vip` addresses given explicitly are always added.
"""

from __future__ import annotations

from ifvip.daemon.carp.config import GroupConfig
from ifvip.daemon.carp.speaker import CarpSpeaker
from ifvip.daemon.ifup import EngineFactory
from ifvip.daemon.journal import RunStateDir, netns_id
from ifvip.daemon.roles import SCRIPT_TIMEOUT, EngineRole, Role, Roles, ScriptRole, VipRole
from ifvip.daemon.settings import vip_lifetime
from ifvip.daemon.speaker import Started
from ifvip.ifupdown.netlink import Kernel


def carp_role(
    config: GroupConfig,
    kernel: Kernel,
    state: RunStateDir,
    engines: EngineFactory,
    script_timeout: float = SCRIPT_TIMEOUT,
) -> Role:
    prefix = f"({config.group_name})"
    parts: list[Role] = []
    if config.needs_engine:
        assert config.interfaces_file is not None
        logicals = config.manage or (config.ucarp_stanza or "",)
        addr = config.vips[0].interface.ip if config.vips else None
        announce = (addr,) if addr is not None else ()
        parts.append(
            EngineRole(
                prefix,
                engines(config.interfaces_file),
                tuple(logicals),
                announce,
                vip_lifetime(config),
            )
        )
    elif config.upscript or config.downscript:
        parts.append(_scripts(config, prefix, script_timeout))
    vips = config.vips if not parts else config.explicit_vips
    if vips:
        key = f"carp.{netns_id()}.{config.interface}.{config.vhid}"
        journal = state.journal(key)
        parts.append(
            VipRole.on(prefix, kernel, config.interface, vips, journal, vip_lifetime(config))
        )
    return Roles.of(parts)


def _scripts(config: GroupConfig, prefix: str, timeout: float) -> ScriptRole:
    return ScriptRole(
        prefix,
        config.interface,
        config.addr,
        config.upscript,
        config.downscript,
        config.xparam,
        timeout,
    )


def start(
    config: GroupConfig,
    kernel: Kernel,
    state: RunStateDir,
    engines: EngineFactory,
    script_timeout: float = SCRIPT_TIMEOUT,
) -> Started:
    """A CARP group's speaker and role (protocols.PROTOCOLS["carp"])."""
    role = carp_role(config, kernel, state, engines, script_timeout)
    return Started(CarpSpeaker(config), role, config.garp_repeat)
