"""What MASTER means for a VRRP group: managed stanzas, -u/-d scripts, ifvip's own VIPs."""

from __future__ import annotations

from ifvip.daemon.ifup import EngineFactory
from ifvip.daemon.journal import RunStateDir, netns_id
from ifvip.daemon.roles import SCRIPT_TIMEOUT, EngineRole, Role, Roles, ScriptRole, VipRole
from ifvip.daemon.settings import vip_lifetime
from ifvip.daemon.speaker import Started
from ifvip.daemon.vrrp.config import VrrpConfig
from ifvip.daemon.vrrp.speaker import VrrpSpeaker
from ifvip.ifupdown.netlink import Kernel


def vrrp_role(
    config: VrrpConfig,
    kernel: Kernel,
    state: RunStateDir,
    engines: EngineFactory | None = None,
    script_timeout: float = SCRIPT_TIMEOUT,
) -> Role:
    """What MASTER means: ifup --manage stanzas, -u/-d scripts (bounded by
    `--script-timeout`, as CARP's), and ifvip's own VIPs."""
    prefix = f"({config.group_name})"
    parts: list[Role] = []
    if config.manage:
        assert config.interfaces_file is not None and engines is not None
        parts.append(
            EngineRole(
                prefix,
                engines(config.interfaces_file),
                config.manage,
                config.addresses(),
                vip_lifetime(config),
            )
        )
    if config.upscript or config.downscript:
        parts.append(
            ScriptRole(
                prefix,
                config.interface,
                str(config.vips[0].interface.ip),
                config.upscript,
                config.downscript,
                config.xparam,
                script_timeout,
            )
        )
    key = f"vrrp.{netns_id()}.{config.interface}.{config.family}.{config.vrid}"
    journal = state.journal(key)
    parts.append(
        VipRole.on(prefix, kernel, config.interface, config.vips, journal, vip_lifetime(config))
    )
    return Roles.of(parts)


def start(
    config: VrrpConfig,
    kernel: Kernel,
    state: RunStateDir,
    engines: EngineFactory,
    script_timeout: float = SCRIPT_TIMEOUT,
) -> Started:
    """A VRRP group's speaker and role (protocols.PROTOCOLS["vrrp"])."""
    role = vrrp_role(config, kernel, state, engines, script_timeout)
    return Started(VrrpSpeaker(config), role)
