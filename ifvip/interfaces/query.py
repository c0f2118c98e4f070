"""ifquery: select targets as ifupdown does and print stanzas in its exact format.

Target selection (shared with ifup/ifdown) follows ifupdown 0.8.41 as observed on the real
binary: pattern targets are expanded against the system's links, the expanded list is
de-duplicated (first occurrence wins), `rename CUR=NEW` maps a physical name equal to CUR
(with its logical name when none was given), then `--allow` and `-X` filter, mappings run,
and the matching stanzas are printed as `name: value` after defaults and conversions
(specs/ifupdown.md §10-11). Nothing here runs a process or reads a file: the mapping runner,
the system view and the state are passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import field

from ifvip.interfaces.model import InterfacesFile, Mapping
from ifvip.interfaces.options import effective_options
from ifvip.interfaces.patterns import SystemView, expand, fnmatch, match_any
from ifvip.record import record

TYPE_CHECKING = False  # typing is not imported at run time: ifquery does not need it
if TYPE_CHECKING:
    from typing import TypeAlias

# run(mapping, physical, logical) -> the new logical name, or None when the script failed.
MappingRunner: TypeAlias = Callable[[Mapping, str, str], str | None]


@record(kw_only=False)
class QueryRequest:
    targets: tuple[str, ...] = ()
    list_mode: bool = False
    all_mode: bool = False
    allow: str | None = None
    exclude: tuple[str, ...] = ()
    overrides: tuple[tuple[str, str], ...] = ()
    run_mappings: bool = True
    as_json: bool = False


@record(kw_only=False, frozen=False)
class QueryResult:
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    ok: bool = True
    records: list[dict[str, object]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


class RenameConflictError(Exception):
    """A renamed interface was also given a logical name (ifupdown 0.8.41 aborts there)."""


def expand_targets(targets: Sequence[str], system: SystemView) -> list[str]:
    """Expand pattern targets and drop repeats, keeping the first of each."""
    seen: set[str] = set()
    result: list[str] = []
    for target in targets:
        for name in expand(target, system):
            if name not in seen:
                seen.add(name)
                result.append(name)
    return result


def split_target(defn: InterfacesFile, target: str) -> tuple[str, str]:
    """`PHYS[=LOGICAL]` → (physical, logical), after `rename` rules."""
    phys, eq, logical = target.partition("=")
    for rename in defn.renames:
        if rename.current == phys:
            if eq:
                raise RenameConflictError(
                    f"{phys} is renamed to {rename.new} ({rename.origin}) and cannot also be "
                    f"mapped to {logical}"
                )
            return rename.new, rename.new
    return phys, logical if eq else phys


def ignored(defn: InterfacesFile, physical: str, allow: str | None, exclude: Sequence[str]) -> bool:
    if allow is not None:
        members = defn.allowed(allow)
        if members is None or physical not in members:
            return True
    return match_any(exclude, physical)


def known(defn: InterfacesFile, logical: str) -> bool:
    if defn.stanzas(logical):
        return True
    return any(match_any(m.patterns, logical) for m in defn.mappings)


def apply_mappings(
    defn: InterfacesFile, physical: str, logical: str, run: MappingRunner
) -> str | None:
    """Run every mapping whose pattern matches the (current) logical name, in order.

    None when a script fails or cannot run; "" when a script printed nothing."""
    return run_mappings(defn, physical, logical, run)[0]


def run_mappings(
    defn: InterfacesFile, physical: str, logical: str, run: MappingRunner
) -> tuple[str | None, Mapping | None]:
    """`apply_mappings`, with the mapping that stopped the chain (failed or said nothing)."""
    for mapping in defn.mappings:
        if any(fnmatch(p, logical) for p in mapping.patterns):
            mapped = run(mapping, physical, logical)
            if not mapped:
                return mapped, mapping
            logical = mapped
    return logical, None


def mapping_failure(
    script: str | None,
    physical: str,
    mapped: str | None,
    cannot_run: Callable[[str], str | None] | None = None,
) -> list[str]:
    """ifupdown's messages for a mapping script that failed (None) or printed nothing ("")."""
    name = script or ""
    if mapped == "":
        return [f"no output from mapping script {name} on {physical}"]
    messages: list[str] = []
    if cannot_run is None:
        from ifvip.interfaces.system import mapping_error  # noqa: PLC0415

        cannot_run = mapping_error
    reason = cannot_run(name)
    if reason is not None:
        messages.append(f'executing "{name}" failed: {reason}')
    messages.append(f"error trying to executing mapping script {name} on {physical}")
    return messages


def query(
    defn: InterfacesFile,
    request: QueryRequest,
    system: SystemView,
    run_mapping: MappingRunner,
) -> QueryResult:
    result = QueryResult()
    if request.list_mode and not request.targets:
        targets: Sequence[str] = defn.allowed(request.allow or "auto") or ()
    else:
        targets = request.targets
    for target in expand_targets(targets, system):
        try:
            physical, logical = split_target(defn, target)
        except RenameConflictError as exc:
            result.stderr.append(f"ifquery: {exc}")
            result.ok = False
            return result
        if ignored(defn, physical, request.allow, request.exclude):
            continue
        if not known(defn, logical):
            result.stderr.append(f"ifquery: unknown interface {logical}")
            result.ok = False
            continue
        if request.list_mode:
            # --list only asks whether a stanza or a mapping knows the name: no mapping runs.
            result.stdout.append(physical)
            result.records.append({"iface": physical, "logical": logical})
            continue
        if request.run_mappings:
            mapped, stopped = run_mappings(defn, physical, logical, run_mapping)
            if not mapped:
                script = stopped.script if stopped is not None else None
                result.stderr.extend(
                    f"ifquery: {m}" for m in mapping_failure(script, physical, mapped)
                )
                result.ok = False
                continue
            logical = mapped
        stanzas = list(defn.stanzas(logical))
        if not stanzas:
            result.stderr.append(f"ifquery: unknown interface {physical}")
            result.ok = False
            continue
        for stanza in stanzas:
            pairs = effective_options(
                [(o.name, o.value) for o in stanza.options],
                stanza.family,
                stanza.method,
                physical,
                request.overrides,
            )
            result.stdout.extend(f"{name}: {value}" for name, value in pairs)
            result.records.append(
                {
                    "iface": physical,
                    "logical": logical,
                    "family": stanza.family,
                    "method": stanza.method,
                    "origin": str(stanza.origin),
                    "options": [[name, value] for name, value in pairs],
                }
            )
    return result


def render(result: QueryResult, *, as_json: bool) -> str:
    if as_json:
        import json  # noqa: PLC0415 - only the --json form needs it

        return json.dumps(result.records, indent=2) + "\n"
    return "".join(line + "\n" for line in result.stdout)


def state_lines(state_text: str, targets: Sequence[str]) -> tuple[list[str], bool]:
    """`ifquery --state`: the `PHYS=LOGICAL` lines for the targets (all when none)."""
    lines = [line.strip() for line in state_text.splitlines() if line.strip()]
    if not targets:
        return lines, True
    out: list[str] = []
    all_up = True
    for target in targets:
        match = next((line for line in lines if line.startswith(target + "=")), None)
        if match is None:
            all_up = False
        else:
            out.append(match)
    return out, all_up
