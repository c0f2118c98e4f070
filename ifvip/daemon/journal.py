"""The daemon's state directory (default /run/ifvip, 0700): VIP journals and group locks.

`VipRole` (roles.py) records in a group's journal what it adds before adding it, so a later
start removes what a crashed run left (and tags the address itself: VIP_PROTO); the key of
a journal (`carp.NETNS.IFACE.VHID`, `vrrp.NETNS.IFACE.FAMILY.VRID`) and its format are
on-disk: keep them. Each running group also holds an instance lock here, so a second ifvip
for the same group refuses to start.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

log = logging.getLogger("ifvip")

DEFAULT_STATE_DIR: Final = "/run/ifvip"

# The kernel's own record of what ifvip added: every VIP carries IFA_PROTO 105 ("i"), so
# `ip address show proto 105` lists them, and a start that finds one without a journal (a
# permanent --vip-lifetime 0 VIP left by a killed run, a container's fresh /run) knows it
# for a leftover and not the host's own address. Linux 6.1+; older kernels ignore it.
VIP_PROTO: Final = 105


@dataclass(frozen=True)
class RunStateDir:
    """ifvip's own state directory (default /run/ifvip), created 0700."""

    path: Path

    @classmethod
    def open(cls, path: str | os.PathLike[str] = DEFAULT_STATE_DIR) -> RunStateDir:
        state = cls(Path(path))
        state.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(state.path, 0o700)
        return state

    def journal(self, key: str) -> VipJournal:
        return VipJournal(self.path / f"vips.{key.replace('/', '.')}.json")

    def lock_group(self, key: str) -> int:
        """Hold the instance lock of group `key` for as long as the returned descriptor stays
        open: a second daemon for the same group with this state dir would take the first
        one's VIPs for leftovers of a crash and act as MASTER beside it. flock(2), on a
        descriptor of its own: closing other descriptors of the file cannot drop it, and
        children do not inherit it. Raises GroupBusy naming the holder's PID."""
        path = self.path / f"lock.{key.replace('/', '.')}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise GroupBusy(holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd


class GroupBusy(Exception):  # noqa: N818 - a state, not an error of ours
    """Another running ifvip holds this group's instance lock; `pid` is its process."""

    def __init__(self, pid: str) -> None:
        super().__init__(pid)
        self.pid = pid


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


def netns_id() -> int:
    """This network namespace's inode: daemons in different namespaces that share a state
    directory keep apart journals."""
    try:
        return os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return 0
