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
ENV_PREFIX: Final = "IFVIP"  # main() runs the CLI with auto_envvar_prefix="IFVIP"
ENV_TAG_WIDTH: Final = 27  # ens: the longest variable name and the option fit on one line

# What the commands read from the environment besides their options.
ENVIRONMENT: Final = (
    (
        "IFVIP_CACHE_DIR",
        "Where ifquery, ifup and ifdown keep their readings of interfaces files (default "
        "/run/ifvip/cache for root, $XDG_CACHE_HOME/ifvip otherwise).",
    ),
    (
        "EXCLUDE_INTERFACES",
        "With --read-environment: interfaces to leave out, as networking.service uses.",
    ),
    (
        "VERBOSE, CONFIGURE_INTERFACES",
        "With ifup/ifdown --read-environment: ifupdown's /etc/default/networking settings.",
    ),
)

SIGNALS: Final = (
    (
        "SIGTERM, SIGINT",
        "ifvip run stops every group gracefully: a master sends a bow-out advert (CARP: "
        "advbase and advskew 255; VRRP: priority 0) so a peer takes over at once, removes "
        "its virtual addresses or takes its managed stanzas down, and exits 0. ifup and "
        "ifdown interrupted this way undo what they did so far. ifvip demo removes its lab.",
    ),
    (
        "SIGHUP",
        "ifvip run reloads its configuration: the same command line and environment, with "
        "the files they name read again (--passfile, --auth-pass-file, --interfaces and its "
        "ucarp-* stanzas). A configuration with problems is logged, one line per problem, "
        "and the running one is kept. Otherwise the groups are compared by protocol, "
        "interface and vhid/vrid: an unchanged group keeps running untouched (its VIP stays, "
        "no transition); a changed one stops gracefully as on SIGTERM (a master bows out and "
        "releases) and starts anew as BACKUP; a removed one stops; a new one starts. Managed "
        "stanzas are read from the file at each transition. Under systemd, RELOADING=1 and "
        "READY=1 frame the reload (ExecReload=/bin/kill -HUP $MAINPID). ifup and ifdown "
        "undo what they did so far, as on SIGTERM.",
    ),
    (
        "SIGUSR1",
        "ifvip run logs each group's state and counters (adverts sent, received and "
        "dropped by reason).",
    ),
    (
        "SIGUSR2",
        "ifvip run demotes every group until the next SIGUSR2: a master gives the VIP up "
        "and none takes it back meanwhile (ucarp's demotion lasts 3 s).",
    ),
)

EXIT_STATUS: Final = (
    ("0", "Success; ifvip run: stopped by a signal after releasing its addresses."),
    (
        "1",
        "An operation failed; ifvip check: the file has an error; ifvip status: no daemon "
        "answered; ifup, ifdown and ifquery: also a usage error, as ifupdown.",
    ),
    ("2", "A usage error (ifvip's own commands)."),
    ("78", "Invalid configuration (ifvip run, EX_CONFIG): every problem is named first."),
    ("130", "ifvip demo was interrupted (its lab is removed)."),
)

FILES: Final = (
    ("/etc/network/interfaces", "The interfaces file read by default."),
    (
        "/etc/network/if-pre-up.d/, if-up.d/, if-down.d/, if-post-down.d/",
        "ifupdown's hook directories, run by ifup and ifdown (--scripts-dir).",
    ),
    (
        "/run/network/",
        "ifupdown's state (ifstate files and locks), shared with ifupdown, and ifvip's "
        "journal of what ifup did, which ifdown undoes (--state-dir, --ifstate-dir).",
    ),
    (
        "/run/ifvip/",
        "ifvip run's state directory (--state-dir, created 0700): the journal of the "
        "virtual addresses it added, and the status socket ifvip.sock that ifvip status "
        "reads. Keep it on a tmpfs: state must start empty after a reboot.",
    ),
    ("/run/ifvip/cache/", "Readings of interfaces files (private to the user)."),
)


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


class UndocumentedError(ValueError):
    """A command or option without help text: the page would not document it."""


def env_names(command: str, param: click.Parameter) -> list[str]:
    """The environment variables an option reads, as click resolves them under main()."""
    if isinstance(param.envvar, str):
        return [param.envvar]
    if param.envvar:
        return list(param.envvar)
    if isinstance(param, click.Option) and param.allow_from_autoenv and param.name:
        return [f"{ENV_PREFIX}_{command.upper()}_{param.name.upper()}"]
    return []


def _command_section(name: str, command: click.Command) -> Iterable[str]:
    if not (command.help or "").strip():
        raise UndocumentedError(f"ifvip {name} has no help text")
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
        text = (param.help or "").strip()
        if not text:
            raise UndocumentedError(f"ifvip {name} {param.opts[0]} has no help text")
        yield ".TP"
        yield _option_synopsis(param)
        names = env_names(name, param)
        if names:
            text += f" (environment: {', '.join(names)})"
        yield _esc(text)


def _environment(group: click.Group) -> Iterable[str]:
    """Every variable an option reads, by name, then the ones ifvip reads itself."""
    yield ".SH ENVIRONMENT"
    yield _esc(
        "Every option can be given as an environment variable: the ones of ifvip run by "
        "the names below (with the UCARP_* names of the ucarp container image as aliases), "
        "the others as IFVIP_COMMAND_OPTION, e.g. IFVIP_IFQUERY_PATH for ifquery "
        "--interfaces. A command-line option wins over its variable. Flags take 1/true/yes "
        "or 0/false/no; repeatable options take a space-separated list. Secrets should come "
        "from files (IFVIP_PASSFILE, IFVIP_AUTH_PASS_FILE, UCARP_PASS_FILE), not from the "
        "environment, which other processes of the same user can read."
    )
    # One line per variable: IFVIP_NAME, the option(s) it sets, its UCARP_* alias.
    named: dict[str, list[str]] = {}
    aliases: dict[str, list[str]] = {}
    for name in sorted(group.commands):
        for param in group.commands[name].params:
            if not (isinstance(param, click.Option) and param.envvar):
                continue
            own, *others = env_names(name, param)
            longs = [opt for opt in param.opts if opt.startswith("--")]
            named.setdefault(own, []).append(f"{name} {(longs or param.opts)[0]}")
            aliases.setdefault(own, []).extend(others)
    yield ".PP"
    yield ".PD 0"
    for env in sorted(named):
        yield f".TP {ENV_TAG_WIDTH}"
        yield f"\\fB{_esc(env)}\\fR"
        also = f" (also {', '.join(aliases[env])})" if aliases[env] else ""
        yield _esc(", ".join(named[env]) + also)
    yield ".PD"
    for env, text in ENVIRONMENT:
        yield ".TP"
        yield f"\\fB{_esc(env)}\\fR"
        yield _esc(text)


def _definitions(heading: str, items: Iterable[tuple[str, str]], style: str) -> Iterable[str]:
    yield f".SH {heading}"
    for term, text in items:
        yield ".TP"
        yield f"\\f{style}{_esc(term)}\\fR" if style else _esc(term)
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
        ".B ifup",
        "|",
        ".B ifdown",
        "|",
        ".B ifquery",
        "[\\fIOPTIONS\\fR] [\\fIIFACE\\fR[=\\fILOGICAL\\fR]...]",
        ".SH DESCRIPTION",
        _esc(
            "ifvip keeps a virtual IP on one host of a group and configures that host's "
            "interfaces the way Debian's ifupdown would, from the same "
            "/etc/network/interfaces (see ifvip-interfaces(5)). ifvip run speaks CARP as "
            "ucarp does (and takes ucarp's options) or VRRP as keepalived does. Invoked "
            "through a link named ifup, ifdown or ifquery, it behaves as that ifupdown "
            "command, with ifupdown's options and exit codes."
        ),
        ".SH COMMANDS",
    ]
    for name in sorted(group.commands):
        lines.extend(_command_section(name, group.commands[name]))
    lines.extend(_environment(group))
    lines.extend(_definitions("SIGNALS", SIGNALS, "B"))
    lines.extend(_definitions("EXIT STATUS", EXIT_STATUS, ""))
    lines.extend(_definitions("FILES", FILES, "I"))
    lines += [
        ".SH SEE ALSO",
        ".BR ifvip-interfaces (5),",
        ".BR interfaces (5),",
        ".BR ifup (8),",
        ".BR ifquery (8),",
        ".BR ucarp (8),",
        ".BR keepalived (8),",
        ".BR systemd.service (5)",
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
        ".SH GROUPS",
        _esc(
            "ifvip run --interfaces FILE, with no group given by options, runs every group "
            "the file declares in one process, CARP and VRRP side by side, each with its own "
            "state, status entry and metrics; SIGHUP applies the file's changes group by "
            "group. A stanza with ucarp-vid is a CARP group on the stanza's interface, as "
            "Debian's ucarp package runs it (MASTER brings up IFACE:ucarp, or runs "
            "ucarp-upscript). A stanza with vrrp-id is a VRRP group on the stanza's "
            "interface: MASTER adds the vrrp-address addresses (and brings up the "
            "vrrp-manage stanzas); its advert source is vrrp-srcip, else the address of an "
            "inet static stanza for IPv4 addresses, else the interface's primary IPv4 or "
            "link-local IPv6 address. A vrrp-* option without vrrp-id, vrrp-id without "
            "vrrp-address, a misspelt vrrp-* option on a VRRP stanza and one VRID twice on "
            "an interface are errors. A VRRP password is read only from the file "
            "vrrp-auth-pass-file names: vrrp-auth-pass written in the interfaces file is "
            "refused, and no message repeats a password."
        ),
        ".PP",
        _esc(
            "ifvip-sync-group NAME, on a stanza with ucarp-vid or vrrp-id, puts its group in "
            "the sync group NAME (a word): the members of one sync group in one process are "
            "MASTER together or not at all. A group's name in logs, ifvip status and "
            "the metrics is vhid N or vrid N, or vhid N on IFACE when another group of the "
            "process has the same one."
        ),
        ".PP",
        _esc(
            "When a member cannot be MASTER (its carrier is lost, a check or SIGUSR2 demotes "
            "it, its MASTER action failed) every other member of its sync group is held "
            "back, as keepalived's vrrp_sync_group does: a VRRP member enters FAULT, a "
            "master sending priority 0 first; a CARP member advertises advskew 240, as "
            "OpenBSD's demoted carp interfaces, so a preempting peer (ucarp -P, ucarp-master "
            "yes) takes it. A member that yields to a preferred master takes the other VRRP "
            "masters to BACKUP without priority 0. Members take MASTER again together: a "
            "VRRP member whose down timer expires, or a CARP member that would preempt a "
            "slower master, waits until every member is MASTER or would be, then all go at "
            "once. ifvip status shows each member's sync group and, while held back, which "
            "member holds it and why (sync group dmz: vrid 52 on eth1 lost its carrier); "
            "the metric ifvip_sync_held says the same."
        ),
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
