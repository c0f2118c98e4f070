"""The short commands without click: `ifquery`, `ifup`, `ifdown`, `status`, `--version`.

click costs about 30 ms at every start (and builds a difflib-backed `NoSuchOption` for
every short option it matches). This module is the `ifvip` program's entry point: for the
argument lists these commands are usually given it parses the options itself, exactly as
click would, and runs the same command bodies (below; cli.py's click commands call them
too). Anything else goes to click (`ifvip.cli.main`) untouched: help, a usage error, an
unknown or abbreviated option, an option without its value, any `IFVIP_*` variable click
would read as an option, click's completion variable, a stream click would re-encode.
The output, the error output and the exit status are the same either way;
tests/unit/test_fastpath.py runs a corpus of argument lists through both and compares.

`ifup`, `ifdown` and `ifquery` may also be links to the program (argv[0]), as in cli.main.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Sequence

from ifvip import __version__

TYPE_CHECKING = False  # typing is not imported at run time: `--version` does not need it
if TYPE_CHECKING:
    from typing import Any, Final, NoReturn, TextIO

    from ifvip.errors import ConfigError
    from ifvip.interfaces.model import InterfacesFile
    from ifvip.interfaces.patterns import SystemView
    from ifvip.interfaces.query import MappingRunner

EXIT_FAILURE: Final = 1
DEFAULT_PATH: Final = "/etc/network/interfaces"
IFUPDOWN_COMMANDS: Final = frozenset({"ifquery", "ifup", "ifdown"})
ENV_PREFIX: Final = "IFVIP"  # click's auto_envvar_prefix in cli.main

# click's options of each command, by option string: (parameter, kind). Kinds: "flag",
# "value" (the last one given wins), "multi" (multiple=True), "help" (always click's).
Spec = dict[str, tuple[str, str]]
_HELP: Final[Spec] = {"-h": ("help", "help"), "--help": ("help", "help")}
_IFQUERY: Final[Spec] = {
    **_HELP,
    "-i": ("path", "value"),
    "--interfaces": ("path", "value"),
    "--state-dir": ("state_dir", "value"),
    "-a": ("all_mode", "flag"),
    "--all": ("all_mode", "flag"),
    "--allow": ("allow", "value"),
    "-l": ("list_mode", "flag"),
    "--list": ("list_mode", "flag"),
    "--state": ("state", "flag"),
    "-X": ("exclude", "multi"),
    "--exclude": ("exclude", "multi"),
    "--no-loopback": ("no_loopback", "flag"),
    "--no-mappings": ("no_mappings", "flag"),
    "-o": ("options", "multi"),
    "--option": ("options", "multi"),
    "-v": ("verbose", "flag"),
    "--verbose": ("verbose", "flag"),
    "--read-environment": ("read_environment", "flag"),
    "--json": ("as_json", "flag"),
}
_IFUPDOWN: Final[Spec] = {
    **_HELP,
    "-i": ("path", "value"),
    "--interfaces": ("path", "value"),
    "--state-dir": ("state_dir", "value"),
    "-a": ("all_mode", "flag"),
    "--all": ("all_mode", "flag"),
    "--allow": ("allow", "value"),
    "-n": ("no_act", "flag"),
    "--no-act": ("no_act", "flag"),
    "-v": ("verbose", "flag"),
    "--verbose": ("verbose", "flag"),
    "-f": ("force", "flag"),
    "--force": ("force", "flag"),
    "--no-scripts": ("no_scripts", "flag"),
    "--no-loopback": ("no_loopback", "flag"),
    "--ignore-errors": ("ignore_errors", "flag"),
    "-X": ("exclude", "multi"),
    "--exclude": ("exclude", "multi"),
    "-o": ("options", "multi"),
    "--option": ("options", "multi"),
    "--read-environment": ("read_environment", "flag"),
    "--scripts-dir": ("scripts_dir", "value"),
}
_STATUS: Final[Spec] = {
    **_HELP,
    "--json": ("as_json", "flag"),
    "--socket": ("socket_path", "value"),
    "--state-dir": ("state_dir", "value"),
}
SPECS: Final[dict[str, Spec]] = {
    "ifquery": _IFQUERY,
    "ifup": _IFUPDOWN,
    "ifdown": _IFUPDOWN,
    "status": _STATUS,
}
DEFAULTS: Final[dict[str, dict[str, Any]]] = {
    "ifquery": {"path": DEFAULT_PATH, "state_dir": "/run/network", "allow": None},
    "ifup": {"path": DEFAULT_PATH, "state_dir": "/run/network", "allow": None},
    "ifdown": {"path": DEFAULT_PATH, "state_dir": "/run/network", "allow": None},
    "status": {"socket_path": None, "state_dir": "/run/ifvip"},
}
DEFAULTS["ifup"]["scripts_dir"] = DEFAULTS["ifdown"]["scripts_dir"] = "/etc/network"
# The explicit envvar= of `status`'s options (cli.py); no other option here has one.
STATUS_ENV: Final = {"socket_path": "IFVIP_STATUS_SOCKET", "state_dir": "IFVIP_STATE_DIR"}


class CommandUsageError(ValueError):
    """What click reports as a usage error (cli.py raises it as click.UsageError)."""


# ------------------------------------------------------------------------- output


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """click.echo for text: written and flushed; ANSI escapes left out when the stream is
    not a terminal, as click does."""
    stream = sys.stderr if err else sys.stdout
    if stream is None:
        return
    out = message + "\n" if nl else message
    if not out:
        stream.flush()
        return
    if "\033" in out and not _isatty(stream):
        import re

        out = re.sub(r"\033\[[0-?]*[ -/]*[@-~]", "", out)  # click 8.5's strip_ansi
    stream.write(out)
    stream.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except Exception:
        return False


# How a command body writes: `echo` here, click.echo when cli.py's click command runs it
# (so tests/unit/test_fastpath.py compares this echo with click's).
Echo = Callable[..., None]


def fail(prog: str, message: str, out: Echo = echo) -> NoReturn:
    out(f"{prog}: {message}", err=True)
    sys.exit(EXIT_FAILURE)


def say_diagnostics(prog: str, diagnostics: Sequence[ConfigError], out: Echo = echo) -> None:
    for diagnostic in diagnostics:  # ifupdown's `FILE:LINE: message` form
        out(f"{prog}: {diagnostic.path}:{diagnostic.line}: {diagnostic.msg}", err=True)


# ------------------------------------------------------------------------- commands


def parse_overrides(values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    aliases = {"post-up": "up", "pre-down": "down"}
    pairs = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep:
            raise CommandUsageError(f'error in --option "{value}" -- no "=" character')
        pairs.append((aliases.get(name, name), rest))
    return tuple(pairs)


class _ModulesLoading:
    """`with _ModulesLoading():` around a command's imports. Loading modules makes objects
    that live until exit, and the cyclic collector's passes over them are wasted (about
    5 ms of an ifup): it is off while they load, and what loaded is left out of its later
    passes (frozen). It is on again for the command's work (a big file's reading makes
    garbage). command.py does the same around the engine's modules."""

    def __enter__(self) -> None:
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        gc.freeze()
        gc.enable()


def ifquery(
    *,
    path: str,
    state_dir: str,
    all_mode: bool,
    allow: str | None,
    list_mode: bool,
    state: bool,
    exclude: tuple[str, ...],
    no_loopback: bool,
    no_mappings: bool,
    options: tuple[str, ...],
    read_environment: bool,
    as_json: bool,
    targets: tuple[str, ...],
    out: Echo = echo,
) -> None:
    """`ifquery`: the body of cli.py's command (see its help)."""
    with _ModulesLoading():
        from ifvip.interfaces.cache import load as cached_load
        from ifvip.interfaces.query import QueryRequest, query, render, state_lines

    if state:
        try:
            with open(os.path.join(state_dir, "ifstate")) as state_file:
                text = state_file.read()
        except OSError:
            text = ""
        lines, all_up = state_lines(text, targets)
        out("".join(line + "\n" for line in lines), nl=False)
        sys.exit(0 if all_up else EXIT_FAILURE)
    if all_mode and not list_mode:
        raise CommandUsageError("-a/--all goes with --list")
    if not targets and not list_mode:
        raise CommandUsageError("no interface(s) specified")
    if read_environment:
        exclude += tuple(os.environ.get("EXCLUDE_INTERFACES", "").split())
    defn = cached_load(path, no_loopback=no_loopback)
    say_diagnostics("ifquery", defn.diagnostics, out)
    if not defn.ifupdown_ok:
        fail("ifquery", f'couldn\'t read interfaces file "{path}"', out)
    request = QueryRequest(
        targets=targets,
        list_mode=list_mode,
        allow=allow,
        exclude=exclude,
        overrides=parse_overrides(options),
        run_mappings=not no_mappings,
    )
    system, run_mapping = live(targets or _class_members(defn, allow))
    result = query(defn, request, system, run_mapping)
    out(render(result, as_json=as_json), nl=False)
    for line in result.stderr:
        out(line, err=True)
    sys.exit(result.exit_code)


def _class_members(defn: InterfacesFile, allow: str | None) -> tuple[str, ...]:
    return defn.allowed(allow or "auto") or ()


def live(targets: Sequence[str]) -> tuple[SystemView, MappingRunner]:
    """The system view and mapping runner; sysfs is read only when a pattern needs it,
    and the runner's module (subprocess, pathlib) loads when a mapping runs."""
    from ifvip.interfaces.patterns import SystemView

    if any("/" in t.partition("=")[0] for t in targets):
        from ifvip.interfaces.system import live_system

        return live_system(), _run_mapping
    return SystemView(), _run_mapping


def _run_mapping(*args: Any, **kwargs: Any) -> Any:
    from ifvip.interfaces.system import run_mapping

    return run_mapping(*args, **kwargs)


def ifupdown(up: bool, **kw: Any) -> None:
    """`ifup` / `ifdown`: the body of cli.py's commands (see their help)."""
    with _ModulesLoading():
        from ifvip import tls

        tls.defer()  # the engine's asyncio, without OpenSSL
        from ifvip.ifupdown.command import Options
        from ifvip.ifupdown.command import run as run_command

    targets: tuple[str, ...] = tuple(kw["targets"])
    exclude: tuple[str, ...] = tuple(kw["exclude"])
    verbose, no_act = bool(kw["verbose"]), bool(kw["no_act"])
    if kw["read_environment"]:
        verbose = verbose or os.environ.get("VERBOSE") == "yes"
        no_act = no_act or os.environ.get("CONFIGURE_INTERFACES") == "no"
        exclude += tuple(os.environ.get("EXCLUDE_INTERFACES", "").split())
    opts = Options(
        up=up,
        path=str(kw["path"]),
        state_dir=str(kw["state_dir"]),
        all_mode=bool(kw["all_mode"]),
        allow=kw["allow"] if isinstance(kw["allow"], str) else None,
        no_act=no_act,
        verbose=verbose,
        force=bool(kw["force"]),
        no_scripts=bool(kw["no_scripts"]),
        no_loopback=bool(kw["no_loopback"]),
        ignore_errors=bool(kw["ignore_errors"]),
        exclude=exclude,
        overrides=parse_overrides(tuple(kw["options"])),
        targets=targets,
        scripts_dir=str(kw["scripts_dir"]),
        caller_env=dict(os.environ),
    )
    system, run_mapping = live(targets or ("/*",))
    sys.exit(run_command(opts, system=system, run_mapping=run_mapping))


def status(*, as_json: bool, socket_path: str | None, state_dir: str, out: Echo = echo) -> None:
    """`ifvip status`: the body of cli.py's command (see its help)."""
    with _ModulesLoading():
        from ifvip.daemon.status_client import (
            StatusUnreachable,
            default_socket,
            fetch,
            render_table,
        )

    path = socket_path or default_socket(state_dir)
    try:
        snapshot = fetch(path)
    except StatusUnreachable as exc:
        fail("ifvip status", str(exc), out)
    out(snapshot.to_json() if as_json else render_table(snapshot), nl=False)
    if snapshot.faults:  # a group's MASTER action failed: the image's HEALTHCHECK sees it
        sys.exit(EXIT_FAILURE)


# ------------------------------------------------------------------------- parsing


def parse(spec: Spec, args: Sequence[str]) -> tuple[dict[str, Any], list[str]] | None:
    """Options and positional arguments as click's parser finds them in `args` (options
    and arguments interspersed, `--` ends the options, `-abc` and `-ifile` clusters,
    `--opt=value`); None where click would report an error or show help."""
    values: dict[str, Any] = {}
    positional: list[str] = []
    rest = list(args)

    def take(option: str, explicit: str | None) -> bool:
        name, kind = spec[option]
        if kind == "help":
            return False
        if kind == "flag":
            if explicit is not None:
                return False  # "Option '--all' does not take a value."
            values[name] = True
            return True
        if explicit is not None:
            value = explicit
        elif rest:
            value = rest.pop(0)  # click takes the next argument, whatever it looks like
        else:
            return False  # "Option '-i' requires an argument."
        if kind == "multi":
            values[name] = (*values.get(name, ()), value)
        else:
            values[name] = value
        return True

    while rest:
        arg = rest.pop(0)
        if arg == "--":
            positional += rest
            break
        if arg[:1] != "-" or len(arg) == 1:
            positional.append(arg)
            continue
        long_opt, sep, explicit = arg.partition("=")
        if arg[:2] == "--":  # click: a long option, or "No such option"
            if long_opt not in spec or not take(long_opt, explicit if sep else None):
                return None
            continue
        # A cluster of short options; one that takes a value takes the rest of the
        # argument (an "=" included, as click does) or the next argument.
        for position in range(1, len(arg)):
            option = "-" + arg[position]
            if option not in spec:
                return None
            remainder = arg[position + 1 :]
            if spec[option][1] in ("value", "multi") and remainder:
                if not take(option, remainder):
                    return None
                break
            if not take(option, None):
                return None
    return values, positional


def _env_speaks(command: str) -> bool:
    """Whether click would read an option of `command` (or of the group) from the
    environment: IFVIP_VERSION, IFVIP_HELP, IFVIP_<COMMAND>_<OPTION>; `status`'s own
    variables are read here."""
    if os.environ.get("_IFVIP_COMPLETE"):
        return True  # click's shell completion
    own = f"{ENV_PREFIX}_{command.upper()}_"
    handled = set(STATUS_ENV.values()) if command == "status" else set()
    for name, value in os.environ.items():
        if not value or name in handled:
            continue
        if name in (f"{ENV_PREFIX}_VERSION", f"{ENV_PREFIX}_HELP") or name.startswith(own):
            return True
    return False


def _streams_as_click_keeps_them() -> bool:
    """click re-wraps a stream whose encoding is ASCII (or that is missing): not here."""
    import codecs  # already loaded by the interpreter

    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if stream is None or not encoding:
            return False
        try:
            if codecs.lookup(encoding).name == "ascii":
                return False
        except LookupError:
            return False
    return True


def plan(args: Sequence[str]) -> Callable[[], None] | None:
    """What `ifvip ARGS` runs without click, or None when it needs click."""
    if list(args) in (["--version"], ["-V"]):
        return lambda: echo(f"ifvip, version {__version__}")
    if not args or args[0] not in SPECS:
        return None
    command = args[0]
    if _env_speaks(command) or not _streams_as_click_keeps_them():
        return None
    parsed = parse(SPECS[command], args[1:])
    if parsed is None:
        return None
    given, positional = parsed
    values = {**DEFAULTS[command], **given}
    for name, kind in SPECS[command].values():
        if kind == "flag":
            values.setdefault(name, False)
        elif kind == "multi":
            values.setdefault(name, ())
    if command == "status":
        if positional:
            return None  # "Got unexpected extra argument"
        for name, variable in STATUS_ENV.items():
            if name not in given and os.environ.get(variable):
                values[name] = os.environ[variable]
        return lambda: status(**values)
    targets = tuple(positional)
    try:
        parse_overrides(values["options"])
    except CommandUsageError:
        return None
    if command == "ifquery":
        if not values["state"] and (
            (values["all_mode"] and not values["list_mode"])
            or (not targets and not values["list_mode"])
        ):
            return None
        del values["verbose"]  # accepted for compatibility
        return lambda: ifquery(targets=targets, **values)
    up = command == "ifup"
    return lambda: ifupdown(up, targets=targets, **values)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `ifvip` program and its ifup/ifdown/ifquery links."""
    args = list(sys.argv[1:] if argv is None else argv)
    prog = os.path.basename(sys.argv[0]) if argv is None else "ifvip"
    command = plan([prog, *args] if prog in IFUPDOWN_COMMANDS else args)
    if command is None:
        from ifvip.cli import main as click_main

        click_main(argv)
        return
    try:
        command()
    except (EOFError, KeyboardInterrupt):
        echo(err=True)  # click: a new line, then Abort (exit 1)
        sys.exit(EXIT_FAILURE)
    except OSError as exc:
        import errno

        if exc.errno != errno.EPIPE:
            raise
        sys.stdout = _Pacified(sys.stdout)
        sys.stderr = _Pacified(sys.stderr)
        sys.exit(EXIT_FAILURE)
    sys.exit(0)


class _Pacified:
    """click's PacifyFlushWrapper: a closed pipe is not an error at exit."""

    def __init__(self, wrapped: Any) -> None:
        self.wrapped = wrapped

    def flush(self) -> None:
        import errno

        try:
            self.wrapped.flush()
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.wrapped, attr)
