"""Policy routing on MASTER and `--nonlocal-bind`: the kernel state a VIP may need besides itself.

Policy routing (the kubernetize/ucarp image's `UCARP_RTABLE*`, for a container with its own
uplink): on MASTER, traffic sent from the VIP leaves through its own routing table.

===========================  ================================================================
``--rtable N``               routing table N (1..4294967295, not 253-255) for the VIP
``--rtable-network-length``  prefix of the VIP's network route in table N (default: the
                             VIP's own prefix length; ``UCARP_RTABLE_NETWORK_LENGTH``)
``--rtable-gateway ADDR``    a default route via ADDR in table N (``UCARP_GATEWAY``)
``--rule-priority P``        priority of the rule ``from VIP lookup N`` (``UCARP_RULE_PRIORITY``)
===========================  ================================================================

MASTER adds, in order (the image's vip-up): the rule `from VIP lookup N [priority P]`; when
the VIP's prefix is shorter than the host's, the kernel's connected route of the VIP's
network leaves the main table; table N gets `NETWORK/LEN dev IF scope link src VIP` and,
with a gateway, `default via GATEWAY`. BACKUP and exit remove exactly those again (the image
flushes the whole table; ifvip deletes only what it added).

`--nonlocal-bind` sets `net.ipv4.ip_nonlocal_bind` and `net.ipv6.ip_nonlocal_bind` to 1 at
start so a service can bind the VIP on every host (the Rancher image's advice for
HAProxy), and writes the previous values back at exit.

Both are plans of `ifupdown.plan` ops (pure), carried out by the ifupdown executor.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final, Protocol

from ifvip.daemon.settings import ConfigProblems, Vip, parse_int

if TYPE_CHECKING:  # the planner's ops load only when --rtable/--nonlocal-bind ask for them
    from ifvip.ifupdown.plan import Op, WriteSysctl

log = logging.getLogger("ifvip")

RESERVED_TABLES: Final = frozenset({0, 253, 254, 255})  # unspec, default, main, local
TABLE_MAX: Final = 2**32 - 1
RULE_PRIORITY_MAX: Final = 2**32 - 1
NONLOCAL_BIND: Final = ("net.ipv4.ip_nonlocal_bind", "net.ipv6.ip_nonlocal_bind")
ABSENT: Final = (errno.ENOENT, errno.ESRCH, errno.EADDRNOTAVAIL)
PRESENT: Final = (errno.EEXIST,)


@dataclass(frozen=True)
class PolicyRouting:
    table: int
    network_length: int | None = None
    gateway: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    priority: int | None = None


def parse_policy_options(
    *,
    rtable: str | None,
    network_length: str | None = None,
    gateway: str | None = None,
    rule_priority: str | None = None,
    vip: Vip | None = None,
) -> PolicyRouting | None:
    """Validate the policy-routing options (None when --rtable is not given)."""
    problems: list[str] = []
    if rtable is None:
        for option, value in (
            ("rtable-network-length", network_length),
            ("rtable-gateway", gateway),
            ("rule-priority", rule_priority),
        ):
            if value is not None:
                problems.append(f"--{option}: needs --rtable N")
        if problems:
            raise ConfigProblems(problems)
        return None
    table = parse_int(rtable, "rtable", 1, TABLE_MAX, problems)
    if table in RESERVED_TABLES:
        problems.append(f"--rtable: table {table} is the kernel's own (default, main or local)")
    bits = 128 if vip is not None and vip.interface.version == 6 else 32
    length = None
    if network_length is not None:
        length = parse_int(network_length, "rtable-network-length", 0, bits, problems)
    via = None
    if gateway is not None:
        try:
            via = ipaddress.ip_address(gateway)
        except ValueError:
            problems.append(f"--rtable-gateway: '{gateway}' is not an IP address")
        else:
            if vip is not None and via.version != vip.interface.version:
                problems.append(
                    f"--rtable-gateway: {via} and the VIP {vip.interface.ip} are not of one family"
                )
    priority = None
    if rule_priority is not None:
        priority = parse_int(rule_priority, "rule-priority", 0, RULE_PRIORITY_MAX, problems)
    if vip is None:
        problems.append("--rtable: needs a virtual address (--addr or --vip)")
    if problems:
        raise ConfigProblems(problems)
    assert table is not None
    return PolicyRouting(table, length, via, priority)


def policy_plan(policy: PolicyRouting, vip: Vip, device: str) -> tuple[list[Op], list[Op]]:
    """The ops MASTER applies and the ops BACKUP applies (in that order each)."""
    from ifvip.ifupdown.plan import AddRoute, AddRule, DelRoute, DelRule  # noqa: PLC0415

    interface = vip.interface
    family = interface.version  # plan ops take 4 or 6, as `ip -4`/`ip -6`
    host = f"{interface.ip}/{interface.max_prefixlen}"
    length = (
        policy.network_length if policy.network_length is not None else interface.network.prefixlen
    )
    network = ipaddress.ip_network(f"{interface.ip}/{length}", strict=False)
    rule = AddRule(family=family, priority=policy.priority, src=host, table=policy.table)
    subnet = AddRoute(
        family=family,
        dst=str(network),
        dev=device,
        table=policy.table,
        src=str(interface.ip),
        scope="link",
    )
    up: list[Op] = [rule]
    down: list[Op] = []
    if interface.network.prefixlen < interface.max_prefixlen:
        # The kernel added this with the address; the image's vip-up moves it to table N.
        up.append(
            DelRoute(
                family=family,
                dst=str(interface.network),
                dev=device,
                src=str(interface.ip),
                scope="link",
                proto=2,  # RTPROT_KERNEL
            )
        )
    up.append(subnet)
    if policy.gateway is not None:
        default = AddRoute(family=family, dst=None, gateway=str(policy.gateway), table=policy.table)
        up.append(default)
        down.append(
            DelRoute(family=family, dst=None, gateway=str(policy.gateway), table=policy.table)
        )
    down.append(
        DelRoute(
            family=family,
            dst=str(network),
            dev=device,
            table=policy.table,
            src=str(interface.ip),
            scope="link",
        )
    )
    down.append(DelRule(family=family, priority=policy.priority, src=host, table=policy.table))
    return up, down


class Applier(Protocol):
    async def apply(self, op: Op) -> Op: ...


def _errno(exc: Exception) -> int | None:
    code = getattr(exc, "errno", None)  # OpError and OSError both carry it
    return code if isinstance(code, int) else None


@dataclass
class PolicyRole:
    """A Role (daemon/roles.py) that adds the policy routing on MASTER, removes it on
    BACKUP/exit, and at start removes what a crashed run left. Put it after the VipRole
    in `Roles([...])`: the routes name the VIP as their source."""

    prefix: str
    executor: Applier
    up: Sequence[Op]
    down: Sequence[Op]

    async def _run(self, ops: Sequence[Op], tolerated: tuple[int, ...]) -> None:
        for op in ops:
            try:
                await self.executor.apply(op)
            except Exception as exc:  # OpError: each op is tried, errors are logged
                if _errno(exc) not in tolerated:
                    log.error("%s %s: %s", self.prefix, op.render().strip(), exc)

    async def recover(self) -> None:
        await self._run(self.down, ABSENT)

    async def master(self) -> None:
        await self._run(self.up, PRESENT + ABSENT)

    async def backup(self, initial: bool) -> None:
        await self._run(self.down, ABSENT)

    async def refresh(self) -> None:
        return None

    def addresses(self) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        return []


# ------------------------------------------------------------------------- --nonlocal-bind


def nonlocal_bind_plan() -> list[WriteSysctl]:
    """`--nonlocal-bind`: both families' ip_nonlocal_bind to 1."""
    from ifvip.ifupdown.plan import WriteSysctl  # noqa: PLC0415 - see TYPE_CHECKING

    return [WriteSysctl(name=name, value="1") for name in NONLOCAL_BIND]


def apply_sysctls(
    ops: Sequence[WriteSysctl], write: Callable[[str, str], str]
) -> list[WriteSysctl]:
    """Write each sysctl (`write(name, value) -> previous`, e.g. netlink.write_sysctl);
    return them with their previous values, ready for restore_sysctls()."""
    return [replace(op, previous=write(op.name, op.value)) for op in ops]


def restore_sysctls(applied: Sequence[WriteSysctl], write: Callable[[str, str], str]) -> None:
    """Write the previous values back, in reverse order (those that changed)."""
    from ifvip.ifupdown.plan import WriteSysctl  # noqa: PLC0415 - see TYPE_CHECKING

    for op in reversed(applied):
        undo = op.inverse()
        if isinstance(undo, WriteSysctl):
            write(undo.name, undo.value)


def policy_role(
    prefix: str, kernel: Any, policy: PolicyRouting, vip: Vip, device: str
) -> PolicyRole:
    """The PolicyRole of one group's first VIP, applied through the netlink executor."""
    from ifvip.ifupdown.executor import NetlinkExecutor  # noqa: PLC0415 - the one side effect

    up, down = policy_plan(policy, vip, vip.device or device)
    return PolicyRole(prefix, NetlinkExecutor(kernel), up, down)
