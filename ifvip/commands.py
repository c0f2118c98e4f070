"""The bodies of the short commands: `ifquery`, `ifup`, `ifdown` and `ifvip status`.

Both front ends run them: fastpath.py (the `ifvip` program's entry point, without click)
and cli.py's click commands, which pass click.echo as `out` (tests/unit/test_fastpath.py
compares the two). This module imports no front end, so neither imports the other for
them; it loads what a command needs when the command runs.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Sequence

TYPE_CHECKING = False  # typing is not imported at run time: the short commands do not need it
if TYPE_CHECKING:
    from typing import Any, Final, NoReturn, TextIO

    from ifvip.errors import ConfigError
    from ifvip.interfaces.model import InterfacesFile
    from ifvip.interfaces.patterns import SystemView
    from ifvip.interfaces.query import MappingRunner

EXIT_FAILURE: Final = 1


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
