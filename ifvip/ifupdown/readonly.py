"""An ifup plan adapted to a read-only /proc/sys (Docker's default without --privileged).

Docker mounts /proc/sys read-only in a container that is not privileged, whatever its
capabilities: NET_ADMIN lets it add addresses, routes and links through netlink, but no
`echo 0 > /proc/sys/...` hook can run there. `adapt()` decides, before anything is applied:

- a hook that writes `net.ipv6.conf.IFACE.accept_dad` 0 exists for one effect, IPv6
  addresses on IFACE without duplicate address detection: the write is left out and that
  interface's addresses are added with `nodad` (the same effect, through netlink), with one
  warning naming the line;
- a write of the value the sysctl already has changes nothing: it is left out;
- a write that ifupdown's method tables allow to fail (`sysctl -q -e -w ...`) stays: it
  fails harmlessly;
- any other write to a read-only sysctl fails the ifup before anything is applied, with the
  line and the reason.

`adapt()` is pure: what is read-only and what a sysctl holds now are passed in.
`mounted_readonly()` and `current_value()` read them from the running system.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ifvip.ifupdown.plan import AddAddress, Plan, Step, WriteSysctl

PROC_SYS: Final = Path("/proc/sys")
ACCEPT_DAD: Final = "accept_dad"


@dataclass(frozen=True)
class Adapted:
    plan: Plan
    warnings: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()  # `path:line: command: reason`; the ifup must not start


def _dad_interface(op: WriteSysctl) -> str | None:
    """`net.ipv6.conf.eth1.accept_dad` = 0 → `eth1` (a `/` stands for a dot in a name)."""
    parts = op.name.split(".")
    if len(parts) != 5 or parts[:3] != ["net", "ipv6", "conf"] or parts[4] != ACCEPT_DAD:
        return None
    if op.value.strip() != "0" or parts[3] in ("all", "default"):
        return None
    return parts[3].replace("/", ".")


def adapt(
    plan: Plan,
    readonly: Callable[[str], bool],
    current: Callable[[str], str | None],
) -> Adapted:
    """The plan as it can run where `readonly(name)` sysctls cannot be written."""
    warnings: list[str] = []
    errors: list[str] = []
    nodad: set[str] = set()
    dropped: set[int] = set()
    for step in plan.steps():
        op = step.op
        if not isinstance(op, WriteSysctl) or op.ignore_failure or not readonly(op.name):
            continue  # (ifupdown's `sysctl -q -e -w` lines may fail: they stay as they are)
        if (current(op.name) or "").strip() == op.value.strip():
            dropped.add(id(step))
            continue
        interface = _dad_interface(op)
        if interface is not None:
            dropped.add(id(step))
            nodad.add(interface)
            warnings.append(
                f"{op.where()}: {op.render()}: /proc/sys is read-only: the addresses of "
                f"{interface} are added with nodad instead"
            )
            continue
        errors.append(f"{op.where()}: {op.render()}: /proc/sys is read-only")
    if errors or not (dropped or nodad):
        return Adapted(plan, tuple(warnings), tuple(errors))

    def keep(step: Step) -> Step | None:
        if id(step) in dropped:
            return None
        op = step.op
        if isinstance(op, AddAddress) and op.ifname in nodad and op.family == 6:
            return dataclasses.replace(step, op=dataclasses.replace(op, nodad=True))
        return step

    return Adapted(plan.rewritten(keep), tuple(warnings), ())


# ---------------------------------------------------------------- the running system


def sysctl_path(name: str) -> Path:
    """`net.ipv6.conf.eth0/5.accept_ra` → `/proc/sys/net/ipv6/conf/eth0.5/accept_ra`."""
    return PROC_SYS.joinpath(*(part.replace("/", ".") for part in name.split(".")))


def mounted_readonly(name: str) -> bool:
    """Whether the sysctl lies on a read-only mount (it need not exist yet: a link that a
    pre-up hook creates has no /proc/sys entry before it)."""
    path = sysctl_path(name)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def current_value(name: str) -> str | None:
    try:
        return sysctl_path(name).read_text().strip()
    except OSError:
        return None
