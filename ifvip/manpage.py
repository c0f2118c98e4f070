"""Man pages generated from the click commands and the option schema, so they cannot drift.

`python -m ifvip.manpage man/` writes `ifvip.8` (every command and option, environment,
exit codes, files) and `ifvip-interfaces.5` (the file syntax ifvip reads, every method's
options with defaults, and where ifvip differs from ifupdown). A test regenerates both and
fails if the committed pages differ, and renders them with groff looking for warnings.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import click

from ifvip import __version__
from ifvip.interfaces.options import COMMON, METHODS

DATE: Final = "2026"


def _esc(text: str) -> str:
    """Escape text for roff: backslashes, and a leading dot or quote on a line."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    lines = []
    for line in text.splitlines() or [""]:
        lines.append("\\&" + line if line.startswith((".", "'")) else line)
    return "\n".join(lines)


def _option_synopsis(param: click.Parameter) -> str:
    names = [*param.opts, *param.secondary_opts]
    flags = ", ".join(f"\\fB{_esc(n)}\\fR" for n in names)
    if isinstance(param, click.Option) and not param.is_flag:
        metavar = param.make_metavar(click.Context(click.Command("x")))
        flags += f" \\fI{_esc(metavar)}\\fR"
    return flags


def _command_section(name: str, command: click.Command) -> Iterable[str]:
    yield f".SS {_esc(name)}"
    usage = " ".join(
        p.make_metavar(click.Context(command)) if isinstance(p, click.Argument) else ""
        for p in command.params
    ).strip()
    yield f".B ifvip {_esc(name)}"
    yield f"[\\fIOPTIONS\\fR] {_esc(usage)}".rstrip()
    yield ".PP"
    paragraphs = inspect.cleandoc(command.help or "").split("\n\n")
    for index, paragraph in enumerate(paragraphs):
        if index:
            yield ".PP"
        yield _esc(paragraph.replace("\n", " "))
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        yield ".TP"
        yield _option_synopsis(param)
        text = (param.help or "").strip()
        if param.envvar or param.allow_from_autoenv:
            text += f" (environment: IFVIP_{name.upper()}_{(param.name or '').upper()})"
        yield _esc(text)


def ifvip_8(group: click.Group) -> str:
    lines = [
        f'.TH IFVIP 8 "{DATE}" "ifvip {__version__}" "System Administration"',
        ".SH NAME",
        "ifvip \\- floating IP manager and ifupdown reader",
        ".SH SYNOPSIS",
        ".B ifvip",
        "\\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGUMENTS\\fR]",
        ".br",
        ".B ifquery",
        "[\\fIOPTIONS\\fR] [\\fIIFACE\\fR[=\\fILOGICAL\\fR]...]",
        ".SH DESCRIPTION",
        _esc(
            "ifvip keeps a virtual IP on one host of a group and configures that host's "
            "interfaces the way Debian's ifupdown would, from the same "
            "/etc/network/interfaces (see ifvip-interfaces(5)). Invoked through a link "
            "named ifquery, it behaves as that ifupdown command."
        ),
        ".SH COMMANDS",
    ]
    for name in sorted(group.commands):
        lines.extend(_command_section(name, group.commands[name]))
    lines += [
        ".SH ENVIRONMENT",
        ".TP",
        "\\fBIFVIP_\\fR\\fICOMMAND\\fR\\fB_\\fR\\fIOPTION\\fR",
        _esc(
            "Every option can be given as an environment variable, e.g. "
            "IFVIP_IFQUERY_INTERFACES for ifquery --interfaces."
        ),
        ".TP",
        "\\fBIFVIP_CACHE_DIR\\fR",
        _esc(
            "Where ifquery keeps its readings of interfaces files "
            "(default /run/ifvip/cache for root, $XDG_CACHE_HOME/ifvip otherwise)."
        ),
        ".TP",
        "\\fBEXCLUDE_INTERFACES\\fR",
        _esc("With --read-environment: interfaces to leave out, as networking.service uses."),
        ".SH EXIT STATUS",
        ".TP",
        "0",
        "Success.",
        ".TP",
        "1",
        _esc("An operation failed, or (ifquery, as ifupdown) a usage error."),
        ".TP",
        "2",
        "A usage error (ifvip's own commands).",
        ".TP",
        "78",
        "Invalid configuration (the daemon).",
        ".SH FILES",
        ".TP",
        "\\fI/etc/network/interfaces\\fR",
        "The interfaces file read by default.",
        ".TP",
        "\\fI/run/network/ifstate\\fR",
        _esc("ifupdown's state, read by ifquery --state."),
        ".TP",
        "\\fI/run/ifvip/cache/\\fR",
        "Readings of interfaces files (private to the user).",
        ".SH SEE ALSO",
        ".BR ifvip-interfaces (5),",
        ".BR interfaces (5),",
        ".BR ifquery (8),",
        ".BR ucarp (8),",
        ".BR keepalived (8)",
    ]
    return "\n".join(lines) + "\n"


def ifvip_interfaces_5() -> str:
    lines = [
        f'.TH IFVIP-INTERFACES 5 "{DATE}" "ifvip {__version__}" "File Formats"',
        ".SH NAME",
        "ifvip-interfaces \\- the interfaces(5) syntax as ifvip reads it",
        ".SH DESCRIPTION",
        _esc(
            "ifvip reads /etc/network/interfaces exactly as Debian's ifupdown 0.8 does: "
            "a line starting with # (after white space) is a comment and is never continued; "
            "a line ending in a backslash is joined to the next raw line with nothing in "
            "between; keywords are case-sensitive; iface, mapping, auto, allow-CLASS, source, "
            "source-directory (or any word starting with source-dir), no-auto-down, "
            "no-scripts and rename start statements; any other first word is an option of "
            "the current stanza. post-up is read as up and pre-down as down."
        ),
        ".SH METHODS AND OPTIONS",
    ]
    for spec in METHODS:
        if spec.family == "meta":
            continue
        lines.append(f".SS {spec.family} {spec.name}")
        lines.append(_esc(spec.help[:1].upper() + spec.help[1:] + "."))
        if not spec.supported:
            lines.append(_esc("ifvip reads this method but its ifup does not apply it."))
        for option in spec.options:
            lines.append(".TP")
            lines.append(f"\\fB{_esc(option.name)}\\fR \\fI{_esc(option.kind.value)}\\fR")
            text = option.help
            if option.required:
                text += " (required)"
            if option.default is not None:
                shown = option.default or "empty"
                text += f" [default: {shown}]"
            lines.append(_esc(text))
    lines.append(".SH OPTIONS OF EVERY STANZA")
    for option in COMMON:
        lines.append(".TP")
        lines.append(f"\\fB{_esc(option.name)}\\fR \\fI{_esc(option.kind.value)}\\fR")
        lines.append(_esc(option.help))
    lines += [
        ".SH DIFFERENCES FROM IFUPDOWN",
        ".IP \\(bu 2",
        _esc(
            "ifvip check and ifup treat an error in any file, sourced ones included, as "
            "fatal and report every error as path:line:col: message."
        ),
        ".IP \\(bu 2",
        _esc(
            "A repeated non-hook option is an error: ifupdown joins the values with a "
            "newline and the result is broken."
        ),
        ".IP \\(bu 2",
        _esc(
            "ifquery IFACE=LOGICAL on a renamed interface fails with a clear message "
            "where ifupdown 0.8.41 aborts with 'asprintf: File exists'."
        ),
        ".IP \\(bu 2",
        _esc("-o NAME= (an empty value) removes the option; ifupdown corrupts its option list."),
        ".SH SEE ALSO",
        ".BR ifvip (8),",
        ".BR interfaces (5)",
    ]
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    from ifvip.cli import cli  # noqa: PLC0415 - the CLI imports this module's callers

    return {"ifvip.8": ifvip_8(cli), "ifvip-interfaces.5": ifvip_interfaces_5()}


def main(argv: list[str] | None = None) -> None:
    target = Path((argv or sys.argv[1:] or ["man"])[0])
    target.mkdir(parents=True, exist_ok=True)
    for name, text in pages().items():
        (target / name).write_text(text)


if __name__ == "__main__":
    main()
