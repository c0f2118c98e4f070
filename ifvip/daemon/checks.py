"""Health checks of a group: their options, the rise/fall hysteresis, and what demotes.

This module is the pure half of the health checks (the probes that touch the network and
run scripts are in `daemon/probes.py`). It holds:

- the check kinds and their options, validated into a frozen `CheckConfig` by
  `parse_check_options()` (each problem a line naming its option, as `daemon/settings.py`
  does, for the CLI to print before exiting 78):

  =========================  ==================================================================
  ``--check-http URL``       GET URL (http or https); healthy when the status is
                             ``--check-http-status`` (default 200) within the timeout
  ``--check-tcp [ADDR:]PORT`` connect to ADDR:PORT; with no ADDR, healthy when something
                             listens on PORT locally (``/proc/net/tcp{,6}``, as the Rancher image)
  ``--check-script CMD``     run CMD (split like a shell word list, no shell, fixed PATH):
                             exit 0 is healthy; killed at the timeout
  ``--track-interface IF``   healthy while IF is up with carrier
  ``--check-interval S``     seconds between two rounds of probes (default 2, as solnet's)
  ``--check-rise N``         successes that end a failure (default 2)
  ``--check-fall N``         failures that end health (default 2)
  ``--check-timeout S``      bound of one probe (default: the interval)
  ``--check-weight N``       VRRP only: priority change instead of FAULT (keepalived's weight)
  =========================  ==================================================================

- `Hysteresis`: one check's verdict. It turns only after `fall` failures (or `rise`
  successes) in a row, so a check alternating between results never moves the VIP.
- `GroupHealth`: every check of a group; `record()` returns the election events to feed:
  `Demote` when the first check turns bad, `Promote` when the last one recovers (CARP:
  a demoted master bows out so peers take over at once; VRRP maps the same verdict to
  FAULT, or to a priority weight with ``--check-weight``).
- `Demotions`: the union of every demotion source (health checks, SIGUSR2...), because the
  election has one `demoted` flag: it is promoted only when no source demotes any more.
- A check aimed at one of the group's VIPs cannot be judged on a BACKUP (the address is
  not here; a connection would reach the peer that holds it). `probe_plan()` judges it
  there by the local-listener test on its port instead: the service is up on this host
  (bound to the wildcard address or, with ip_nonlocal_bind, to the VIP). A backup therefore
  never fails because it lacks the VIP, and a broken service still keeps it demoted.
- The `/proc/net/tcp` parser behind the listener test.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import shutil
import sys
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal, TypeAlias

from ifvip.daemon.settings import IFNAMSIZ, ConfigProblems, parse_int
from ifvip.election.events import Demote, Promote
from ifvip.hookenv import HOOK_PATH

DEFAULT_INTERVAL: Final = 2.0
DEFAULT_RISE: Final = 2
DEFAULT_FALL: Final = 2
INTERVAL_MAX: Final = 3600.0
STREAK_MAX: Final = 100
WEIGHT_MAX: Final = 253  # keepalived: weight -253..253
TCP_LISTEN: Final = "0A"

Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


# ------------------------------------------------------------------------- the checks


@dataclass(frozen=True)
class HttpCheck:
    """GET `url`; healthy when the response status is `expect`."""

    url: str
    host: str
    port: int
    path: str
    tls: bool
    expect: int = 200
    insecure: bool = False

    @property
    def name(self) -> str:
        return f"http {self.url}"

    @property
    def kind(self) -> str:
        return "http"

    @property
    def address(self) -> Address | None:
        """The target as an address when the URL names one (a host name is never a VIP)."""
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


@dataclass(frozen=True)
class TcpCheck:
    """Connect to `address`:`port`; with no address, something must listen on `port`."""

    address: Address | None
    port: int

    @property
    def name(self) -> str:
        if self.address is None:
            return f"tcp *:{self.port}"
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"tcp {host}:{self.port}"

    @property
    def kind(self) -> str:
        return "tcp"


@dataclass(frozen=True)
class ScriptCheck:
    """Run `argv`: exit status 0 is healthy."""

    argv: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"script {shlex.join(self.argv)}"

    @property
    def kind(self) -> str:
        return "script"

    @property
    def address(self) -> None:
        return None


@dataclass(frozen=True)
class CarrierCheck:
    """Healthy while `interface` is administratively up and has carrier."""

    interface: str

    @property
    def name(self) -> str:
        return f"carrier {self.interface}"

    @property
    def kind(self) -> str:
        return "carrier"

    @property
    def address(self) -> None:
        return None


Check: TypeAlias = HttpCheck | TcpCheck | ScriptCheck | CarrierCheck


@dataclass(frozen=True)
class ListenerProbe:
    """The local-listener test: something listens on `port` at `address` or the wildcard."""

    port: int
    address: Address | None = None


Probe: TypeAlias = Check | ListenerProbe


@dataclass(frozen=True)
class CheckConfig:
    """Every health check of one group, with the timing they share."""

    checks: tuple[Check, ...] = ()
    interval: float = DEFAULT_INTERVAL
    rise: int = DEFAULT_RISE
    fall: int = DEFAULT_FALL
    timeout: float = DEFAULT_INTERVAL
    weight: int = 0  # VRRP: 0 means FAULT on failure (keepalived's track_script default)

    def __bool__(self) -> bool:
        return bool(self.checks)

    def demotion_bound(self, advert_interval: float) -> float:
        """How long after a service dies the master has lost the VIP, at the latest.

        The first failing probe starts at most one interval after the death and each
        probe ends within the timeout; `fall` of them demote, and the peer takes over
        within one advert interval of the bow-out.
        """
        return self.interval * self.fall + self.timeout + advert_interval


def probe_plan(check: Check, *, is_master: bool, vips: Iterable[Address]) -> Probe:
    """What to run for `check` now: itself, or on a non-master the listener test of a VIP."""
    if is_master:
        return check
    if isinstance(check, HttpCheck | TcpCheck) and check.address in set(vips):
        return ListenerProbe(check.port, check.address)
    return check


# ------------------------------------------------------------------------- hysteresis


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe; `detail` says why in a few words (never a secret)."""

    ok: bool
    detail: str = ""
    judged: Literal["check", "listener"] = "check"


@dataclass(frozen=True)
class Hysteresis:
    """One check's verdict with keepalived's rise/fall: it turns after a run of results.

    `against` counts the results in a row that contradict the verdict; `streak` counts
    the results in a row equal to the last one (what the status shows).
    """

    rise: int = DEFAULT_RISE
    fall: int = DEFAULT_FALL
    healthy: bool = True  # keepalived starts a script as good unless init_fail
    against: int = 0
    streak: int = 0
    last: ProbeResult | None = None
    changes: int = 0

    def __post_init__(self) -> None:
        if self.rise < 1 or self.fall < 1:
            raise ValueError("rise and fall must be at least 1")


def observe(hysteresis: Hysteresis, result: ProbeResult) -> Hysteresis:
    """The verdict after one more result."""
    h = hysteresis
    streak = h.streak + 1 if h.last is not None and h.last.ok == result.ok else 1
    if result.ok == h.healthy:
        return replace(h, against=0, streak=streak, last=result)
    against = h.against + 1
    if against >= (h.rise if result.ok else h.fall):
        return replace(
            h, healthy=result.ok, against=0, streak=streak, last=result, changes=h.changes + 1
        )
    return replace(h, against=against, streak=streak, last=result)


@dataclass(frozen=True)
class Demotions:
    """Who demotes the group now; the election is demoted while anyone does."""

    sources: frozenset[str] = frozenset()

    @property
    def demoted(self) -> bool:
        return bool(self.sources)


def set_demotion(
    demotions: Demotions, source: str, on: bool, reason: str
) -> tuple[Demotions, Demote | Promote | None]:
    """Add or remove one source; the event to feed when the union changes, else None."""
    before = demotions.demoted
    sources = demotions.sources | {source} if on else demotions.sources - {source}
    after = Demotions(frozenset(sources))
    if after.demoted == before:
        return after, None
    return after, Demote(reason) if on else Promote(reason)


@dataclass(frozen=True)
class GroupHealth:
    """The verdicts of every check of a group, and the demotion they cause."""

    config: CheckConfig
    verdicts: tuple[Hysteresis, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.verdicts:
            hysteresis = Hysteresis(self.config.rise, self.config.fall)
            object.__setattr__(self, "verdicts", (hysteresis,) * len(self.config.checks))

    @property
    def healthy(self) -> bool:
        return all(v.healthy for v in self.verdicts)

    def failing(self) -> list[str]:
        return [
            c.name for c, v in zip(self.config.checks, self.verdicts, strict=True) if not v.healthy
        ]

    def priority_delta(self) -> int:
        """VRRP with a weight: keepalived adds a negative weight on failure, a positive
        weight on success."""
        weight = self.config.weight
        if weight == 0:
            return 0
        if weight < 0:
            return weight * sum(1 for v in self.verdicts if not v.healthy)
        return weight * sum(1 for v in self.verdicts if v.healthy)

    @property
    def faults(self) -> bool:
        """Whether the verdict demotes (CARP, or VRRP without a weight: FAULT)."""
        return self.config.weight == 0 and not self.healthy


HEALTH_SOURCE: Final = "health"


def record(
    health: GroupHealth, index: int, result: ProbeResult, demotions: Demotions
) -> tuple[GroupHealth, Demotions, Demote | Promote | None]:
    """Record one probe result of check `index`; return the event for the election."""
    verdicts = list(health.verdicts)
    verdicts[index] = observe(verdicts[index], result)
    health = replace(health, verdicts=tuple(verdicts))
    if health.faults:
        reason = "health check failed: " + ", ".join(health.failing())
        demotions, event = set_demotion(demotions, HEALTH_SOURCE, True, reason)
    else:
        demotions, event = set_demotion(demotions, HEALTH_SOURCE, False, "health checks pass")
    return health, demotions, event


# ------------------------------------------------------------------------- /proc/net/tcp


def parse_proc_net_tcp(
    text: str, *, byteorder: Literal["little", "big"] = sys.byteorder
) -> set[tuple[Address, int]]:
    """The (address, port) of every LISTEN socket in a /proc/net/tcp or tcp6 table.

    The kernel prints each 32-bit word of the address as the host reads it (`%08X`), so a
    little-endian machine shows 127.0.0.1 as 0100007F; the port is plain big-endian hex.
    """
    listening: set[tuple[Address, int]] = set()
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4 or fields[3] != TCP_LISTEN:
            continue
        address_hex, _, port_hex = fields[1].partition(":")
        try:
            words = [
                int(address_hex[i : i + 8], 16).to_bytes(4, byteorder)
                for i in range(0, len(address_hex), 8)
            ]
            address = ipaddress.ip_address(b"".join(words))
            listening.add((address, int(port_hex, 16)))
        except ValueError:
            continue
    return listening


def listens(sockets: Iterable[tuple[Address, int]], port: int, address: Address | None) -> bool:
    """Whether something listens on `port`: anywhere (no address), or where a connection to
    `address` would reach it: that address, 0.0.0.0 for IPv4, or :: (which takes IPv4 too
    unless IPV6_V6ONLY, which /proc does not show)."""
    for bound, bound_port in sockets:
        if bound_port != port:
            continue
        if address is None or bound == address:
            return True
        if bound.is_unspecified and (bound.version == 6 or address.version == 4):
            return True
    return False


# ------------------------------------------------------------------------- HTTP status line


def http_status(line: bytes) -> int | None:
    """The status code of an HTTP/1.x status line, or None if it is not one."""
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        return None
    code = int(parts[1])
    return code if 100 <= code <= 599 else None


def http_request(check: HttpCheck) -> bytes:
    """The whole GET request of an HTTP check (HTTP/1.0, no keep-alive)."""
    host = check.host if ":" not in check.host else f"[{check.host}]"
    default = 443 if check.tls else 80
    authority = host if check.port == default else f"{host}:{check.port}"
    return (
        f"GET {check.path} HTTP/1.0\r\nHost: {authority}\r\n"
        "User-Agent: ifvip-check\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    ).encode("ascii")


# ------------------------------------------------------------------------- options


def _seconds(value: str, option: str, low: float, high: float, problems: list[str]) -> float | None:
    """A duration in seconds in low..high (integers: settings.parse_int)."""
    try:
        number = float(value)
    except ValueError:
        problems.append(f"--{option}: '{value}' is not a number of seconds")
        return None
    if not low <= number <= high:  # also NaN
        problems.append(f"--{option}: {value} is out of range {low:g}..{high:g}")
        return None
    return number


def _redact(url: str) -> str:
    """The URL with any user:password@ part replaced: a secret never reaches a message."""
    scheme, sep, rest = url.partition("://")
    authority, slash, tail = rest.partition("/")
    if sep and "@" in authority:
        return f"{scheme}://***@{authority.rpartition('@')[2]}{slash}{tail}"
    return url


def _http(url: str, expect: int, insecure: bool, problems: list[str]) -> HttpCheck | None:
    shown = _redact(url)
    if any(c.isspace() for c in url):
        problems.append(f"--check-http: '{shown}' contains white space")
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        problems.append(f"--check-http: '{shown}' is not an http:// or https:// URL")
        return None
    try:
        port = parts.port
    except ValueError:
        problems.append(f"--check-http: '{shown}' has a port out of range 1..65535")
        return None
    if not parts.hostname:
        problems.append(f"--check-http: '{shown}' has no host")
        return None
    if parts.username is not None:
        problems.append(f"--check-http: '{shown}': user names in check URLs are not supported")
        return None
    if port == 0:
        problems.append(f"--check-http: '{shown}' has a port out of range 1..65535")
        return None
    tls = parts.scheme == "https"
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return HttpCheck(
        url=url,
        host=parts.hostname,
        port=port or (443 if tls else 80),
        path=path,
        tls=tls,
        expect=expect,
        insecure=insecure,
    )


def _tcp(text: str, problems: list[str]) -> TcpCheck | None:
    host, colon, port_text = text.rpartition(":")
    address: Address | None = None
    if colon:
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:
            problems.append(f"--check-tcp: '{text}': write an IPv6 address as [ADDR]:PORT")
            return None
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            problems.append(f"--check-tcp: '{host}' is not an IP address (in '{text}')")
            return None
    else:
        port_text = text
    port = parse_int(port_text, "check-tcp", 1, 65535, problems)
    if port is None:
        return None
    return TcpCheck(address, port)


def _script(text: str, problems: list[str]) -> ScriptCheck | None:
    try:
        argv = tuple(shlex.split(text))
    except ValueError as exc:
        problems.append(f"--check-script: cannot split '{text}': {exc}")
        return None
    if not argv:
        problems.append("--check-script: the command is empty")
        return None
    program = argv[0]
    if "/" in program:
        if not (os.path.isfile(program) and os.access(program, os.X_OK)):
            problems.append(f"--check-script: {program} is not an executable file")
            return None
    elif shutil.which(program, path=HOOK_PATH) is None:
        problems.append(f"--check-script: {program} is not found in {HOOK_PATH}")
        return None
    return ScriptCheck(argv)


def parse_check_options(
    *,
    http: Sequence[str] = (),
    http_status: str | None = None,
    http_insecure: bool = False,
    tcp: Sequence[str] = (),
    script: Sequence[str] = (),
    track_interface: Sequence[str] = (),
    interval: str | None = None,
    rise: str | None = None,
    fall: str | None = None,
    timeout: str | None = None,
    weight: str | None = None,
    protocol: str = "carp",
    links: Sequence[str] | None = None,
) -> CheckConfig:
    """Validate the health-check options into a CheckConfig; raise ConfigProblems.

    Options left None take their defaults; a timing option given without any check is a
    problem (it would silently do nothing). `links` lists the interfaces that exist
    (None: do not check).
    """
    problems: list[str] = []
    expect = 200
    if http_status is not None:
        code = parse_int(http_status, "check-http-status", 100, 599, problems)
        expect = code if code is not None else expect
        if not http:
            problems.append("--check-http-status: needs --check-http URL")
    if http_insecure and not any(u.startswith("https:") for u in http):
        problems.append("--check-http-insecure: needs an https:// --check-http URL")
    checks: list[Check | None] = [_http(u, expect, http_insecure, problems) for u in http]
    checks += [_tcp(t, problems) for t in tcp]
    checks += [_script(s, problems) for s in script]
    for name in track_interface:
        if not name or len(name.encode()) >= IFNAMSIZ or "/" in name:
            problems.append(f"--track-interface: '{name}' is not an interface name")
            checks.append(None)
        elif links is not None and name not in links:
            problems.append(f"--track-interface: no such interface '{name}'")
            checks.append(None)
        else:
            checks.append(CarrierCheck(name))
    seen: set[str] = set()
    for check in checks:
        if check is not None:
            if check.name in seen:
                problems.append(f"--check-{check.kind}: '{check.name}' is given twice")
            seen.add(check.name)

    every = _seconds(interval or "2", "check-interval", 0.01, INTERVAL_MAX, problems)
    up = parse_int(rise or "2", "check-rise", 1, STREAK_MAX, problems)
    down = parse_int(fall or "2", "check-fall", 1, STREAK_MAX, problems)
    bound = None
    if timeout is not None:
        bound = _seconds(timeout, "check-timeout", 0.01, INTERVAL_MAX, problems)
        if bound is not None and every is not None and bound > every:
            problems.append(
                f"--check-timeout: {timeout} s is longer than --check-interval {every:g} s"
            )
    delta = 0
    if weight is not None:
        found = parse_int(weight, "check-weight", -WEIGHT_MAX, WEIGHT_MAX, problems)
        delta = found if found is not None else 0
        if protocol != "vrrp":
            problems.append("--check-weight: only VRRP has priorities; CARP demotes (--protocol)")
    if not checks:
        for option, value in (
            ("check-interval", interval),
            ("check-rise", rise),
            ("check-fall", fall),
            ("check-timeout", timeout),
            ("check-weight", weight),
        ):
            if value is not None:
                problems.append(
                    f"--{option}: no check is configured (--check-http, --check-tcp, "
                    "--check-script, --track-interface)"
                )
    if problems:
        raise ConfigProblems(problems)
    assert every is not None and up is not None and down is not None
    return CheckConfig(
        checks=tuple(c for c in checks if c is not None),
        interval=every,
        rise=up,
        fall=down,
        timeout=bound if bound is not None else every,
        weight=delta,
    )
