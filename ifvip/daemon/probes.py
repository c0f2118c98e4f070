"""Health-check probes and their scheduler: the side-effect half of `daemon/checks.py`.

Each probe is a coroutine bounded by the check timeout, so a hanging service, script or
name lookup never delays an advert: `CheckRunner.run()` is one asyncio task per group that
starts every check of a round at once, waits for all of them (each within the timeout),
records the results through the pure hysteresis and hands the resulting `Demote` /
`Promote` event to the runtime's `feed`.

- HTTP(S): asyncio streams, one GET, the status line only; `insecure` skips certificate
  verification (self-signed service certificates).
- TCP: a connect to ADDR:PORT, or the local-listener test (`/proc/net/tcp{,6}`).
- Script: no shell, fixed PATH, stdin/stdout/stderr on /dev/null, its own process group
  killed at the timeout; `IFVIP_STATE` (MASTER/BACKUP/...) and `IFVIP_CHECK` in its
  environment so a script can decide what to test on a backup.
- Carrier: `/sys/class/net/IF/{flags,carrier}` (IFF_UP and carrier).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from ifvip import tls
from ifvip.daemon.checks import (
    Address,
    CarrierCheck,
    Check,
    CheckConfig,
    Demotions,
    GroupHealth,
    HttpCheck,
    Hysteresis,
    ListenerProbe,
    Probe,
    ProbeResult,
    ScriptCheck,
    TcpCheck,
    http_request,
    http_status,
    listens,
    parse_proc_net_tcp,
    probe_plan,
    record,
    set_demotion,
)
from ifvip.daemon.children import run_child
from ifvip.election.events import Demote, Promote
from ifvip.hookenv import HOOK_PATH

if TYPE_CHECKING:  # VRRP's election loads only for VRRP groups (a weight feeds it)
    import ssl

    from ifvip.election.vrrp import SetPriority

log = logging.getLogger("ifvip")

PROC_TCP: Final = ("/proc/net/tcp", "/proc/net/tcp6")
SYS_NET: Final = "/sys/class/net"
STATUS_LINE_MAX: Final = 1024


def _read_listeners(paths: Sequence[str] = PROC_TCP) -> set[tuple[Address, int]]:
    sockets: set[tuple[Address, int]] = set()
    for path in paths:
        with contextlib.suppress(OSError), open(path) as table:
            sockets |= parse_proc_net_tcp(table.read())
    return sockets


def carrier_up(interface: str, root: str = SYS_NET) -> bool:
    """IFF_UP and carrier, as sysfs shows them (False when the interface is gone)."""
    try:
        with open(f"{root}/{interface}/flags") as flags, open(f"{root}/{interface}/carrier") as c:
            return bool(int(flags.read(), 16) & 1) and c.read().strip() == "1"
    except (OSError, ValueError):
        return False


async def _http(check: HttpCheck) -> ProbeResult:
    context: ssl.SSLContext | None = None
    if check.tls:
        ssl = tls.ssl_module()  # OpenSSL loads with the first https check only
        context = ssl.create_default_context()
        if check.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(
        check.host, check.port, ssl=context, server_hostname=check.host if context else None
    )
    try:
        writer.write(http_request(check))
        await writer.drain()
        line = await reader.readline()
    finally:
        writer.close()
        with contextlib.suppress(OSError):  # ssl.SSLError is an OSError
            await writer.wait_closed()
    code = http_status(line[:STATUS_LINE_MAX])
    if code is None:
        return ProbeResult(False, "not an HTTP response")
    return ProbeResult(code == check.expect, f"HTTP {code}")


async def _tcp(check: TcpCheck) -> ProbeResult:
    if check.address is None:
        sockets = await asyncio.to_thread(_read_listeners)
        found = listens(sockets, check.port, None)
        return ProbeResult(found, "listening" if found else "nothing listens", "listener")
    _, writer = await asyncio.open_connection(str(check.address), check.port)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ProbeResult(True, "connected")


async def _listener(probe: ListenerProbe) -> ProbeResult:
    sockets = await asyncio.to_thread(_read_listeners)
    found = listens(sockets, probe.port, probe.address)
    return ProbeResult(found, "listening" if found else "nothing listens", "listener")


async def _script(check: ScriptCheck, state: str, timeout: float) -> ProbeResult:
    env = {"PATH": HOOK_PATH, "IFVIP_STATE": state, "IFVIP_CHECK": check.name}
    code = await run_child(check.argv, env=env, timeout=timeout, quiet=True)
    if code is None:
        return ProbeResult(False, f"killed after {timeout:g} s")
    return ProbeResult(code == 0, f"exit {code}")


async def run_probe(probe: Probe, *, state: str = "BACKUP", timeout: float = 2.0) -> ProbeResult:
    """Run one probe within `timeout` seconds; any error is a failed result with a reason."""
    try:
        match probe:
            case ScriptCheck():
                return await _script(probe, state, timeout)
            case HttpCheck():
                return await asyncio.wait_for(_http(probe), timeout)
            case TcpCheck():
                return await asyncio.wait_for(_tcp(probe), timeout)
            case ListenerProbe():
                return await asyncio.wait_for(_listener(probe), timeout)
            case CarrierCheck(interface=interface):
                up = carrier_up(interface)
                return ProbeResult(up, "carrier" if up else "no carrier")
    except TimeoutError:
        return ProbeResult(False, f"no answer within {timeout:g} s")
    except OSError as exc:
        if tls.ssl_error(exc):
            return ProbeResult(False, f"TLS: {getattr(exc, 'reason', None) or exc}")
        # asyncio's connect errors carry "Connect call failed (...)" as their text
        return ProbeResult(False, os.strerror(exc.errno) if exc.errno else str(exc))
    raise TypeError(f"unknown probe {probe!r}")


@dataclass
class CheckRunner:
    """Probes one group's checks every interval and feeds the election what they decide.

    `state` tells the current election state (MASTER probes VIP targets for real);
    `feed` receives `Demote`/`Promote`, or with a VRRP `--check-weight` (`base_priority`
    given) `SetPriority(base + weights)` as keepalived's weighted track_script.
    `demotions` is shared with the runtime's other demotion sources (SIGUSR2) through
    `set_source()`.
    """

    config: CheckConfig
    vips: Sequence[Address]
    state: Callable[[], str]
    feed: Callable[[Demote | Promote | SetPriority], None]
    base_priority: int | None = None
    health: GroupHealth = field(init=False)
    demotions: Demotions = field(default_factory=Demotions)
    rounds: int = 0
    _delta: int = 0

    def __post_init__(self) -> None:
        self.health = GroupHealth(self.config)

    async def run(self) -> None:
        """Until cancelled: one round of probes every interval (rounds never overlap)."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await self.round()
            await asyncio.sleep(max(0.0, self.config.interval - (loop.time() - started)))

    async def round(self) -> None:
        state = self.state()
        plans = [
            probe_plan(check, is_master=state == "MASTER", vips=self.vips)
            for check in self.config.checks
        ]
        results = await asyncio.gather(
            *(run_probe(p, state=state, timeout=self.config.timeout) for p in plans)
        )
        self.rounds += 1
        for index, result in enumerate(results):
            before = self.health.verdicts[index].healthy
            self.health, self.demotions, event = record(self.health, index, result, self.demotions)
            verdict = self.health.verdicts[index]
            if verdict.healthy != before:
                log.log(
                    logging.INFO if verdict.healthy else logging.WARNING,
                    "check %s: %s (%s)",
                    self.config.checks[index].name,
                    "healthy" if verdict.healthy else "failing",
                    result.detail,
                )
            if event is not None:
                self.feed(event)
        delta = self.health.priority_delta()
        if self.base_priority is not None and delta != self._delta:
            self._delta = delta
            failing = ", ".join(self.health.failing()) or "none failing"
            from ifvip.election.vrrp import SetPriority  # noqa: PLC0415 - see TYPE_CHECKING

            self.feed(
                SetPriority(self.base_priority + delta, f"check weight {delta:+d} ({failing})")
            )

    def set_source(self, source: str, on: bool, reason: str) -> None:
        """Another demotion source (e.g. "sigusr2") joins or leaves the union."""
        self.demotions, event = set_demotion(self.demotions, source, on, reason)
        if event is not None:
            self.feed(event)

    def verdicts(self) -> list[tuple[Check, Hysteresis]]:
        return list(zip(self.config.checks, self.health.verdicts, strict=True))
