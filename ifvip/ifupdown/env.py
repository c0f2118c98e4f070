"""The environment of hooks, if-*.d scripts and method commands, exactly as ifupdown builds it.

ifupdown 0.8.41 (execute.c `set_environ`) runs every child with a fresh environment:
only variables of the caller whose names start with `IFUPDOWN_` are passed through; then
`IF_<OPTION>` for every option of the stanza except the four hooks (values after defaults
and conversions), then `IFACE LOGICAL ADDRFAM METHOD [CLASS] MODE PHASE VERBOSITY PATH`,
and `IFUPDOWN_<iface>=<phase>` (with `IFUPDOWN_<parent>=parent-lock` for a VLAN), which
ifupdown uses to detect recursion (specs/ifupdown.md §4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

from ifvip.hookenv import HOOK_PATH
from ifvip.ifupdown.plan import Env
from ifvip.interfaces.model import HOOKS


@lru_cache(maxsize=4096)
def mangle(option: str) -> str:
    """`dns-nameservers` → `IF_DNS_NAMESERVERS`: `-` becomes `_`, letters are upper-cased,
    any other character that is not a letter, a digit or `_` is dropped (`dns.search` →
    `IF_DNSSEARCH`)."""
    out = []
    for char in option:
        if char in "-_":
            out.append("_")
        elif char.isascii() and char.isalnum():
            out.append(char.upper())
    return "IF_" + "".join(out)


def vlan_parent(physical: str) -> str | None:
    """The raw device of a VLAN name (`eth0.5` → `eth0`), None for other names."""
    head, dot, _tail = physical.partition(".")
    return head if dot and head else None


def hook_env(
    *,
    physical: str,
    logical: str,
    family: str,
    method: str,
    options: Sequence[tuple[str, str]],
    mode: str,
    phase: str,
    verbose: bool,
    cls: str | None = None,
    caller: Mapping[str, str] | None = None,
) -> Env:
    """The environment for one child process of a stanza (or of the `--all` meta stanza).

    `options` are the stanza's options after defaults and conversions; `mode` is `start`
    or `stop`; `cls` is the class given by `--allow` (`auto` under `-a`), None otherwise.
    """
    env: dict[str, str] = {}
    for name, value in (caller or {}).items():
        if name.startswith("IFUPDOWN_"):
            env[name] = value
    for name, value in options:
        if name in HOOKS:
            continue
        env[mangle(name)] = value
    env["IFACE"] = physical
    env["LOGICAL"] = logical
    env["ADDRFAM"] = family
    env["METHOD"] = method
    if cls is not None:
        env["CLASS"] = cls
    env["MODE"] = mode
    env["PHASE"] = phase
    env["VERBOSITY"] = "1" if verbose else "0"
    env["PATH"] = HOOK_PATH
    env[f"IFUPDOWN_{physical}"] = phase
    parent = vlan_parent(physical)
    if parent is not None:
        env[f"IFUPDOWN_{parent}"] = "parent-lock"
    return tuple(env.items())
