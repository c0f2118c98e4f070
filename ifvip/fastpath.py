"""The short commands without click: `ifquery`, `ifup`, `ifdown`, `status`, `--version`.

click costs about 30 ms at every start (and builds a difflib-backed `NoSuchOption` for
every short option it matches). This module is the `ifvip` program's entry point: for the
argument lists these commands are usually given it parses the options itself, exactly as
click would, and runs the same command bodies (commands.py; cli.py's click commands call
them too). Anything else goes to click (`ifvip.cli.main`) untouched: help, a usage error, an
unknown or abbreviated option, an option without its value, any `IFVIP_*` variable click
would read as an option, click's completion variable, a stream click would re-encode.
The output, the error output and the exit status are the same either way;
tests/unit/test_fastpath.py runs a corpus of argument lists through both and compares.

`ifup`, `ifdown` and `ifquery` may also be links to the program (argv[0]), as in cli.main.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from ifvip import __version__

TYPE_CHECKING = False  # typing is not imported at run time: `--version` does not need it
if TYPE_CHECKING:
    from typing import Any, Final, TextIO

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
        return lambda: _write(sys.stdout, f"ifvip, version {__version__}\n")
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
    from ifvip import commands

    if command == "status":
        if positional:
            return None  # "Got unexpected extra argument"
        for name, variable in STATUS_ENV.items():
            if name not in given and os.environ.get(variable):
                values[name] = os.environ[variable]
        return lambda: commands.status(**values)
    targets = tuple(positional)
    try:
        commands.parse_overrides(values["options"])
    except commands.CommandUsageError:
        return None
    if command == "ifquery":
        if not values["state"] and (
            (values["all_mode"] and not values["list_mode"])
            or (not targets and not values["list_mode"])
        ):
            return None
        del values["verbose"]  # accepted for compatibility
        return lambda: commands.ifquery(targets=targets, **values)
    up = command == "ifup"
    return lambda: commands.ifupdown(up, targets=targets, **values)


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
        _write(sys.stderr, "\n")  # click: a new line, then Abort (exit 1)
        sys.exit(EXIT_FAILURE)
    except OSError as exc:
        import errno

        if exc.errno != errno.EPIPE:
            raise
        sys.stdout = _Pacified(sys.stdout)
        sys.stderr = _Pacified(sys.stderr)
        sys.exit(EXIT_FAILURE)
    sys.exit(0)


def _write(stream: TextIO | None, text: str) -> None:
    """click.echo of plain text (the version, a new line): written and flushed."""
    if stream is not None:
        stream.write(text)
        stream.flush()


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
