"""What MASTER and BACKUP mean for a group: a `Role` that brings things up and takes them down.

In the order of precedence of `ifvip run` (issue 4):

1. `--interfaces FILE --manage LOGICAL`: `EngineRole` runs `ifup LOGICAL` on MASTER and
   `ifdown LOGICAL` (in reverse order) on BACKUP and at exit, through an `InterfacesEngine`
   (the in-process ifup/ifdown engine);
2. a group declared by Debian's `ucarp-*` options in the interfaces file: `EngineRole` with
   `IFACE:ucarp`, as Debian's vip-up/vip-down scripts do (or the stanza's own
   `ucarp-upscript`/`ucarp-downscript`);
3. `-u/-d` scripts: `ScriptRole`, called as ucarp calls them, `script IFACE VADDR [XPARAM]`,
   without a shell, with a fixed PATH and bounded in time;
4. otherwise `VipRole`: ifvip adds and removes the virtual addresses itself.

`VipRole` records what it adds in a small journal under the state directory (0700) before
adding it, so a later start removes what a crashed run left (`recover()`), and by default
adds each address with a finite valid/preferred lifetime that every sent advert extends
(`refresh()`): the kernel itself removes the VIP of a daemon that was SIGKILLed or stopped.

A MASTER action that fails raises: the VIP that cannot be added, the managed ifup that fails
(`ifup.ActionError`, its failing line), the up-script that exits non-zero or runs over its
time. The runtime hands that to the election as a fault: the group bows out and sits out a
backoff (election/events.py), so no host stays MASTER while serving nothing. `EngineRole` gives the
addresses its ifups add the same advert-refreshed lifetime as `VipRole`'s (daemon/ifup.py).

The runtime calls a role's coroutines one at a time per group, in the order the election
asked for them, never on the path that sends adverts. A user's hook never holds ifvip's own
work hostage: `Roles` adds VIPs (and policy routes) before it runs scripts or ifups, removes
them before it runs down-scripts or ifdowns, and the runtime cancels a MASTER job still
running when BACKUP (or shutdown) comes, which kills the script's process group (an ifup,
cancelled, undoes what it did), so the release never waits behind a hanging hook.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final, Protocol

from ifvip.daemon.children import run_child
from ifvip.daemon.journal import VIP_PROTO, VipJournal
from ifvip.daemon.settings import Vip
from ifvip.hookenv import HOOK_PATH
from ifvip.ifupdown.netlink import Kernel, KernelError

log = logging.getLogger("ifvip")

SCRIPT_TIMEOUT: Final = 60.0  # seconds a -u/-d script or an ifup hook may run (--script-timeout)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
GONE: Final = (errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENODEV, errno.ESRCH)


class Role(Protocol):
    """What a group does on its transitions; every method is idempotent."""

    async def recover(self) -> None:
        """At start, before joining as BACKUP: undo what a crashed earlier run left."""

    async def master(self) -> None: ...

    async def backup(self, initial: bool) -> None: ...

    async def refresh(self) -> None:
        """An advert went out while MASTER: extend whatever expires by itself."""

    def addresses(self) -> list[IPAddress]:
        """The addresses a gratuitous ARP / unsolicited NA announces."""
        ...


class InterfacesEngine(Protocol):
    """The ifup/ifdown engine, in-process: bring one logical interface up or down
    (daemon/ifup.py). `up` raises on failure, with the failing line; `lifetime` (seconds)
    bounds the life of the addresses it adds, and `refresh` extends it."""

    async def up(self, logical: str, lifetime: int | None = None) -> None: ...

    async def down(self, logical: str) -> None: ...

    async def refresh(self, logical: str, lifetime: int) -> None: ...


# ------------------------------------------------------------------------- journal


# ------------------------------------------------------------------------- roles


@dataclass
class VipRole:
    """ifvip adds and removes the virtual addresses itself (ucarp users' `ip addr` scripts)."""

    prefix: str  # "(vhid 42)"
    kernel: Kernel
    vips: Sequence[tuple[str, Vip]]  # (device, vip)
    journal: VipJournal
    lifetime: int | None = None  # seconds; None: permanent addresses
    holding: bool = False

    @classmethod
    def on(
        cls,
        prefix: str,
        kernel: Kernel,
        interface: str,
        vips: Sequence[Vip],
        journal: VipJournal,
        lifetime: int | None,
    ) -> VipRole:
        """The group's own VIPs, each on its `@DEV` or else on the group's interface."""
        return cls(prefix, kernel, [(v.device or interface, v) for v in vips], journal, lifetime)

    async def recover(self) -> None:
        for device, text in self.journal.read():
            address = ipaddress.ip_interface(text)
            try:
                await self.kernel.del_address(device, address)
                log.warning(
                    "%s removed %s from %s, left by an earlier run", self.prefix, text, device
                )
            except KernelError as exc:
                if exc.errno not in GONE:
                    log.error("%s cannot remove stale %s: %s", self.prefix, text, exc)
        self.journal.clear()

    async def master(self) -> None:
        # Journal first: a crash between the two leaves a journal entry, never a lost VIP.
        self.journal.write([(dev, str(vip.interface)) for dev, vip in self.vips])
        self.holding = True
        for device, vip in self.vips:
            try:
                await self._put(device, vip)
            except KernelError as exc:
                raise RuntimeError(f"cannot add {vip.interface} on {device}: {exc}") from None

    async def _put(self, device: str, vip: Vip) -> None:
        life = self.lifetime
        await self.kernel.add_address(
            device,
            vip.interface,
            label=device if vip.interface.version == 4 else None,
            preferred=life,
            valid=life,
            replace=True,
            nodad=vip.interface.version == 6,
            proto=VIP_PROTO,
        )

    async def refresh(self) -> None:
        if not self.holding or self.lifetime is None:
            return
        for device, vip in self.vips:
            try:
                await self._put(device, vip)
            except KernelError as exc:
                log.debug("%s cannot refresh %s on %s: %s", self.prefix, vip.interface, device, exc)

    async def backup(self, initial: bool) -> None:
        self.holding = False
        for device, vip in self.vips:
            try:
                await self.kernel.del_address(device, vip.interface)
            except KernelError as exc:
                if exc.errno not in GONE:
                    log.error("%s cannot remove %s: %s", self.prefix, vip.interface, exc)
        self.journal.clear()

    def addresses(self) -> list[IPAddress]:
        return [vip.interface.ip for _, vip in self.vips]


@dataclass
class ScriptRole:
    """ucarp's `-u/-d`: `script IFACE VADDR [XPARAM]`, run as a child, never blocking adverts."""

    prefix: str
    interface: str
    addr: str
    upscript: str | None
    downscript: str | None
    xparam: str | None = None
    timeout: float = SCRIPT_TIMEOUT
    hook: ClassVar[bool] = True  # a user's program: runs after ifvip's own work

    async def recover(self) -> None:
        return None

    async def refresh(self) -> None:
        return None

    async def master(self) -> None:
        if self.upscript:
            await self._run(self.upscript)  # a failure is the group's fault (see above)

    async def backup(self, initial: bool) -> None:
        if self.downscript:
            try:
                await self._run(self.downscript)
            except RuntimeError as exc:
                log.error("%s %s", self.prefix, exc)

    def addresses(self) -> list[IPAddress]:
        return [ipaddress.ip_address(self.addr)]

    async def _run(self, path: str) -> None:
        argv = [path, self.interface, self.addr]
        if self.xparam is not None:
            argv.append(self.xparam)
        env = {**os.environ, "PATH": HOOK_PATH}
        try:
            code = await run_child(argv, env=env, timeout=self.timeout)
        except OSError as exc:
            raise RuntimeError(f"cannot run {path}: {exc.strerror}") from None
        except asyncio.CancelledError:
            log.warning("%s %s was still running and was killed", self.prefix, path)
            raise
        if code is None:
            raise RuntimeError(f"{path} ran over {self.timeout:g} s and was killed")
        if code != 0:
            raise RuntimeError(f"{path} exited with {code}")


@dataclass
class EngineRole:
    """ifup the managed stanzas on MASTER, ifdown them (last first) on BACKUP and at exit.

    The addresses the ifups add live `lifetime` seconds unless an advert refreshes them.
    After a silence longer than that (a frozen daemon that is master again), some may have
    expired and taken routes with them: the stanzas are brought down and up again."""

    prefix: str
    engine: InterfacesEngine
    logicals: Sequence[str]
    announce: Sequence[IPAddress] = ()
    lifetime: int | None = None  # seconds; None: permanent addresses
    hook: ClassVar[bool] = True  # ifup runs the stanza's hooks: after ifvip's own work
    _refreshed: float | None = None  # monotonic time of the last ifup or refresh

    async def recover(self) -> None:
        return None

    async def refresh(self) -> None:
        if self._refreshed is None or self.lifetime is None:
            return
        if time.monotonic() - self._refreshed >= self.lifetime:
            log.warning(
                "%s silent for longer than the addresses' lifetime: bringing the managed "
                "stanzas down and up again",
                self.prefix,
            )
            await self.backup(False)
            await self.master()
            return
        for logical in self.logicals:
            await self.engine.refresh(logical, self.lifetime)
        self._refreshed = time.monotonic()

    async def master(self) -> None:
        # One failing stanza fails the MASTER action: the group bows out and its BACKUP
        # step takes down what the stanzas before it brought up.
        for logical in self.logicals:
            await self.engine.up(logical, self.lifetime)
        self._refreshed = time.monotonic()

    async def backup(self, initial: bool) -> None:
        self._refreshed = None
        for logical in reversed(self.logicals):
            try:
                await self.engine.down(logical)
            except Exception as exc:
                log.error("%s ifdown %s failed: %s", self.prefix, logical, exc)

    def addresses(self) -> list[IPAddress]:
        return list(self.announce)


def is_hook(role: Role) -> bool:
    """Whether a role runs a user's program (script, ifup hooks), which may hang."""
    return bool(getattr(role, "hook", False))


@dataclass
class Roles:
    """Several roles as one: up in order, down in reverse order, except that when ifvip adds
    VIPs itself its own parts (VIPs, routes) come before the hooks both ways: a hanging hook
    delays neither the VIP on MASTER nor its release on BACKUP."""

    parts: Sequence[Role] = field(default_factory=list)

    @staticmethod
    def of(parts: Sequence[Role]) -> Role:
        """One part as itself, several as one `Roles`."""
        return parts[0] if len(parts) == 1 else Roles(parts)

    def leaves(self) -> Iterator[Role]:
        for part in self.parts:
            if isinstance(part, Roles):
                yield from part.leaves()
            else:
                yield part

    def _ordered(self, *, up: bool) -> list[Role]:
        leaves = list(self.leaves())
        if not up:
            leaves.reverse()
        if not any(isinstance(p, VipRole) for p in leaves):
            return leaves  # the hooks bring the address up: what follows them needs it
        return [p for p in leaves if not is_hook(p)] + [p for p in leaves if is_hook(p)]

    async def recover(self) -> None:
        for part in self.leaves():
            await part.recover()

    async def master(self) -> None:
        for part in self._ordered(up=True):
            await part.master()

    async def backup(self, initial: bool) -> None:
        for part in self._ordered(up=False):
            await part.backup(initial)

    async def refresh(self) -> None:
        for part in self.leaves():
            await part.refresh()

    def addresses(self) -> list[IPAddress]:
        seen: list[IPAddress] = []
        for part in self.leaves():
            seen += [a for a in part.addresses() if a not in seen]
        return seen
