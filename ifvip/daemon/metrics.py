"""Prometheus metrics, `/healthz` and `/readyz` on `--metrics ADDR:PORT`, from the status.

`SnapshotCollector` is a prometheus-client collector over the same snapshot provider as
`ifvip status` (daemon/status.py), so the two agree by construction. Names follow
keepalived-exporter's (`keepalived_*` → `ifvip_*`, same labels), so its dashboards carry
over:

======================================== ===================================================
``ifvip_vrrp_state``                     per VIP: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT
                                         (keepalived's numbers); labels iname, intf, vrid,
                                         ip_address
``ifvip_advertisements_received_total``  labels iname, intf, vrid, state (as the exporter)
``ifvip_advertisements_sent_total``
``ifvip_authentication_failure_total``
``ifvip_ip_ttl_errors_total``
``ifvip_become_master_total``            when the runtime counts them (become_master, ...)
``ifvip_release_master_total``
``ifvip_priority_zero_received_total``
``ifvip_priority_zero_sent_total``
======================================== ===================================================

and ifvip's own: ``ifvip_up``, ``ifvip_build_info{version,python}``, ``ifvip_ready``,
``ifvip_group_info{iname,intf,vrid,protocol}``, ``ifvip_is_master``,
``ifvip_transitions_total``, ``ifvip_state_since_timestamp_seconds``, ``ifvip_priority``
(VRRP), ``ifvip_advskew`` (CARP), ``ifvip_demoted``, ``ifvip_fault{reason}`` (1 while a
failed MASTER action keeps the group out), ``ifvip_dropped_total{reason}``,
``ifvip_announcements_sent_total``, ``ifvip_check_status{iname,vrid,check,kind}``
(1 healthy, 0 failing) and, for the members of a sync group,
``ifvip_sync_held{iname,intf,vrid,sync_group,reason}`` (1 while the sync group holds the
group back because another member cannot be MASTER; reason: that member and its cause).

`MetricsServer` serves them on the asyncio loop (so the provider reads the runtime's state
on the loop's own thread, never concurrently with it), bound to the given address only:
`GET /metrics`, `GET /healthz` (200 while the loop answers and no group has a fault; 503
naming each failed MASTER action otherwise) and `GET /readyz` (200 when every group is
configured, past INIT, not in a transition and without a fault; 503 with the reason
otherwise).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import platform
from collections.abc import Iterable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from ifvip import __version__
from ifvip.daemon.settings import ConfigProblems
from ifvip.daemon.status import (
    ADVERTS_RECEIVED,
    ADVERTS_SENT,
    BECOME_MASTER,
    DROP_PREFIX,
    PRIORITY_ZERO_RECEIVED,
    PRIORITY_ZERO_SENT,
    RELEASE_MASTER,
    TRANSITIONS,
    AcceptErrors,
    Connections,
    GroupStatus,
    Snapshot,
    SnapshotProvider,
)

STATE_NUMBERS: Final = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3}  # keepalived's
COMMON: Final = ("iname", "intf", "vrid", "state")
REQUEST_TIMEOUT: Final = 5.0
HEADER_LINES_MAX: Final = 64
LINE_MAX: Final = 8192

# exporter-compatible counter name → our counter; exported only when the runtime has it,
# except the first three, which every runtime counts.
_COUNTERS: Final = (
    ("advertisements_received", "Advertisements received", ADVERTS_RECEIVED, True),
    ("advertisements_sent", "Advertisements sent", ADVERTS_SENT, True),
    ("ip_ttl_errors", "Adverts dropped for a TTL other than 255", DROP_PREFIX + "ttl", True),
    ("become_master", "Became master", BECOME_MASTER, False),
    ("release_master", "Released master", RELEASE_MASTER, False),
    ("priority_zero_received", "Priority zero received", PRIORITY_ZERO_RECEIVED, False),
    ("priority_zero_sent", "Priority zero sent", PRIORITY_ZERO_SENT, False),
)


def _labels(group: GroupStatus) -> list[str]:
    return [group.name, group.interface, str(group.vrid), group.state]


class SnapshotCollector(Collector):
    """Every metric from one snapshot per scrape."""

    def __init__(self, provider: SnapshotProvider) -> None:
        self.provider = provider

    def collect(self) -> Iterable[Metric]:
        return list(self._families(self.provider()))

    def _families(self, snapshot: Snapshot) -> Iterator[Metric]:
        yield GaugeMetricFamily("ifvip_up", "Whether ifvip answers (always 1 when scraped)", 1)
        info = GaugeMetricFamily(
            "ifvip_build_info", "ifvip's version", labels=["version", "python"]
        )
        info.add_metric([__version__, platform.python_version()], 1)
        yield info
        yield GaugeMetricFamily(
            "ifvip_ready", "1 when every group is configured and stable", int(snapshot.ready)
        )
        group_info = GaugeMetricFamily(
            "ifvip_group_info", "One per group", labels=["iname", "intf", "vrid", "protocol"]
        )
        state = GaugeMetricFamily(
            "ifvip_vrrp_state",
            "State per VIP: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT",
            labels=["iname", "intf", "vrid", "ip_address"],
        )
        group_labels = ["iname", "intf", "vrid"]
        is_master = GaugeMetricFamily("ifvip_is_master", "1 while MASTER", labels=group_labels)
        demoted = GaugeMetricFamily(
            "ifvip_demoted", "1 while demoted (checks, SIGUSR2)", labels=group_labels
        )
        fault = GaugeMetricFamily(
            "ifvip_fault",
            "1 while a failed MASTER action keeps the group out (reason: the failing line)",
            labels=[*group_labels, "reason"],
        )
        since = GaugeMetricFamily(
            "ifvip_state_since_timestamp_seconds",
            "Unix time of the last state change",
            labels=group_labels,
        )
        sync_held = GaugeMetricFamily(
            "ifvip_sync_held",
            "1 while its sync group holds the group back (reason: the member that cannot be "
            "MASTER and why)",
            labels=[*group_labels, "sync_group", "reason"],
        )
        priority = GaugeMetricFamily("ifvip_priority", "VRRP priority", labels=group_labels)
        advskew = GaugeMetricFamily("ifvip_advskew", "CARP advskew", labels=group_labels)
        transitions = CounterMetricFamily(
            "ifvip_transitions_total", "State changes", labels=group_labels
        )
        auth = CounterMetricFamily(
            "ifvip_authentication_failure_total", "Authentication failure", labels=list(COMMON)
        )
        announcements = CounterMetricFamily(
            "ifvip_announcements_sent_total",
            "Gratuitous ARPs and unsolicited NAs sent",
            labels=group_labels,
        )
        dropped = CounterMetricFamily(
            "ifvip_dropped_total",
            "Received packets dropped, by reason",
            labels=[*group_labels, "reason"],
        )
        checks = GaugeMetricFamily(
            "ifvip_check_status",
            "Health check verdict: 1 healthy, 0 failing",
            labels=["iname", "vrid", "check", "kind"],
        )
        counters = {
            name: CounterMetricFamily(f"ifvip_{name}_total", text, labels=list(COMMON))
            for name, text, _, _ in _COUNTERS
        }
        for g in snapshot.groups:
            common = _labels(g)
            short = common[:3]
            group_info.add_metric([*short, g.protocol], 1)
            for vip in g.vips:
                address = vip.partition("/")[0].partition("@")[0]
                state.add_metric([*short, address], STATE_NUMBERS.get(g.state, 0))
            is_master.add_metric(short, int(g.state == "MASTER"))
            demoted.add_metric(short, int(bool(g.demoted_by)))
            fault.add_metric([*short, g.fault or ""], int(g.fault is not None))
            if g.sync_group is not None:
                held = [*short, g.sync_group, g.sync_hold or ""]
                sync_held.add_metric(held, int(g.sync_hold is not None))
            if g.since is not None:
                since.add_metric(short, g.since)
            if g.priority is not None:
                priority.add_metric(short, g.priority)
            if g.advskew is not None:
                advskew.add_metric(short, g.advskew)
            transitions.add_metric(short, g.counter(TRANSITIONS))
            auth.add_metric(common, g.auth_failures)
            announcements.add_metric(short, g.counter("announcements_sent"))
            for reason, count in g.drops.items():
                dropped.add_metric([*short, reason], count)
            for name, _, counter, always in _COUNTERS:
                if always or counter in g.counters:
                    counters[name].add_metric(common, g.counter(counter))
            for c in g.checks:
                checks.add_metric([g.name, str(g.vrid), c.name, c.kind], int(c.healthy))
        yield from (group_info, state, is_master, demoted, fault, sync_held, since)
        yield from (priority, advskew)
        yield from (transitions, auth, announcements, dropped, checks)
        yield from counters.values()


def registry_for(provider: SnapshotProvider) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(provider))
    return registry


def render(provider: SnapshotProvider) -> bytes:
    """The Prometheus text exposition of one scrape."""
    return generate_latest(registry_for(provider))


# ------------------------------------------------------------------------- --metrics


def parse_metrics_address(text: str) -> tuple[str, int]:
    """`ADDR:PORT` or `[V6ADDR]:PORT` → (address, port); ConfigProblems naming --metrics."""
    host, colon, port_text = text.rpartition(":")
    if not colon or not host:
        raise ConfigProblems(
            [f"--metrics: '{text}' is not ADDR:PORT (give the address to bind, e.g. 0.0.0.0)"]
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigProblems([f"--metrics: '{text}': write an IPv6 address as [ADDR]:PORT"])
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigProblems([f"--metrics: '{host}' is not an IP address"]) from None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ConfigProblems([f"--metrics: port '{port_text}' is out of range 1..65535"])
    return str(address), int(port_text)


def _response(status: str, body: bytes, content_type: str, head: bool) -> bytes:
    header = (
        f"HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    return header if head else header + body


def answer(method: str, target: str, provider: SnapshotProvider) -> bytes:
    """The whole HTTP response to one request line's method and target."""
    text = "text/plain; charset=utf-8"
    if method not in ("GET", "HEAD"):
        return _response("405 Method Not Allowed", b"GET or HEAD\n", text, False)
    head = method == "HEAD"
    path = target.partition("?")[0]
    if path == "/metrics":
        return _response("200 OK", render(provider), CONTENT_TYPE_PLAIN_0_0_4, head)
    if path == "/healthz":
        faults = provider().faults
        if faults:
            body = "".join(f"fault: {f}\n" for f in faults).encode()
            return _response("503 Service Unavailable", body, text, head)
        return _response("200 OK", b"ok\n", text, head)
    if path == "/readyz":
        snapshot = provider()
        if snapshot.ready:
            return _response("200 OK", b"ready\n", text, head)
        waiting = [
            f"{g.name} {g.state}" + (f" (fault: {g.fault})" if g.fault else "")
            for g in snapshot.groups
            if not g.stable
        ]
        reason = ", ".join(waiting) if snapshot.groups else "no group configured"
        return _response("503 Service Unavailable", f"not ready: {reason}\n".encode(), text, head)
    if path == "/":
        return _response("200 OK", b"ifvip: /metrics /healthz /readyz\n", text, head)
    return _response("404 Not Found", b"not found\n", text, head)


class MetricsServer:
    """`/metrics`, `/healthz`, `/readyz` over HTTP/1.0 on the running asyncio loop."""

    def __init__(self, address: str, port: int, provider: SnapshotProvider) -> None:
        self.address = address
        self.port = port
        self.provider = provider
        self._server: asyncio.AbstractServer | None = None
        self._connections = Connections()

    async def start(self) -> None:
        try:
            self._server = await asyncio.start_server(
                self._serve, self.address, self.port, reuse_address=True, limit=LINE_MAX
            )
        except OSError as exc:
            if exc.errno is None:
                raise
            # asyncio words it "error while attempting to bind on address ...": the reason
            # alone, as the option and address are named by the caller.
            raise OSError(exc.errno, os.strerror(exc.errno)) from None
        self.port = self._server.sockets[0].getsockname()[1]  # the real one when 0 was asked
        AcceptErrors.install(asyncio.get_running_loop())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with self._connections.handling(writer) as admitted:
            if not admitted:
                return
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    request = await reader.readline()
                    for _ in range(HEADER_LINES_MAX):
                        line = await reader.readline()
                        if line in (b"\r\n", b"\n", b""):
                            break
                parts = request[:LINE_MAX].decode("latin-1").split()
                if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                    bad = _response("400 Bad Request", b"bad request\n", "text/plain", False)
                    writer.write(bad)
                else:
                    writer.write(answer(parts[0], parts[1], self.provider))
                await writer.drain()
            except (TimeoutError, ConnectionError, ValueError):
                pass

    async def close(self) -> None:
        if self._server is not None:
            await self._connections.close(self._server)
            self._server = None
