"""What an operator runs and watches beside the groups: checks, status socket, metrics, dumps.

`Operations` attaches to a `runtime.Daemon` without changing it:

- one `CheckRunner` per group (daemon/probes.py) that feeds the group's election `Demote` /
  `Promote` (CARP: bow-out, peers take over at once; VRRP: its machine's FAULT);
- SIGUSR2 goes through the same union of demotion sources as the checks, so a SIGUSR2
  promotion never lifts a health-check demotion (and the reverse);
- the status socket (daemon/status.py) and the metrics endpoint (daemon/metrics.py), both
  over one snapshot provider, so `ifvip status` and `/metrics` agree;
- SIGUSR1 logs each group and writes `STATE_DIR/status.json`;
- `--nonlocal-bind`: the sysctls are set at start and restored at close.

Hook-up (the daemon's launcher), five lines:

    operations = Operations(OperationsConfig(...))
    await operations.start(daemon)              # after daemon.add(...), before run()
    try:
        return await daemon.run(ready=operations.attach)
    finally:
        await operations.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import logging
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from ifvip import __version__
from ifvip.daemon.checks import Address, CheckConfig
from ifvip.daemon.policy import apply_sysctls, nonlocal_bind_plan, restore_sysctls
from ifvip.daemon.probes import CheckRunner
from ifvip.daemon.status import (
    DEFAULT_STATE_DIR,
    Snapshot,
    StatusServer,
    daemon_snapshot,
    default_socket,
    write_snapshot,
)

if TYPE_CHECKING:  # prometheus-client is loaded only when --metrics asks for it
    from ifvip.daemon.ifup import EngineFactory
    from ifvip.daemon.metrics import MetricsServer
    from ifvip.daemon.policy import PolicyRouting
    from ifvip.daemon.runtime import Daemon, Group
    from ifvip.daemon.settings import GroupSettings, Vip
    from ifvip.daemon.speaker import Speaker
    from ifvip.ifupdown.plan import WriteSysctl

log = logging.getLogger("ifvip")

SIGUSR2_SOURCE = "sigusr2"


class OperationsError(Exception):
    """A socket of ours cannot be opened; `str()` names the option (the CLI exits 78)."""


@dataclass(frozen=True)
class OperationsConfig:
    """`checks` applies to every group, or per group name in `per_group`."""

    checks: CheckConfig = field(default_factory=CheckConfig)
    per_group: Mapping[str, CheckConfig] = field(default_factory=dict)
    state_dir: str = DEFAULT_STATE_DIR
    status_socket: str | None = None  # None: STATE_DIR/ifvip.sock; "" : no socket
    metrics: tuple[str, int] | None = None
    nonlocal_bind: bool = False


class Composed(NamedTuple):
    """What a protocol's `compose(options, links)` (carp/compose.py, vrrp/compose.py) makes
    of `ifvip run`'s options, validated: its groups and what runs beside them."""

    configs: tuple[GroupSettings, ...]
    operations: OperationsConfig
    policy: PolicyRouting | None
    engines: EngineFactory | None


def _vips(speaker: Speaker, machine: object) -> list[Address]:
    found: list[Address] = []
    for text in speaker.status_facts(machine).get("vips", ()):
        with contextlib.suppress(ValueError):
            found.append(ipaddress.ip_interface(str(text).partition("@")[0]).ip)
    return found


def _state_of(group: Group) -> Callable[[], str]:
    def state() -> str:
        return str(group.state)

    return state


class Operations:
    def __init__(self, config: OperationsConfig, *, version: str = __version__) -> None:
        self.config = config
        self.version = version
        self.started = time.time()
        self.daemon: Daemon | None = None
        self.runners: dict[str, CheckRunner] = {}
        self.status: StatusServer | None = None
        self.metrics: MetricsServer | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._attached = False
        self._sysctls: Sequence[WriteSysctl] = ()

    def snapshot(self) -> Snapshot:
        assert self.daemon is not None, "start() first"
        return daemon_snapshot(
            self.daemon, self.runners, version=self.version, started=self.started, now=time.time
        )

    async def start(self, daemon: Daemon) -> None:
        """Before the groups run: sysctls, sockets (a bind failure raises OSError)."""
        from ifvip.ifupdown.netlink import write_sysctl  # noqa: PLC0415 - /proc/sys only

        self.daemon = daemon
        if self.config.nonlocal_bind:
            self._sysctls = apply_sysctls(nonlocal_bind_plan(), write_sysctl)
            log.info("ip_nonlocal_bind set for IPv4 and IPv6 (restored at exit)")
        for group in daemon.groups:
            self._runner(group, self.config.per_group.get(group.speaker.name, self.config.checks))
        path = default_socket(self.config.state_dir)
        if self.config.status_socket is not None:
            path = self.config.status_socket
        if path:
            self.status = StatusServer(path, self.snapshot)
            try:
                await self.status.start()
            except OSError as exc:
                reason = exc.strerror or str(exc)
                self.status = None
                if self.config.status_socket is not None:
                    await self.close()
                    raise OperationsError(f"--status-socket {path}: {reason}") from None
                # The default socket is a convenience: another ifvip in this namespace on
                # the same state dir (one process per group, as ucarp is run) keeps it.
                log.warning("no status socket (%s: %s); give --status-socket PATH", path, reason)
        if self.config.metrics is not None:
            address, port = self.config.metrics
            from ifvip.daemon.metrics import MetricsServer  # noqa: PLC0415 - see above

            self.metrics = MetricsServer(address, port, self.snapshot)
            try:
                await self.metrics.start()
            except OSError as exc:
                self.metrics = None
                await self.close()
                where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
                raise OperationsError(f"--metrics {where}: {exc.strerror or exc}") from None
            log.info("metrics on %s port %d: /metrics /healthz /readyz", address, self.metrics.port)

    def _runner(self, group: Group, checks: CheckConfig) -> CheckRunner:
        runner = CheckRunner(
            checks,
            _vips(group.speaker, group.machine),
            state=_state_of(group),
            feed=group.feed,
            base_priority=group.speaker.priority if checks.weight else None,
        )
        self.runners[group.speaker.name] = runner
        return runner

    def _run_checks(self, name: str, runner: CheckRunner) -> None:
        if runner.config:
            loop = asyncio.get_running_loop()
            self._tasks[name] = loop.create_task(runner.run(), name=f"ifvip-checks-{name}")

    def attach(self, daemon: Daemon) -> None:
        """Daemon.run's `ready` callback: the groups have started; run the checks and take
        over SIGUSR1 (dump) and SIGUSR2 (demotion through the union)."""
        loop = asyncio.get_running_loop()
        for name, runner in self.runners.items():
            self._run_checks(name, runner)
        self._attached = True
        loop.add_signal_handler(signal.SIGUSR1, self.dump)
        loop.add_signal_handler(signal.SIGUSR2, self.toggle_demotion)

    def add_group(self, group: Group, checks: CheckConfig | None = None) -> None:
        """A group launched by a reload: its checks run from now on (SIGUSR2's demotion, if
        on, applies to it too)."""
        name = group.speaker.name
        chosen = checks if checks is not None else self.config.checks
        demoted = any(SIGUSR2_SOURCE in r.demotions.sources for r in self.runners.values())
        runner = self._runner(group, chosen)
        if demoted:
            runner.set_source(SIGUSR2_SOURCE, True, "SIGUSR2")
        if self._attached:
            self._run_checks(name, runner)

    async def remove_group(self, name: str) -> None:
        """A group retired by a reload: stop its checks."""
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.runners.pop(name, None)

    def toggle_demotion(self) -> None:
        for runner in self.runners.values():
            on = SIGUSR2_SOURCE not in runner.demotions.sources
            runner.set_source(SIGUSR2_SOURCE, on, "SIGUSR2" if on else "SIGUSR2: promoted")

    def dump(self) -> None:
        snapshot = self.snapshot()
        for g in snapshot.groups:
            log.info(
                "(%s) %s on %s, master %s, checks %s, counters %s",
                g.name,
                g.state,
                g.interface,
                g.master or "unknown",
                ", ".join(f"{c.name} {'ok' if c.healthy else 'FAILING'}" for c in g.checks) or "-",
                dict(g.counters),
            )
        try:
            path = write_snapshot(snapshot, self.config.state_dir)
        except OSError as exc:
            log.error("cannot write the status to %s: %s", self.config.state_dir, exc.strerror)
        else:
            log.info("status written to %s", path)

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
        for server in (self.status, self.metrics):
            if server is not None:
                await server.close()
        if self._sysctls:
            from ifvip.ifupdown.netlink import write_sysctl  # noqa: PLC0415

            restore_sysctls(self._sysctls, write_sysctl)
            self._sysctls = ()


def operations_config(
    *,
    check_http: Sequence[str] = (),
    check_http_status: str | None = None,
    check_http_insecure: bool = False,
    check_tcp: Sequence[str] = (),
    check_script: Sequence[str] = (),
    track_interface: Sequence[str] = (),
    check_interval: str | None = None,
    check_rise: str | None = None,
    check_fall: str | None = None,
    check_timeout: str | None = None,
    check_weight: str | None = None,
    status_socket: str | None = None,
    metrics: str | None = None,
    nonlocal_bind: bool = False,
    protocol: str = "carp",
    state_dir: str = DEFAULT_STATE_DIR,
    links: Sequence[str] | None = None,
) -> OperationsConfig:
    """The `ifvip run` options of this module (names as the keyword arguments, with dashes)
    validated into an OperationsConfig; ConfigProblems lists every problem at once."""
    from ifvip.daemon.checks import parse_check_options  # noqa: PLC0415
    from ifvip.daemon.settings import ConfigProblems  # noqa: PLC0415

    problems: list[str] = []
    checks = CheckConfig()
    try:
        checks = parse_check_options(
            http=check_http,
            http_status=check_http_status,
            http_insecure=check_http_insecure,
            tcp=check_tcp,
            script=check_script,
            track_interface=track_interface,
            interval=check_interval,
            rise=check_rise,
            fall=check_fall,
            timeout=check_timeout,
            weight=check_weight,
            protocol=protocol,
            links=links,
        )
    except ConfigProblems as found:
        problems += found.problems
    bind = None
    if metrics is not None:
        from ifvip.daemon.metrics import parse_metrics_address  # noqa: PLC0415 - see above

        try:
            bind = parse_metrics_address(metrics)
        except ConfigProblems as found:
            problems += found.problems
    if status_socket is not None and status_socket and not status_socket.startswith("/"):
        problems.append(f"--status-socket: '{status_socket}' is not an absolute path")
    if problems:
        raise ConfigProblems(problems)
    return OperationsConfig(
        checks=checks,
        state_dir=state_dir,
        status_socket=status_socket,
        metrics=bind,
        nonlocal_bind=nonlocal_bind,
    )


# The keyword arguments of operations_config that are `ifvip run` options, and the
# policy-routing ones: the run options this module and policy.py read.
ROUTING_OPTIONS: Final = ("rtable", "rtable_network_length", "rtable_gateway", "rule_priority")


def operations_and_policy(
    options: Mapping[str, Any],
    protocol: str,
    state_dir: str,
    links: list[str],
    vips: Sequence[Sequence[Vip]],
) -> tuple[OperationsConfig, PolicyRouting | None]:
    """The checks/status/metrics options and the policy-routing ones of `ifvip run`
    (`options`: all of its options, by keyword), validated together."""
    from ifvip.daemon.policy import parse_policy_options  # noqa: PLC0415
    from ifvip.daemon.settings import ConfigProblems  # noqa: PLC0415

    own = inspect.signature(operations_config).parameters
    given = {k: v for k, v in options.items() if k in own and k not in _SUPPLIED}
    routing = {name: options.get(name) for name in ROUTING_OPTIONS}
    problems: list[str] = []
    ops = policy = None
    try:
        ops = operations_config(protocol=protocol, state_dir=state_dir, links=links, **given)
    except ConfigProblems as found:
        problems += found.problems
    if routing["rtable"] is not None and len(vips) > 1:
        problems.append("--rtable: one table serves one group; declare routes per stanza instead")
    try:
        policy = parse_policy_options(
            rtable=routing["rtable"],
            network_length=routing["rtable_network_length"],
            gateway=routing["rtable_gateway"],
            rule_priority=routing["rule_priority"],
            vip=vips[0][0] if vips and vips[0] else None,
        )
    except ConfigProblems as found:
        problems += found.problems
    if problems:
        raise ConfigProblems(problems)
    assert ops is not None
    return ops, policy


_SUPPLIED: Final = frozenset({"protocol", "state_dir", "links"})  # not options of this module
