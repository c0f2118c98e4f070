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

The runtime calls a role's coroutines one at a time per group, in the order the election
asked for them, never on the path that sends adverts.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from ifvip.daemon.config import Vip
from ifvip.ifupdown.netlink import Kernel, KernelError

log = logging.getLogger("ifvip")

SCRIPT_TIMEOUT: Final = 60.0
SCRIPT_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_STATE_DIR: Final = "/run/ifvip"

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
    """The ifup/ifdown engine, in-process: bring one logical interface up or down."""

    async def up(self, logical: str) -> None: ...

    async def down(self, logical: str) -> None: ...


# ------------------------------------------------------------------------- journal


@dataclass(frozen=True)
class StateDir:
    """ifvip's own state directory (default /run/ifvip), created 0700."""

    path: Path

    @classmethod
    def open(cls, path: str | os.PathLike[str] = DEFAULT_STATE_DIR) -> StateDir:
        state = cls(Path(path))
        state.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(state.path, 0o700)
        return state

    def journal(self, key: str) -> VipJournal:
        return VipJournal(self.path / f"vips.{key.replace('/', '.')}.json")


@dataclass(frozen=True)
class VipJournal:
    """The VIPs one group may have added, as [device, address/len] pairs; atomic writes."""

    path: Path

    def read(self) -> list[tuple[str, str]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable journal %s: %s", self.path, exc)
            return []
        return [(str(dev), str(address)) for dev, address in data]

    def write(self, entries: Sequence[tuple[str, str]]) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        # No fsync: the journal must outlive the process, not the machine (addresses do not
        # survive a reboot either), and the page cache survives a SIGKILL.
        with os.fdopen(fd, "w") as out:
            json.dump([list(e) for e in entries], out)
        os.replace(tmp, self.path)

    def clear(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


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
            await self._put(device, vip, first=True)

    async def _put(self, device: str, vip: Vip, *, first: bool) -> None:
        life = self.lifetime
        try:
            await self.kernel.add_address(
                device,
                vip.interface,
                label=device if vip.interface.version == 4 else None,
                preferred=life,
                valid=life,
                replace=True,
                nodad=vip.interface.version == 6,
            )
        except KernelError as exc:
            level = logging.ERROR if first else logging.DEBUG
            log.log(level, "%s cannot add %s on %s: %s", self.prefix, vip.interface, device, exc)

    async def refresh(self) -> None:
        if not self.holding or self.lifetime is None:
            return
        for device, vip in self.vips:
            await self._put(device, vip, first=False)

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

    async def recover(self) -> None:
        return None

    async def refresh(self) -> None:
        return None

    async def master(self) -> None:
        if self.upscript:
            await self._run(self.upscript)

    async def backup(self, initial: bool) -> None:
        if self.downscript:
            await self._run(self.downscript)

    def addresses(self) -> list[IPAddress]:
        return [ipaddress.ip_address(self.addr)]

    async def _run(self, path: str) -> None:
        argv = [path, self.interface, self.addr]
        if self.xparam is not None:
            argv.append(self.xparam)
        env = {**os.environ, "PATH": SCRIPT_PATH}
        try:
            process = await asyncio.create_subprocess_exec(*argv, env=env)
        except OSError as exc:
            log.error("%s cannot run %s: %s", self.prefix, path, exc.strerror)
            return
        try:
            code = await asyncio.wait_for(process.wait(), self.timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            log.error("%s %s ran over %.0f s and was killed", self.prefix, path, self.timeout)
            return
        if code != 0:
            log.warning("%s %s exited with %d", self.prefix, path, code)


@dataclass
class EngineRole:
    """ifup the managed stanzas on MASTER, ifdown them (last first) on BACKUP and at exit."""

    prefix: str
    engine: InterfacesEngine
    logicals: Sequence[str]
    announce: Sequence[IPAddress] = ()

    async def recover(self) -> None:
        return None

    async def refresh(self) -> None:
        return None

    async def master(self) -> None:
        for logical in self.logicals:
            try:
                await self.engine.up(logical)
            except Exception as exc:  # one failing stanza must not stop the rest
                log.error("%s ifup %s failed: %s", self.prefix, logical, exc)

    async def backup(self, initial: bool) -> None:
        for logical in reversed(self.logicals):
            try:
                await self.engine.down(logical)
            except Exception as exc:
                log.error("%s ifdown %s failed: %s", self.prefix, logical, exc)

    def addresses(self) -> list[IPAddress]:
        return list(self.announce)


@dataclass
class Roles:
    """Several roles as one: up in order, down in reverse order."""

    parts: Sequence[Role] = field(default_factory=list)

    async def recover(self) -> None:
        for part in self.parts:
            await part.recover()

    async def master(self) -> None:
        for part in self.parts:
            await part.master()

    async def backup(self, initial: bool) -> None:
        for part in reversed(self.parts):
            await part.backup(initial)

    async def refresh(self) -> None:
        for part in self.parts:
            await part.refresh()

    def addresses(self) -> list[IPAddress]:
        seen: list[IPAddress] = []
        for part in self.parts:
            seen += [a for a in part.addresses() if a not in seen]
        return seen
