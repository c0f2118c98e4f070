"""The status of a running ifvip: a JSON-able snapshot, its unix socket, its file and table.

- `Snapshot` / `GroupStatus` / `CheckStatus`: what `ifvip status`, the SIGUSR1 dump and
  the metrics (daemon/metrics.py) all show, built from one provider callable so the three
  agree by construction. Per group: protocol, name, interface, VRID/VHID, state and since
  when, the current master's address, priority/advskew, VIPs, managed stanzas, demotion
  sources, checks (verdict, last result, streak) and counters (adverts in/out, auth
  failures, drops by reason, transitions, ...). No secret is ever part of it.
- `StatusServer`: a unix stream socket (`--status-socket`, default `STATE_DIR/ifvip.sock`,
  mode 0600; `ifvip.NAME.sock` inside `ip netns exec NAME`, see instance_key()). A
  client sends one line (`status`) and reads the snapshot as one JSON document; the
  server closes the connection. A stale socket left by a killed daemon is replaced; a
  live one (another daemon on the same state dir) is an error.
- `fetch()`: the client side, for `ifvip status`; `StatusUnreachable` carries the sentence
  the command prints before exiting 1. The snapshot classes, fetch(), the socket's name
  and render_table() live in daemon/status_client.py (all `ifvip status` imports) and are
  re-exported here.
- `write_snapshot()`: the SIGUSR1 dump, `STATE_DIR/status.json`, written atomically.
- `render_table()`: the human form of `ifvip status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import socket
import stat
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from ifvip.daemon.checks import Check, Hysteresis
from ifvip.daemon.status_client import (
    ADVERTS_RECEIVED,
    ADVERTS_SENT,
    AUTH_FAILURES,
    BECOME_MASTER,
    CLIENT_TIMEOUT,
    DEFAULT_STATE_DIR,
    DROP_PREFIX,
    NAMED_NETNS,
    PRIORITY_ZERO_RECEIVED,
    PRIORITY_ZERO_SENT,
    RELEASE_MASTER,
    SCHEMA,
    SOCKET_NAME,
    STABLE_STATES,
    TRANSITIONS,
    UNIX_PATH_MAX,
    CheckStatus,
    GroupStatus,
    Snapshot,
    StatusUnreachable,
    default_socket,
    fetch,
    instance_key,
    reachable,
    render_table,
)

if TYPE_CHECKING:  # the seam, for mypy: what a snapshot is taken of
    from ifvip.daemon.probes import CheckRunner
    from ifvip.daemon.runtime import Daemon, Group

# The client side (daemon/status_client.py), re-exported for the daemon's modules.
__all__ = [
    "ADVERTS_RECEIVED",
    "ADVERTS_SENT",
    "AUTH_FAILURES",
    "BECOME_MASTER",
    "CLIENT_TIMEOUT",
    "DEFAULT_STATE_DIR",
    "DROP_PREFIX",
    "NAMED_NETNS",
    "PRIORITY_ZERO_RECEIVED",
    "PRIORITY_ZERO_SENT",
    "RELEASE_MASTER",
    "SCHEMA",
    "SOCKET_NAME",
    "STABLE_STATES",
    "TRANSITIONS",
    "UNIX_PATH_MAX",
    "CheckStatus",
    "GroupStatus",
    "Snapshot",
    "StatusUnreachable",
    "default_socket",
    "fetch",
    "instance_key",
    "reachable",
    "render_table",
]

DUMP_NAME: Final = "status.json"
REQUEST_MAX: Final = 256
REQUEST_LINE_MAX: Final = 4096  # bytes read for one request line; longer is refused
CONNECTIONS_MAX: Final = 64  # connections served at once per server; more are closed at once
ACCEPT_LOG_INTERVAL: Final = 60.0  # seconds between two log lines of failing accept()s
HANDLER_START_ITERATIONS: Final = 5

SnapshotProvider = Callable[[], Snapshot]


def check_statuses(verdicts: Iterable[tuple[Check, Hysteresis]]) -> tuple[CheckStatus, ...]:
    """The status of each check from its hysteresis (CheckRunner.verdicts())."""
    return tuple(
        CheckStatus(
            name=check.name,
            kind=check.kind,
            healthy=h.healthy,
            last=None if h.last is None else h.last.ok,
            detail="" if h.last is None else h.last.detail,
            streak=h.streak,
            judged="check" if h.last is None else h.last.judged,
        )
        for check, h in verdicts
    )


def group_status(
    group: Group, checks: tuple[CheckStatus, ...] = (), demoted_by: Iterable[str] = ()
) -> GroupStatus:
    """The status of one `runtime.Group` (its GroupSnapshot plus the speaker's facts)."""
    snap = group.snapshot()
    facts = group.speaker.status_facts(group.machine)
    sources = tuple(sorted(demoted_by)) or (("demoted",) if snap.demoted else ())
    return GroupStatus(
        protocol=str(facts.get("protocol", "unknown")),
        name=snap.name,
        interface=snap.interface,
        vrid=int(facts.get("vrid", 0)),
        state=snap.state,
        since=snap.since,
        master=snap.master,
        priority=facts.get("priority"),
        advskew=facts.get("advskew"),
        advert_interval=facts.get("advert_interval"),
        vips=tuple(facts.get("vips", ())),
        managed=tuple(facts.get("managed", ())),
        demoted_by=sources,
        settled=not getattr(group, "_jobs", ()),
        checks=checks,
        counters=dict(snap.counters),
        fault=snap.fault,
        sync_group=snap.sync_group,
        sync_hold=snap.sync_hold,
    )


def daemon_snapshot(
    daemon: Daemon,
    runners: Mapping[str, CheckRunner] | None = None,
    *,
    version: str,
    started: float,
    now: Callable[[], float],
) -> Snapshot:
    """The snapshot of a `runtime.Daemon`; `runners` maps a group name to its CheckRunner."""
    groups = []
    for group in daemon.groups:
        runner = (runners or {}).get(group.speaker.name)
        checks = check_statuses(runner.verdicts()) if runner is not None else ()
        sources = sorted(runner.demotions.sources) if runner is not None else ()
        groups.append(group_status(group, checks, sources))
    return Snapshot(version, os.getpid(), started, now(), tuple(groups))


# ------------------------------------------------------------------------- paths and dump


def dump_path(state_dir: str = DEFAULT_STATE_DIR) -> Path:
    stem, _, ext = DUMP_NAME.rpartition(".")
    return Path(state_dir) / f"{stem}{instance_key()}.{ext}"


def write_snapshot(snapshot: Snapshot, state_dir: str = DEFAULT_STATE_DIR) -> Path:
    """Write `STATE_DIR/status.json` (see instance_key()) atomically (temporary file,
    fsync, rename)."""
    target = dump_path(state_dir)
    directory = target.parent
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    temporary = directory / f".{DUMP_NAME}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(snapshot.to_json())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return target


# ------------------------------------------------------------------------- server


class AcceptErrors:
    """asyncio logs every failing accept() (EMFILE when a flood of connections uses the
    process's descriptors) as an error with a traceback, again and again: thousands of
    lines a minute. This loop exception handler says it in one line, at most once per
    `interval` seconds with how many there were; everything else goes to the handler
    that was there before."""

    MESSAGE: Final = "socket.accept() out of system resource"

    def __init__(
        self,
        previous: Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object] | None,
        *,
        interval: float = ACCEPT_LOG_INTERVAL,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.previous = previous
        self.interval = interval
        self.log = log or _warning
        self.count = 0  # failures since the last line
        self.last: float | None = None

    @classmethod
    def install(cls, loop: asyncio.AbstractEventLoop) -> AcceptErrors:
        """Install once per loop (both servers call it); return the handler in place."""
        current = loop.get_exception_handler()
        if isinstance(current, AcceptErrors):
            return current
        handler = cls(current)
        loop.set_exception_handler(handler)
        return handler

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != self.MESSAGE:
            if self.previous is not None:
                self.previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        self.count += 1
        now = loop.time()
        if self.last is not None and now - self.last < self.interval:
            return
        exc = context.get("exception")
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        where = context.get("socket")
        name = getattr(where, "getsockname", lambda: "?")()
        self.log(
            f"cannot accept connections on {name}: {reason} ({self.count} time"
            f"{'s' if self.count != 1 else ''}"
            + (f" in {self.interval:g} s" if self.last is not None else "")
            + "); too many clients"
        )
        self.count = 0
        self.last = now


def _warning(message: str) -> None:
    import logging  # noqa: PLC0415 - only when there is something to say

    logging.getLogger("ifvip").warning("%s", message)


class Connections:
    """The handler tasks of one asyncio stream server, so that closing it ends every one,
    and at most `limit` of them at once: a flood of idle clients (slowloris) is closed as
    it comes instead of taking every descriptor of the process."""

    def __init__(self, limit: int = CONNECTIONS_MAX) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self.limit = limit
        self.refused = 0  # connections closed at once for being over the limit

    @contextlib.asynccontextmanager
    async def handling(self, writer: asyncio.StreamWriter) -> AsyncIterator[bool]:
        """Around one connection's handler: tracked while it runs, its writer always
        closed. Yields False when the server already serves `limit` connections: the
        handler then returns at once (the connection is closed)."""
        task = asyncio.current_task()
        admitted = len(self._tasks) < self.limit
        if not admitted:
            self.refused += 1
        elif task is not None:
            self._tasks.add(task)
        try:
            yield admitted
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            if task is not None:
                self._tasks.discard(task)

    async def close(self, server: asyncio.AbstractServer) -> None:
        server.close()
        # A connection accepted just before close() gets its handler task a few loop
        # iterations later (accept, then connection_made): let those start, then end
        # every handler, so none is left pending when the loop closes.
        for _ in range(HANDLER_START_ITERATIONS):
            await asyncio.sleep(0)
        while self._tasks:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        await server.wait_closed()


class StatusServer:
    """Serves `provider()` as JSON on a unix socket, on the running asyncio loop."""

    def __init__(self, path: str, provider: SnapshotProvider) -> None:
        self.path = path
        self.provider = provider
        self._server: asyncio.AbstractServer | None = None
        self._connections = Connections()

    async def start(self) -> None:
        directory = os.path.dirname(self.path) or "."
        os.makedirs(directory, mode=0o755, exist_ok=True)
        self._clear_stale()
        old = os.umask(0o177)  # the socket is born 0600: no window with wider rights
        try:
            with reachable(self.path) as name:
                self._server = await asyncio.start_unix_server(
                    self._serve, path=name, limit=REQUEST_LINE_MAX
                )
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        AcceptErrors.install(asyncio.get_running_loop())

    def _clear_stale(self) -> None:
        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise OSError(errno.EEXIST, f"{self.path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(1.0)
            with reachable(self.path) as name:
                probe.connect(name)
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(self.path)  # left by a daemon that was killed
            return
        finally:
            probe.close()
        raise OSError(errno.EADDRINUSE, f"another ifvip serves {self.path}")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with self._connections.handling(writer) as admitted:
            if not admitted:
                return
            try:
                try:
                    request = await asyncio.wait_for(reader.readline(), CLIENT_TIMEOUT)
                except ValueError:  # no newline within REQUEST_LINE_MAX bytes
                    answer = {"error": f"request over {REQUEST_LINE_MAX} bytes; send 'status'"}
                    writer.write((json.dumps(answer) + "\n").encode())
                    await writer.drain()
                    return
                command = request[:REQUEST_MAX].strip().decode("ascii", "replace")
                if command in ("", "status"):
                    writer.write(self.provider().to_json().encode())
                else:
                    answer = {"error": f"unknown request {command[:40]!r}; send 'status'"}
                    writer.write((json.dumps(answer) + "\n").encode())
                await writer.drain()
            except (TimeoutError, ConnectionError):
                pass

    async def close(self) -> None:
        if self._server is not None:
            await self._connections.close(self._server)
            self._server = None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


# ------------------------------------------------------------------------- client
