"""The client side of `ifvip status`: the snapshot a daemon serves, fetched and shown.

- `Snapshot` / `GroupStatus` / `CheckStatus`: what `ifvip status`, the SIGUSR1 dump and
  the metrics all show (daemon/status.py builds them in the daemon and serves them).
- `fetch()`: ask the daemon's unix socket for its snapshot; `StatusUnreachable` carries
  the sentence the command prints before exiting 1.
- `default_socket()` / `instance_key()`: where the socket of this namespace's daemon is.
- `render_table()`: the human form of `ifvip status`.

This module is all `ifvip status` imports (no asyncio, checks, configuration or election
code): it starts as fast as the interpreter allows. daemon/status.py re-exports its names.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
from dataclasses import asdict, field

from ifvip.record import record

import _socket as socket  # isort: skip  # socket.py's enums cost more than this module

TYPE_CHECKING = False  # typing itself is not imported: `ifvip status` does not need it
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import Any, Final

SOCKET_NAME: Final = "ifvip.sock"
DEFAULT_STATE_DIR: Final = "/run/ifvip"
NAMED_NETNS: Final = "/run/netns"  # where `ip netns add` mounts named namespaces
CLIENT_TIMEOUT: Final = 5.0
UNIX_PATH_MAX: Final = 107  # sun_path holds 108 bytes with the terminating NUL
SCHEMA: Final = 1

# Counter names every runtime uses (a runtime may add more; unknown ones are shown too).
ADVERTS_RECEIVED: Final = "adverts_received"
ADVERTS_SENT: Final = "adverts_sent"
AUTH_FAILURES: Final = "auth_failures"
TRANSITIONS: Final = "transitions"
BECOME_MASTER: Final = "become_master"
RELEASE_MASTER: Final = "release_master"
PRIORITY_ZERO_RECEIVED: Final = "priority_zero_received"
PRIORITY_ZERO_SENT: Final = "priority_zero_sent"
DROP_PREFIX: Final = "dropped_"

STABLE_STATES: Final = frozenset({"MASTER", "BACKUP", "FAULT"})


class StatusUnreachable(Exception):  # noqa: N818 - the daemon, not an error of ours
    """The daemon's status socket cannot be reached; `str()` is the sentence to print."""


@record(kw_only=False)
class CheckStatus:
    name: str
    kind: str
    healthy: bool
    last: bool | None = None  # the last probe's result (None: not run yet)
    detail: str = ""
    streak: int = 0  # results in a row equal to the last one
    judged: str = "check"  # "listener": a VIP check judged by the local listener (backup)


@record(kw_only=False)
class GroupStatus:
    protocol: str  # "carp" | "vrrp"
    name: str
    interface: str
    vrid: int
    state: str  # INIT | BACKUP | MASTER | FAULT
    since: float | None = None  # Unix time of the last state change
    master: str | None = None  # the current master's address, ours when MASTER
    priority: int | None = None  # VRRP
    advskew: int | None = None  # CARP
    advert_interval: float | None = None  # seconds
    vips: tuple[str, ...] = ()
    managed: tuple[str, ...] = ()
    demoted_by: tuple[str, ...] = ()
    settled: bool = True  # no MASTER/BACKUP job (VIPs, ifup/ifdown, scripts) is running
    checks: tuple[CheckStatus, ...] = ()
    counters: Mapping[str, int] = field(default_factory=dict)
    fault: str | None = None  # the MASTER action that failed (its line), while backing off
    sync_group: str | None = None  # the sync group it is a member of
    sync_hold: str | None = None  # why its sync group holds it back (another member's cause)

    @property
    def drops(self) -> dict[str, int]:
        """Dropped packets by reason (`dropped_ttl` → `ttl`)."""
        return {
            key[len(DROP_PREFIX) :]: value
            for key, value in sorted(self.counters.items())
            if key.startswith(DROP_PREFIX)
        }

    def counter(self, name: str) -> int:
        return int(self.counters.get(name, 0))

    @property
    def auth_failures(self) -> int:
        """Adverts that failed authentication (the runtime counts them as dropped_auth)."""
        return self.counter(DROP_PREFIX + "auth") or self.counter(AUTH_FAILURES)

    @property
    def stable(self) -> bool:
        return self.state in STABLE_STATES and self.settled and self.fault is None


@record(kw_only=False)
class Snapshot:
    version: str
    pid: int
    started: float  # Unix time
    taken: float  # Unix time
    groups: tuple[GroupStatus, ...] = ()

    @property
    def ready(self) -> bool:
        """Configured and stable: every group is past INIT with no transition running and no
        fault."""
        return bool(self.groups) and all(g.stable for g in self.groups)

    @property
    def faults(self) -> list[str]:
        """`vhid 42: path:line: command: reason` for each group whose MASTER action failed."""
        return [f"{g.name}: {g.fault}" for g in self.groups if g.fault is not None]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["schema"] = SCHEMA
        data["ready"] = self.ready
        for group, status in zip(data["groups"], self.groups, strict=True):
            group["counters"] = dict(status.counters)
            group["drops"] = status.drops
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snapshot:
        groups = []
        for group in data.get("groups", ()):
            fields = {k: v for k, v in group.items() if k in _GROUP_FIELDS}
            fields["checks"] = tuple(
                CheckStatus(**{k: v for k, v in c.items() if k in _CHECK_FIELDS})
                for c in group.get("checks", ())
            )
            for name in ("vips", "managed", "demoted_by"):
                fields[name] = tuple(group.get(name, ()))
            fields["counters"] = dict(group.get("counters", {}))
            groups.append(GroupStatus(**fields))
        return cls(
            version=str(data.get("version", "")),
            pid=int(data.get("pid", 0)),
            started=float(data.get("started", 0.0)),
            taken=float(data.get("taken", 0.0)),
            groups=tuple(groups),
        )


_GROUP_FIELDS: Final = frozenset(GroupStatus.__dataclass_fields__)
_CHECK_FIELDS: Final = frozenset(CheckStatus.__dataclass_fields__)


def _netns_inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def instance_key(named: str | None = None) -> str:
    """ ".NAME" when this process runs in a named network namespace (`ip netns exec NAME`:
    the lab, the demo, the tests), else "": daemons in several namespaces of one machine
    sharing a state dir keep apart sockets and dumps, and `ifvip status` run in the same
    namespace finds its own daemon's. Hosts and containers get the plain names."""
    own = _netns_inode("/proc/self/ns/net")
    if own is None:
        return ""
    try:
        named = named or NAMED_NETNS
        names = sorted(os.listdir(named))
    except OSError:
        return ""
    for name in names:
        if _netns_inode(os.path.join(named, name)) == own:
            return f".{name}"
    return ""


def default_socket(state_dir: str = DEFAULT_STATE_DIR) -> str:
    stem, _, ext = SOCKET_NAME.rpartition(".")
    return os.path.join(state_dir, f"{stem}{instance_key()}.{ext}")


@contextlib.contextmanager
def reachable(path: str) -> Iterator[str]:
    """A name bind() and connect() accept for `path`: itself, or, when it is longer than
    sun_path, the same file through an O_PATH descriptor of its directory."""
    if len(os.fsencode(path)) <= UNIX_PATH_MAX:
        yield path
        return
    fd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{os.path.basename(path)}"
    finally:
        os.close(fd)


# ------------------------------------------------------------------------- client


def fetch(path: str, timeout: float = CLIENT_TIMEOUT) -> Snapshot:
    """Ask the daemon at `path` for its snapshot; raise StatusUnreachable with a reason."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(timeout)
    chunks = []
    try:
        with reachable(path) as name:
            client.connect(name)
        client.sendall(b"status\n")
        while chunk := client.recv(65536):
            chunks.append(chunk)
    except FileNotFoundError:
        raise StatusUnreachable(
            f"no ifvip daemon: {path} does not exist (is `ifvip run` running with the same "
            "--state-dir or --status-socket?)"
        ) from None
    except ConnectionRefusedError:
        raise StatusUnreachable(
            f"no ifvip daemon answers on {path} (a stale socket: the daemon has stopped)"
        ) from None
    except PermissionError:
        raise StatusUnreachable(f"not allowed to open {path} (it is 0600: run as root)") from None
    except TimeoutError:
        raise StatusUnreachable(
            f"the ifvip daemon at {path} did not answer in {timeout:g} s"
        ) from None
    except OSError as exc:
        raise StatusUnreachable(
            f"cannot reach the ifvip daemon at {path}: {exc.strerror}"
        ) from None
    finally:
        client.close()
    try:
        data = json.loads(b"".join(chunks))
    except ValueError:
        raise StatusUnreachable(f"the answer on {path} is not an ifvip status") from None
    if not isinstance(data, dict) or "groups" not in data:
        raise StatusUnreachable(f"the answer on {path} is not an ifvip status") from None
    return Snapshot.from_dict(data)


# ------------------------------------------------------------------------- table


def _since(since: float | None, now: float) -> str:
    if since is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(since, datetime.UTC)
    age = max(0, int(now - since))
    if age < 120:
        span = f"{age}s"
    elif age < 7200:
        span = f"{age // 60}m"
    elif age < 172800:
        span = f"{age // 3600}h"
    else:
        span = f"{age // 86400}d"
    return f"{moment:%Y-%m-%d %H:%M:%S}Z ({span})"


def _weight(group: GroupStatus) -> str:
    if group.priority is not None:
        return f"prio {group.priority}"
    if group.advskew is not None:
        return f"skew {group.advskew}"
    return "-"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def render_table(snapshot: Snapshot, now: float | None = None) -> str:
    """The human form: one row per group, then the checks, stanzas and drops beneath."""
    now = snapshot.taken if now is None else now
    if not snapshot.groups:
        return f"ifvip {snapshot.version} (pid {snapshot.pid}): no group configured\n"
    rows = [
        [
            "GROUP",
            "PROTO",
            "IFACE",
            "STATE",
            "SINCE",
            "MASTER",
            "PRIO/SKEW",
            "VIPS",
            "CHECKS",
            "ADV IN",
            "ADV OUT",
            "AUTH FAIL",
            "DROPS",
            "TRANS",
        ]
    ]
    for g in snapshot.groups:
        healthy = sum(1 for c in g.checks if c.healthy)
        held = g.demoted_by or g.sync_hold is not None
        state = g.state + ("*" if held else "") + ("" if g.settled else "~")
        rows.append(
            [
                g.name,
                g.protocol,
                g.interface,
                state,
                _since(g.since, now),
                g.master or "-",
                _weight(g),
                ",".join(g.vips) or "-",
                f"{healthy}/{len(g.checks)} ok" if g.checks else "-",
                str(g.counter(ADVERTS_RECEIVED)),
                str(g.counter(ADVERTS_SENT)),
                str(g.auth_failures),
                str(sum(g.drops.values())),
                str(g.counter(TRANSITIONS)),
            ]
        )
    lines = _table(rows)
    for g in snapshot.groups:
        details = []
        if g.fault is not None:
            details.append(f"FAULT: MASTER action failed: {g.fault}")
        if g.demoted_by:
            details.append(f"demoted by: {', '.join(g.demoted_by)}")
        if g.sync_group is not None:
            details.append(f"sync group: {g.sync_group}")
        if g.sync_hold is not None:
            details.append(f"held back: {g.sync_hold}")
        if g.managed:
            details.append(f"manages: {', '.join(g.managed)}")
        for c in g.checks:
            verdict = "healthy" if c.healthy else "FAILING"
            last = "not run yet" if c.last is None else f"{c.detail or c.last}, {c.streak} in a row"
            how = " (local listener: not master)" if c.judged == "listener" else ""
            details.append(f"check {c.name}: {verdict} ({last}){how}")
        drops = ", ".join(f"{reason} {n}" for reason, n in g.drops.items() if n)
        if drops:
            details.append(f"drops: {drops}")
        if details:
            lines.append(f"{g.name}:")
            lines += [f"  {d}" for d in details]
    if any(g.demoted_by or g.sync_hold or not g.settled for g in snapshot.groups):
        held = any(g.sync_hold for g in snapshot.groups)
        star = "demoted or held back by its sync group" if held else "demoted"
        lines.append(f"(* {star}, ~ transition running)")
    return "\n".join(lines) + "\n"
