"""The `ifvip` command line: a thin click layer over the reader, ifupdown and the daemon.

Invoked through a link named `ifquery` (or `ifup`/`ifdown` once they exist), it behaves as
that ifupdown command. The ifupdown-compatible commands keep ifupdown's exit codes: 0 on
success, 1 on any failure, usage errors included.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final, NoReturn

import click

from ifvip import __version__
from ifvip.wire.carp import PASSWORD_MAX
from ifvip.wire.inet import GROUP_V4

if TYPE_CHECKING:
    from ifvip.daemon.launch import RunPlan
    from ifvip.errors import ConfigError
    from ifvip.interfaces.model import InterfacesFile

EXIT_FAILURE: Final = 1
DEFAULT_PATH: Final = "/etc/network/interfaces"
EXIT_USAGE: Final = 2

# Commands that mimic ifupdown, which exits 1 (not click's 2) on usage errors.
IFUPDOWN_COMMANDS: Final = frozenset({"ifquery", "ifup", "ifdown"})


def _fail(prog: str, message: str) -> NoReturn:
    click.echo(f"{prog}: {message}", err=True)
    sys.exit(EXIT_FAILURE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="ifvip")
def cli() -> None:
    """Keep a virtual IP on one host of a group, configured the way ifupdown would."""


@cli.command()
@click.option(
    "-i",
    "--interfaces",
    "path",
    default=DEFAULT_PATH,
    show_default=True,
    help="Interfaces file to read.",
)
@click.option(
    "--state-dir",
    default="/run/network",
    show_default=True,
    help="ifupdown's state directory (read by --state).",
)
@click.option("-a", "--all", "all_mode", is_flag=True, help="With --list: the auto class.")
@click.option("--allow", "allow", metavar="CLASS", help="Only interfaces of allow-CLASS.")
@click.option("-l", "--list", "list_mode", is_flag=True, help="List matching interfaces.")
@click.option("--state", "state", is_flag=True, help="Show PHYS=LOGICAL from the state file.")
@click.option(
    "-X",
    "--exclude",
    multiple=True,
    metavar="PATTERN",
    help="Leave out interfaces matching PATTERN.",
)
@click.option("--no-loopback", is_flag=True, help="Do not add the implicit lo.")
@click.option("--no-mappings", is_flag=True, help="Do not run mapping scripts.")
@click.option(
    "-o",
    "--option",
    "options",
    multiple=True,
    metavar="OPT=VAL",
    help="Set an option as though it were in the file.",
)
@click.option("-v", "--verbose", is_flag=True, help="Accepted for compatibility.")
@click.option(
    "--read-environment",
    is_flag=True,
    help="Read EXCLUDE_INTERFACES from the environment, as networking.service does.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (ifvip's own).")
@click.argument("targets", nargs=-1, metavar="[IFACE[=LOGICAL]]...")
def ifquery(verbose: bool, **kw: Any) -> None:
    """Print interface configuration the way ifupdown 0.8's ifquery does.

    stdout and the exit code are ifupdown's; scripts may parse them.
    """
    from ifvip import commands

    del verbose  # accepted for compatibility
    try:
        commands.ifquery(**kw, out=click.echo)
    except commands.CommandUsageError as exc:
        raise click.UsageError(str(exc)) from None


@cli.command()
@click.option(
    "-i",
    "--interfaces",
    "path",
    default=DEFAULT_PATH,
    show_default=True,
    help="Interfaces file to check.",
)
@click.option("--no-loopback", is_flag=True, help="Do not add the implicit lo.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def check(path: str, no_loopback: bool, as_json: bool) -> None:
    """Validate an interfaces file: every error and warning as path:line:col: message.

    Exits 1 if the file is refused as a whole (what makes ifupdown refuse it). An error
    scoped to one interface (an invalid value, a repeated option, `auto X` without a
    stanza) is reported too, but ifup fails only that interface: the exit status is 0.
    The ucarp-* and vrrp-* groups are checked as `ifvip run --interfaces` checks them,
    except for what only the host knows (its links and addresses, pass files it cannot
    read here).
    """
    import json

    from ifvip.interfaces.check import check as run_check
    from ifvip.interfaces.check import file_errors
    from ifvip.interfaces.loader import load

    defn = load(path, no_loopback=no_loopback)
    problems = run_check(defn)
    problems += group_errors(defn, path, problems)
    errors = [p for p in problems if not p.warning]
    if as_json:
        payload = {
            "files": list(defn.files),
            "errors": len(errors),
            "warnings": len(problems) - len(errors),
            "diagnostics": [
                {
                    "path": p.path,
                    "line": p.line,
                    "col": p.col,
                    "severity": "warning" if p.warning else "error",
                    "message": p.msg,
                }
                for p in problems
            ],
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        for problem in problems:
            click.echo(str(problem))
        stanzas = sum(1 for s in defn.ifaces if not s.builtin)
        click.echo(
            f"{path}: {len(errors)} error(s), {len(problems) - len(errors)} warning(s); "
            f"{stanzas} stanza(s) in {len(defn.files)} file(s)",
            err=True,
        )
    sys.exit(EXIT_FAILURE if file_errors(problems) else 0)


def group_errors(defn: InterfacesFile, path: str, known: list[ConfigError]) -> list[ConfigError]:
    """What `ifvip run --interfaces` would refuse in the file's groups beyond the schema's
    per-option checks (a VRRPv2 interval in tenths, two groups with one VRID...), each
    protocol reading its own stanzas without the host; scoped to the stanza's interface,
    in file order."""
    from ifvip.daemon.protocols import PROTOCOLS

    seen = {str(p) for p in known}
    found = [e for entry in PROTOCOLS.values() for e in entry.file_checker()(defn, path)]
    files = list(defn.files)
    found.sort(key=lambda e: (files.index(e.path) if e.path in files else len(files), e.line))
    return [e for e in found if str(e) not in seen]


def _env(*names: str) -> list[str]:
    """IFVIP_<NAME> first, then the kubernetize/ucarp image's UCARP_<NAME> aliases."""
    return [f"IFVIP_{names[0]}", *(f"UCARP_{n}" for n in names[1:])]


# The options of daemon/operations.py (checks, status, metrics) and daemon/policy.py
# (policy routing, non-local bind), for `run`: `@_operations_options` above it, then
# operations_config(**those keyword arguments) / parse_policy_options(...).
_OPERATIONS_OPTIONS: Final = (
    click.option(
        "--check-http",
        multiple=True,
        envvar=_env("CHECK_HTTP"),
        metavar="URL",
        help="Health check: GET URL (http/https) must answer --check-http-status (repeatable).",
    ),
    click.option(
        "--check-http-status",
        envvar=_env("CHECK_HTTP_STATUS"),
        metavar="CODE",
        help="The HTTP status a --check-http URL must answer (default 200).",
    ),
    click.option(
        "--check-http-insecure",
        is_flag=True,
        envvar=_env("CHECK_HTTP_INSECURE"),
        help="Do not verify the certificate of https:// check URLs.",
    ),
    click.option(
        "--check-tcp",
        multiple=True,
        envvar=_env("CHECK_TCP"),
        metavar="[ADDR:]PORT",
        help="Health check: connect to ADDR:PORT; PORT alone: something listens on it here.",
    ),
    click.option(
        "--check-script",
        multiple=True,
        envvar=_env("CHECK_SCRIPT"),
        metavar="COMMAND",
        help="Health check: COMMAND (no shell, fixed PATH) exits 0 (repeatable).",
    ),
    click.option(
        "--track-interface",
        multiple=True,
        envvar=_env("TRACK_INTERFACE"),
        metavar="IFACE",
        help="Health check: IFACE is up with carrier (repeatable).",
    ),
    click.option(
        "--check-interval",
        envvar=_env("CHECK_INTERVAL"),
        metavar="SECONDS",
        help="Seconds between health-check rounds (default 2).",
    ),
    click.option(
        "--check-rise",
        envvar=_env("CHECK_RISE"),
        metavar="N",
        help="Successes in a row that end a check failure (default 2).",
    ),
    click.option(
        "--check-fall",
        envvar=_env("CHECK_FALL"),
        metavar="N",
        help="Failures in a row that demote (default 2).",
    ),
    click.option(
        "--check-timeout",
        envvar=_env("CHECK_TIMEOUT"),
        metavar="SECONDS",
        help="Bound of one probe (default: the interval).",
    ),
    click.option(
        "--check-weight",
        envvar=_env("CHECK_WEIGHT"),
        metavar="N",
        help="VRRP: change the priority by N per check instead of FAULT (keepalived weight).",
    ),
    click.option(
        "--status-socket",
        envvar=_env("STATUS_SOCKET"),
        metavar="PATH",
        help="Unix socket of `ifvip status` (default: STATE_DIR/ifvip.sock; '' for none).",
    ),
    click.option(
        "--metrics",
        envvar=_env("METRICS"),
        metavar="ADDR:PORT",
        help="Serve /metrics (Prometheus), /healthz and /readyz on ADDR:PORT.",
    ),
    click.option(
        "--nonlocal-bind",
        is_flag=True,
        envvar=_env("NONLOCAL_BIND"),
        help="Set net.ipv4/ipv6.ip_nonlocal_bind while running, so services bind the VIP.",
    ),
    click.option(
        "--rtable",
        envvar=_env("RTABLE", "RTABLE"),
        metavar="N",
        help="On MASTER: rule 'from VIP lookup N' and the VIP's routes in table N.",
    ),
    click.option(
        "--rtable-network-length",
        envvar=_env("RTABLE_NETWORK_LENGTH", "RTABLE_NETWORK_LENGTH"),
        metavar="LEN",
        help="Prefix length of the VIP's network route in table N (default: the VIP's).",
    ),
    click.option(
        "--rtable-gateway",
        envvar=_env("RTABLE_GATEWAY", "GATEWAY"),
        metavar="ADDR",
        help="Default route via ADDR in table N.",
    ),
    click.option(
        "--rule-priority",
        envvar=_env("RULE_PRIORITY", "RULE_PRIORITY"),
        metavar="P",
        help="Priority of the 'from VIP lookup N' rule.",
    ),
)


def _operations_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_OPERATIONS_OPTIONS):
        command = option(command)
    return command


class _BadRunValue(click.BadParameter):
    exit_code = 78  # EX_CONFIG, as daemon/settings.py's problems


class _RunCommand(click.Command):
    """`run`: an option value click itself refuses (`--protocol hsrp`, `--vrrp-version 4`)
    is a configuration problem like the others, exit 78; click's message names the option."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.BadParameter as exc:
            raise _BadRunValue(exc.message, exc.ctx, exc.param, exc.param_hint) from None


@cli.command(cls=_RunCommand, context_settings={"allow_interspersed_args": True})
@click.option(
    "-i",
    "--interface",
    envvar=_env("INTERFACE", "INTERFACE"),
    help="Interface of the group (ucarp -i; default: the default route's).",
)
@click.option(
    "-s",
    "--srcip",
    envvar=_env("SRCIP", "SRCIP"),
    help="Persistent source address of the adverts (ucarp -s; default: the interface's first).",
)
@click.option(
    "-v",
    "--vhid",
    "--vrid",
    "vhid",
    envvar=_env("VHID", "VHID"),
    help="Virtual host id, 1-255 (ucarp -v).",
)
@click.option(
    "-p",
    "--pass",
    "password",
    envvar=_env("PASS", "PASS"),
    help=f"Password, at most {PASSWORD_MAX} bytes (ucarp -p).",
)
@click.option(
    "-o",
    "--passfile",
    envvar=_env("PASSFILE", "PASS_FILE"),
    help="Read the password from the first line of a file.",
)
@click.option(
    "-P",
    "--preempt",
    is_flag=True,
    envvar=_env("PREEMPT"),
    help="Take over a slower master at once.",
)
@click.option(
    "-n",
    "--neutral",
    is_flag=True,
    envvar=_env("NEUTRAL"),
    help="Do not run the downscript at start.",
)
@click.option(
    "-a", "--addr", envvar=_env("ADDR", "ADDR"), help="The virtual IPv4 address (ucarp -a)."
)
@click.option(
    "--masklen", envvar=_env("MASKLEN", "MASKLEN"), help="Prefix length of --addr (default 32)."
)
@click.option(
    "--vip",
    "vips",
    multiple=True,
    envvar=_env("VIP"),
    metavar="ADDR/LEN[@DEV]",
    help="A virtual address to add on MASTER (repeatable; env: space-separated).",
)
@click.option(
    "-b",
    "--advbase",
    default="1",
    show_default=True,
    envvar=_env("ADVBASE"),
    help="Advert interval base, seconds.",
)
@click.option(
    "-k",
    "--advskew",
    default="0",
    show_default=True,
    envvar=_env("ADVSKEW"),
    help="Advert skew, 1/256 s (0-255).",
)
@click.option(
    "-r",
    "--deadratio",
    default="3",
    show_default=True,
    envvar=_env("DEADRATIO"),
    help="Missed adverts before the master is declared dead.",
)
@click.option(
    "-u",
    "--upscript",
    envvar=_env("UPSCRIPT"),
    help="Run as SCRIPT IFACE VADDR [XPARAM] on MASTER.",
)
@click.option(
    "-d",
    "--downscript",
    envvar=_env("DOWNSCRIPT"),
    help="Run as SCRIPT IFACE VADDR [XPARAM] on BACKUP.",
)
@click.option("-x", "--xparam", envvar=_env("XPARAM"), help="Extra argument for the scripts.")
@click.option(
    "--script-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    envvar=_env("SCRIPT_TIMEOUT"),
    metavar="SECONDS",
    help="Kill an up/down script (or a --manage stanza's ifup hook) running longer.",
)
@click.option(
    "-z",
    "--shutdown",
    is_flag=True,
    envvar=_env("SHUTDOWN"),
    help="Accepted for ucarp compatibility: ifvip always releases at exit.",
)
@click.option(
    "-S",
    "--ignoreifstate",
    is_flag=True,
    envvar=_env("IGNOREIFSTATE"),
    help="Ignore the link state.",
)
@click.option(
    "-M",
    "--nomcast",
    is_flag=True,
    envvar=_env("NOMCAST", "BROADCAST"),
    help="Send adverts to the Ethernet broadcast address, join no group.",
)
@click.option(
    "--mcast",
    "--mcastip",
    "mcast",
    default=str(GROUP_V4),
    show_default=True,
    envvar=_env("MCAST"),
    help="Multicast group.",
)
@click.option(
    "--forge-mac",
    is_flag=True,
    envvar=_env("FORGE_MAC"),
    help="Send adverts from ucarp's 00:00:5e:00:00:VHID instead of the real MAC.",
)
@click.option(
    "--interfaces",
    "interfaces_file",
    envvar=_env("INTERFACES"),
    metavar="FILE",
    help="Interfaces file: with --manage, the stanzas to bring up; without a group given by "
    "options, run every group it declares: one per stanza with ucarp-vid (MASTER = ifup "
    "IFACE:ucarp) or vrrp-id, CARP and VRRP side by side.",
)
@click.option(
    "--manage",
    multiple=True,
    envvar=_env("MANAGE"),
    metavar="LOGICAL",
    help="ifup LOGICAL from --interfaces on MASTER, ifdown it on BACKUP and at exit (repeatable).",
)
@click.option(
    "--up-list",
    envvar=_env("UP_LIST"),
    metavar="FILE",
    help="With --interfaces alone: run only the groups of the interfaces FILE lists, one "
    "name a line, read anew on SIGHUP (kept by the Debian if-up.d/if-down.d hook).",
)
@click.option(
    "--sync-group",
    envvar=_env("SYNC_GROUP"),
    metavar="NAME",
    help="Sync group of the group given by options: its members are MASTER together "
    "(in an interfaces file: ifvip-sync-group).",
)
@click.option(
    "--state-dir",
    default="/run/ifvip",
    show_default=True,
    envvar=_env("STATE_DIR"),
    help="Where ifvip records the VIPs it adds (created 0700).",
)
@click.option(
    "--ifstate-dir",
    default="/run/network",
    show_default=True,
    envvar=_env("IFSTATE_DIR"),
    help="ifupdown's state directory, for the --manage and ucarp-* stanzas.",
)
@click.option(
    "--vip-lifetime",
    envvar=_env("VIP_LIFETIME"),
    metavar="SECONDS",
    help="Lifetime of added VIPs, refreshed by every advert (default: two master-down "
    "intervals; 0: permanent, as ucarp).",
)
@click.option(
    "--garp-repeat",
    envvar=_env("GARP_REPEAT", "GARP_TIMEOUT"),
    metavar="SECONDS",
    help="Repeat the gratuitous ARP every SECONDS while MASTER (default: off).",
)
@click.option(
    "-B",
    "--daemonize",
    is_flag=True,
    envvar=_env("DAEMONIZE"),
    help="Detach into the background, logging to syslog, as ucarp -B.",
)
@click.option("-D", "--debug", is_flag=True, envvar=_env("DEBUG"), help="Log debug messages.")
@click.option(
    "-f",
    "--facility",
    envvar=_env("FACILITY"),
    help="Syslog facility after -B (ucarp -f; default daemon, none: no logs).",
)
@click.option(
    "--protocol",
    type=click.Choice(["carp", "vrrp"]),
    default="carp",
    show_default=True,
    envvar=_env("PROTOCOL"),
    help="CARP (ucarp) or VRRP (keepalived); both use IP protocol 112.",
)
@click.option(
    "--vrrp-version",
    type=click.Choice(["2", "3"]),
    envvar=_env("VRRP_VERSION"),
    help="VRRP version (default: 2 for IPv4, 3 for IPv6, as keepalived).",
)
@click.option(
    "--priority",
    default="100",
    show_default=True,
    envvar=_env("PRIORITY"),
    help="VRRP priority 1-255; 255 is the address owner.",
)
@click.option(
    "--advert-int",
    default="1",
    show_default=True,
    envvar=_env("ADVERT_INT"),
    metavar="SECONDS",
    help="VRRP advert interval: whole seconds (v2) or 0.01-40.95 in 10 ms steps (v3).",
)
@click.option(
    "--nopreempt",
    is_flag=True,
    envvar=_env("NOPREEMPT"),
    help="VRRP: never take over from a live master of lower priority.",
)
@click.option(
    "--preempt-delay",
    envvar=_env("PREEMPT_DELAY"),
    metavar="SECONDS",
    help="VRRP: wait this long after first hearing a lower-priority master before preempting.",
)
@click.option(
    "--auth-pass",
    envvar=_env("AUTH_PASS"),
    help="VRRPv2 PASS authentication password, at most 8 bytes (keepalived auth_pass).",
)
@click.option(
    "--auth-pass-file",
    envvar=_env("AUTH_PASS_FILE"),
    metavar="FILE",
    help="Read the VRRPv2 password from the first line of FILE.",
)
@click.option(
    "--unicast-peer",
    "unicast_peers",
    multiple=True,
    envvar=_env("UNICAST_PEER"),
    metavar="ADDR",
    help="VRRP: send adverts to ADDR instead of the group (repeatable; our own is skipped).",
)
@click.option(
    "--notify",
    "notify",
    multiple=True,
    envvar=_env("NOTIFY"),
    metavar="SCRIPT",
    help="VRRP: run SCRIPT INSTANCE NAME STATE PRIORITY on each transition, as keepalived.",
)
@click.option(
    "--instance",
    envvar=_env("INSTANCE"),
    metavar="NAME",
    help="VRRP instance name given to --notify scripts (default: VI_<vrid>).",
)
@click.option(
    "--vrrp-checksum",
    type=click.Choice(["pseudo-header", "message-only"]),
    default="pseudo-header",
    show_default=True,
    envvar=_env("VRRP_CHECKSUM"),
    help="VRRPv3 over IPv4: keepalived's pseudo-header checksum or RFC 9568's message-only.",
)
@click.option(
    "--garp-master-repeat",
    default="5",
    show_default=True,
    envvar=_env("GARP_MASTER_REPEAT"),
    help="VRRP: gratuitous ARPs / NAs per address on becoming master.",
)
@click.option(
    "--garp-master-delay",
    default="5",
    show_default=True,
    envvar=_env("GARP_MASTER_DELAY"),
    metavar="SECONDS",
    help="VRRP: second announcement burst this long after becoming master (0: none).",
)
@click.option(
    "--garp-master-refresh",
    default="0",
    show_default=True,
    envvar=_env("GARP_MASTER_REFRESH"),
    metavar="SECONDS",
    help="VRRP: announce again every SECONDS while master (0: off).",
)
@_operations_options
def run(**options: Any) -> None:
    """Run CARP groups, a drop-in for `ucarp ARGS`, a VRRP group beside keepalived
    (--protocol vrrp), or every group an interfaces file declares (--interfaces FILE alone:
    ucarp-* and vrrp-* stanzas, CARP and VRRP in one process).

    Becoming MASTER adds the virtual addresses (or runs the up script, or ifups the
    --manage stanzas); becoming BACKUP removes them, and the start removes what the
    stanzas declare even without a journal. Every address MASTER brings up (VIPs, the
    stanzas' addresses) carries a lifetime that every advert refreshes, so the kernel drops
    them if ifvip dies. A MASTER action that fails (a VIP, an ifup, an up script) is a
    fault: the group bows out and sits out a backoff (30 s, doubling to 10 min), and
    `ifvip status` names the failing line and exits 1. SIGTERM/SIGINT release and
    send a bow-out advert; SIGHUP reloads the configuration (unchanged groups keep running
    untouched); SIGUSR2 demotes until a second SIGUSR2; SIGUSR1 logs the state and
    counters. Every option also reads IFVIP_<OPTION> (and the UCARP_* names of the
    ucarp container image). Configuration problems exit 78.
    """
    import logging

    from ifvip.daemon.launch import build_plan, run_plan, systemd_notifier
    from ifvip.daemon.settings import EX_CONFIG, ConfigProblems

    logging.basicConfig(
        level=logging.DEBUG if options["debug"] else logging.INFO,
        format="%(asctime)s ifvip[%(process)d]: %(message)s",
    )

    def build() -> RunPlan:
        """The whole configuration from the options; SIGHUP calls it again (the same
        command line and environment; the passfile and interfaces file read anew)."""
        return build_plan(options)

    _warn_passfiles(options["passfile"], options["auth_pass_file"])
    try:
        plan = build()
    except ConfigProblems as problems:
        for problem in problems.problems:
            click.echo(f"ifvip run: {problem}", err=True)
        sys.exit(EX_CONFIG)
    except OSError as exc:
        click.echo(f"ifvip run: --state-dir {options['state_dir']}: {exc.strerror}", err=True)
        sys.exit(EX_CONFIG)
    if options["daemonize"]:
        from ifvip.daemon.launch import detach

        detach(options["facility"])
    notifier, watchdog = systemd_notifier()
    _run_daemon(run_plan(plan, build=build, notifier=notifier, watchdog=watchdog))


def _warn_passfiles(*paths: str | None) -> None:
    """At start, once per file: a password file any local user can read (never its text)."""
    given = dict.fromkeys(p for p in paths if p)
    if not given:
        return  # the interfaces checker (and its model) loads only to look at a file
    import logging

    from ifvip.interfaces.check import passfile_warning

    for path in given:
        warning = passfile_warning(path)
        if warning is not None:
            logging.getLogger("ifvip").warning("%s", warning)


def _run_daemon(main: Any) -> None:
    """asyncio.run(main); a socket of ours that cannot be opened (a port in use, a path
    another ifvip serves) is a configuration problem: one line, exit 78, before any group
    has touched the network."""
    import asyncio

    from ifvip.daemon.operations import OperationsError
    from ifvip.daemon.settings import EX_CONFIG, ConfigProblems

    try:
        asyncio.run(main)
    except OperationsError as exc:
        click.echo(f"ifvip run: {exc}", err=True)
        sys.exit(EX_CONFIG)
    except ConfigProblems as problems:  # refused before anything was touched
        for problem in problems.problems:
            click.echo(f"ifvip run: {problem}", err=True)
        sys.exit(EX_CONFIG)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="The snapshot as JSON (for scripts).")
@click.option(
    "--socket",
    "socket_path",
    envvar="IFVIP_STATUS_SOCKET",
    metavar="PATH",
    help="The daemon's status socket (default: STATE_DIR/ifvip.sock).",
)
@click.option(
    "--state-dir",
    default="/run/ifvip",
    show_default=True,
    envvar="IFVIP_STATE_DIR",
    help="The state directory of the daemon to ask.",
)
def status(as_json: bool, socket_path: str | None, state_dir: str) -> None:
    """Show every group of a running `ifvip run`: state, since when, master, priority or
    skew, VIPs, managed stanzas, checks and counters.

    Exits 1 with a sentence saying why when no daemon answers, and 1 after the status when
    a group has a fault (its MASTER action failed): the image's HEALTHCHECK reports it.
    """
    from ifvip import commands

    commands.status(as_json=as_json, socket_path=socket_path, state_dir=state_dir, out=click.echo)


@cli.command()
@click.option("--headless", is_flag=True, help="Plain log lines, exit 0 on success (for tests).")
@click.option(
    "--protocol",
    type=click.Choice(["carp", "vrrp"]),
    default="carp",
    show_default=True,
    help="The group's protocol: CARP (ucarp's) or VRRP (keepalived's).",
)
def demo(headless: bool, protocol: str) -> None:
    """Show a failover in network namespaces on this machine (needs root).

    Builds a bridge, two ifvip nodes and a client, shows who is master and the adverts on
    the wire in a live status line, kills the master, measures the takeover, brings the
    old master back, and removes everything, also on Ctrl-C.
    """
    from ifvip.demo import main as run_demo

    sys.exit(run_demo(headless, protocol))


@cli.command()
@click.option(
    "--protocol",
    type=click.Choice(["carp", "vrrp"]),
    default="carp",
    show_default=True,
    help="The codec for protocol-112 packets (CARP and VRRPv2 look alike: never guessed).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per frame.")
@click.argument("capture", type=click.Path(exists=True, dir_okay=False))
def decode(protocol: str, as_json: bool, capture: str) -> None:
    """Print the adverts, gratuitous ARPs and neighbour advertisements in a pcap file.

    A debugging aid: one line per frame with its time from the first frame, source MAC and
    decoded fields; a packet that does not decode says why. Exit 1 if the file is not a
    classic Ethernet pcap.
    """
    import json

    from ifvip.errors import DecodeError
    from ifvip.wire.capture import decode_frames
    from ifvip.wire.pcap import read_pcap

    with open(capture, "rb") as handle:
        data = handle.read()
    try:
        frames = list(read_pcap(data))
    except DecodeError as exc:
        _fail("ifvip decode", f"{capture}: {exc}")
    origin = frames[0].time if frames else 0.0
    for decoded in decode_frames(frames, protocol):
        click.echo(json.dumps(decoded.to_json()) if as_json else decoded.line(origin))


def _ifupdown_options(func: Callable[..., None]) -> Callable[..., None]:
    """The options ifup and ifdown share (ifupdown 0.8's, plus --scripts-dir)."""
    options = [
        click.option(
            "-i",
            "--interfaces",
            "path",
            default=DEFAULT_PATH,
            show_default=True,
            help="Interfaces file to read.",
        ),
        click.option(
            "--state-dir",
            default="/run/network",
            show_default=True,
            help="ifupdown's state directory (ifstate files, locks, ifvip's journal).",
        ),
        click.option(
            "-a", "--all", "all_mode", is_flag=True, help="All interfaces of the class (auto)."
        ),
        click.option("--allow", metavar="CLASS", help="Only interfaces listed in allow-CLASS."),
        click.option("-n", "--no-act", is_flag=True, help="Print what would be done, do nothing."),
        click.option("-v", "--verbose", is_flag=True, help="Print each command as it is run."),
        click.option("-f", "--force", is_flag=True, help="Ignore the recorded state."),
        click.option("--no-scripts", is_flag=True, help="Do not run the if-*.d scripts."),
        click.option("--no-loopback", is_flag=True, help="Do not add the implicit lo."),
        click.option(
            "--ignore-errors", is_flag=True, help="Go on after a failing command (ifupdown's)."
        ),
        click.option(
            "-X",
            "--exclude",
            multiple=True,
            metavar="PATTERN",
            help="Leave out interfaces matching PATTERN.",
        ),
        click.option(
            "-o",
            "--option",
            "options",
            multiple=True,
            metavar="OPT=VAL",
            help="Set an option in every stanza processed.",
        ),
        click.option(
            "--read-environment",
            is_flag=True,
            help="Read VERBOSE, CONFIGURE_INTERFACES and EXCLUDE_INTERFACES, as "
            "networking.service does.",
        ),
        click.option(
            "--scripts-dir",
            default="/etc/network",
            show_default=True,
            help="Directory holding the if-pre-up.d, if-up.d, if-down.d, if-post-down.d scripts.",
        ),
        click.argument("targets", nargs=-1, metavar="[IFACE[=LOGICAL]]..."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _ifupdown(up: bool, **kw: Any) -> None:
    from ifvip import commands

    try:
        commands.ifupdown(up, **kw)
    except commands.CommandUsageError as exc:
        raise click.UsageError(str(exc)) from None


@cli.command(context_settings={"allow_interspersed_args": True})
@_ifupdown_options
def ifup(**kw: Any) -> None:
    """Bring interfaces up as ifupdown 0.8 does, through netlink, transactionally.

    If any command or hook of an interface fails, everything this ifup did to it is
    undone, newest first, and the failing stanza line is named. Hooks run under /bin/sh
    with ifupdown's environment; well-known ip/route/sysctl hook commands are done
    natively and recorded, so ifdown undoes them. What a hook run by the shell does by
    itself (files, processes, addresses its own script adds) is not undone. -n prints the
    plan to stderr as ifupdown -n does. Any error in the interfaces file stops everything
    before anything is applied. Another ifup/ifdown of the same interface is waited for
    ("waiting for lock on ..."), as ifupdown does; a second SIGINT/SIGTERM during the undo
    of an interrupted ifup waits for the undo's end.
    """
    _ifupdown(True, **kw)


@cli.command(context_settings={"allow_interspersed_args": True})
@_ifupdown_options
def ifdown(**kw: Any) -> None:
    """Bring interfaces down, undoing exactly what ifvip's ifup recorded.

    Addresses and routes added by hooks, and the old values of sysctls, MTU and MAC, are
    restored from the journal; down hooks still run in their phase. Without a journal
    (state left by ifupdown, or --force) ifupdown's own down commands are run.
    """
    _ifupdown(False, **kw)


def _translate_images(args: list[str]) -> list[str]:
    """The command-line and environment forms of the images ifvip replaces (titpetric,
    solnet, kubernetize, Rancher) as `ifvip run ...`; any other argv is returned as is."""
    from ifvip.daemon.compat import explain
    from ifvip.daemon.settings import EX_CONFIG, ConfigProblems

    try:
        translation = explain(args, os.environ, commands=frozenset(cli.commands))
    except ConfigProblems as problems:
        for problem in problems.problems:
            click.echo(f"ifvip: {problem}", err=True)
        sys.exit(EX_CONFIG)
    for note in translation.notes:
        click.echo(f"ifvip: {note}", err=True)
    return translation.argv


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point; dispatches on argv[0] so `ifquery` links act as that command."""
    args = list(sys.argv[1:] if argv is None else argv)
    prog = os.path.basename(sys.argv[0]) if argv is None else "ifvip"
    if prog in IFUPDOWN_COMMANDS:
        args.insert(0, prog)
    elif not args or args[0] == "run" or args[0] not in cli.commands:
        args = _translate_images(args)  # the images' forms are `run` forms, or no command
    command = args[0] if args else ""
    if command in ("run", "demo"):
        from ifvip import tls

        tls.defer()  # asyncio without OpenSSL until an https check needs it
    try:
        cli.main(args=args, prog_name="ifvip", standalone_mode=False, auto_envvar_prefix="IFVIP")
    except click.UsageError as exc:
        exc.show()
        sys.exit(EXIT_FAILURE if command in IFUPDOWN_COMMANDS else EXIT_USAGE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(EXIT_FAILURE)
    sys.exit(0)
