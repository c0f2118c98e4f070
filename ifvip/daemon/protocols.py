"""The one registry of protocols, `PROTOCOLS`: for each, loaders of what the rest of the
program asks of it (its speaker and role, its `ifvip run` composer, the groups an interfaces
file declares and that file's problems). Importing it loads no protocol and nothing of the
daemon: `ifvip check` reads the registry without the event loop, netlink or the roles.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeAlias

if TYPE_CHECKING:
    from ifvip.daemon.ifup import EngineFactory
    from ifvip.daemon.journal import RunStateDir
    from ifvip.daemon.operations import Composed
    from ifvip.daemon.speaker import Started
    from ifvip.errors import ConfigError
    from ifvip.ifupdown.netlink import Kernel

    Starter: TypeAlias = Callable[[Any, Kernel, RunStateDir, EngineFactory, float], Started]
    Composer: TypeAlias = Callable[[Mapping[str, Any], list[str]], Composed]
    # from_file(defn, path, links, state_dir, only): the groups the protocol's stanzas declare
    # (only: those of these interfaces; None: all).
    FileComposer: TypeAlias = Callable[
        [Any, str, list[str], str, Collection[str] | None], list[Any]
    ]
    # file_errors(defn, path): what from_file would refuse, the host aside (`ifvip check`).
    FileChecker: TypeAlias = Callable[[Any, str], list[ConfigError]]


@dataclass(frozen=True)
class ProtocolEntry:
    """How a group of one protocol is made: `id_word` names a group's number
    (`vhid 42`, `vrid 51`), `load()` imports the protocol's package (only when a group
    uses it) and gives its `start(config, kernel, state, engines, script_timeout)`, and
    `composer()` its `compose(options, links)`: `ifvip run`'s options as validated groups,
    `file_composer()` its `from_file(defn, path, links, state_dir, only)`: the validated
    groups its options declare in an interfaces file (`ifvip run --interfaces FILE` alone;
    `only`: the stanzas of these interfaces, --up-list), and `file_checker()` its
    `file_errors(defn, path)`: what that would refuse, the host aside (`ifvip check`)."""

    id_word: str
    load: Callable[[], Starter]
    composer: Callable[[], Composer]  # its compose(options, links) for `ifvip run`
    file_composer: Callable[[], FileComposer]
    file_checker: Callable[[], FileChecker]


def _carp() -> Starter:
    from ifvip.daemon.carp.role import start  # noqa: PLC0415 - a protocol loads when used

    return start


def _carp_compose() -> Composer:
    from ifvip.daemon.carp.compose import compose  # noqa: PLC0415

    return compose


def _carp_from_file() -> FileComposer:
    from ifvip.daemon.carp.compose import from_file  # noqa: PLC0415

    return from_file


def _carp_file_errors() -> FileChecker:
    from ifvip.daemon.carp.config import file_errors  # noqa: PLC0415

    return file_errors


def _vrrp() -> Starter:
    from ifvip.daemon.vrrp.role import start  # noqa: PLC0415 - a protocol loads when used

    return start


def _vrrp_compose() -> Composer:
    from ifvip.daemon.vrrp.compose import compose  # noqa: PLC0415

    return compose


def _vrrp_from_file() -> FileComposer:
    from ifvip.daemon.vrrp.compose import from_file  # noqa: PLC0415

    return from_file


def _vrrp_file_errors() -> FileChecker:
    from ifvip.daemon.vrrp.config import file_errors  # noqa: PLC0415

    return file_errors


# The one place that knows which protocols there are. A group's configuration names its
# own (`config.protocol`) and says its number, its group name, its interface and VIPs.
PROTOCOLS: Final[Mapping[str, ProtocolEntry]] = {
    "carp": ProtocolEntry("vhid", _carp, _carp_compose, _carp_from_file, _carp_file_errors),
    "vrrp": ProtocolEntry("vrid", _vrrp, _vrrp_compose, _vrrp_from_file, _vrrp_file_errors),
}
