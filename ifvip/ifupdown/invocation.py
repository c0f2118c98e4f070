"""One `ifup`/`ifdown` command: which targets, in which order, with which messages.

This is ifupdown 0.8.41's main.c selection (specs/ifupdown.md §3, §8, §11), shared by the
dry run and the real run: `rename` first, then the targets (`-a`: the class list; else
the command line, patterns expanded), `--allow`/`-X` filtering, mapping scripts, the state
check ("already configured"), a VLAN's parent before the VLAN (ifup) or a link's VLANs
before the link (ifdown), and under `-a` the meta `run-parts` before and after. Nothing
here runs anything: the system view, the mapping runner and the state are passed in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import field

from ifvip.ifupdown import hooks
from ifvip.ifupdown.env import hook_env
from ifvip.ifupdown.methods import Refusal, Settings, plan_target
from ifvip.ifupdown.plan import POST_DOWN, POST_UP, PRE_DOWN, PRE_UP, Op, Plan, RenameLink, Step
from ifvip.interfaces.model import InterfacesFile
from ifvip.interfaces.patterns import SystemView, fnmatch, match_any
from ifvip.interfaces.query import (
    MappingRunner,
    RenameConflictError,
    expand_targets,
    ignored,
    known,
    mapping_failure,
    run_mappings,
    split_target,
)
from ifvip.record import record


@record(kw_only=False)
class Request:
    up: bool
    targets: tuple[str, ...] = ()
    all_mode: bool = False
    allow: str | None = None
    exclude: tuple[str, ...] = ()
    force: bool = False
    no_act: bool = False


@record(kw_only=False, frozen=False)
class Entry:
    """One target: messages before it, its plan (None if it never got one), its refusal."""

    target: str
    plan: Plan | None = None
    refusal: Refusal | None = None
    before: list[str] = field(default_factory=list)  # messages, without the `ifup: ` prefix
    failed: bool = False  # a selection failure (unknown interface, mapping error)
    quiet_already: bool = False  # under -a, "already configured" is not printed
    parent_of: str | None = None  # set on a VLAN parent brought up before its VLAN


@record(kw_only=False, frozen=False)
class Invocation:
    renames: list[Op] = field(default_factory=list)
    prologue: list[Step] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    epilogue: list[Step] = field(default_factory=list)
    usage_error: str | None = None

    @property
    def refused(self) -> bool:
        return any(e.refusal is not None for e in self.entries)

    def plans(self) -> list[Plan]:
        return [e.plan for e in self.entries if e.plan is not None and e.refusal is None]


StateLookup = Callable[[str], "str | None"]  # physical -> logical it is up as, or None


def select(
    defn: InterfacesFile,
    request: Request,
    settings: Settings,
    system: SystemView,
    run_mapping: MappingRunner,
    state: StateLookup,
    configured: Sequence[tuple[str, str]] = (),
    mapping_error: Callable[[str], str | None] = lambda _script: None,
) -> Invocation:
    """Everything one ifup/ifdown command would do, in order."""
    inv = Invocation()
    if request.all_mode and request.targets:
        inv.usage_error = "either use the --all/-a option, or specify interface(s), but not both"
        return inv
    if not request.all_mode and not request.targets:
        inv.usage_error = "no interface(s) specified"
        return inv
    if request.up:
        names = {link.name for link in system.links}
        for rename in defn.renames:
            for current in sorted(names):
                if fnmatch(rename.current, current):
                    inv.renames.append(
                        RenameLink(
                            ifname=current,
                            new=rename.new,
                            origin=rename.origin,
                            text=f"ip link set {current} name {rename.new}",
                        )
                    )
    cls = request.allow or ("auto" if request.all_mode else None)
    if request.all_mode and not settings.no_scripts:
        phase, directory = (PRE_UP, "if-pre-up.d") if request.up else (PRE_DOWN, "if-down.d")
        inv.prologue.append(_meta(settings, request, cls or "auto", phase, directory))
    if request.all_mode:
        if request.up:
            targets: Sequence[str] = defn.allowed(cls or "auto") or ()
        else:
            # ifdown -a: the state file, latest up first, without the no-auto-down ones.
            targets = [
                f"{phys}={logical}"
                for phys, logical in reversed(list(configured))
                if not match_any(defn.no_auto_down, phys)
            ]
    else:
        targets = request.targets
    accepted: list[str] = []
    for target in expand_targets(targets, system):
        if _one(defn, request, settings, run_mapping, state, inv, target, mapping_error):
            accepted.append(target.partition("=")[0])
    if request.up and request.allow is not None and not request.all_mode:
        # `ifup --allow=CLASS IFACE` also brings up the VLANs IFACE.* of the class (§11).
        members = defn.allowed(request.allow) or ()
        for physical in accepted:
            for vlan in members:
                if vlan.startswith(physical + ".") and vlan not in accepted:
                    _one(defn, request, settings, run_mapping, state, inv, vlan, mapping_error)
    if request.all_mode and not settings.no_scripts:
        phase, directory = (POST_UP, "if-up.d") if request.up else (POST_DOWN, "if-post-down.d")
        inv.epilogue.append(_meta(settings, request, cls or "auto", phase, directory))
    return inv


def _meta(settings: Settings, request: Request, cls: str, phase: str, directory: str) -> Step:
    env = hook_env(
        physical="--all",
        logical=cls,
        family="meta",
        method="none",
        options=(),
        mode="start" if request.up else "stop",
        phase=phase,
        verbose=settings.verbose,
        cls=cls,
        caller=settings.caller_env,
    )
    op = hooks.run_parts(
        f"{settings.scripts_dir}/{directory}",
        env=env,
        phase=phase,
        exit_on_error=request.up and not settings.ignore_errors,
        verbose=settings.verbose,
    )
    return Step(op, phase, directory)


def _one(
    defn: InterfacesFile,
    request: Request,
    settings: Settings,
    run_mapping: MappingRunner,
    state: StateLookup,
    inv: Invocation,
    target: str,
    mapping_error: Callable[[str], str | None],
) -> bool:
    """Add what one target does; False when filtering leaves it out."""
    entry = Entry(target, quiet_already=request.all_mode)
    try:
        physical, logical = split_target(defn, target)
    except RenameConflictError as exc:
        entry.before.append(str(exc))
        entry.failed = True
        inv.entries.append(entry)
        return True
    explicit = "=" in target
    if ignored(defn, physical, request.allow, request.exclude):
        return False
    from_state = False
    if not request.up and not explicit and not request.force:
        recorded = state(physical)
        if recorded is None:
            entry.before.append(f"interface {physical} not configured")
            inv.entries.append(entry)
            return True
        logical = recorded  # ifdown uses the logical name the state records (§8)
        from_state = True
    if not known(defn, logical):
        entry.before.append(f"unknown interface {logical}")
        entry.failed = True
        inv.entries.append(entry)
        return True
    if not explicit and not from_state:
        for mapping in defn.mappings:
            if any(fnmatch(p, logical) for p in mapping.patterns) and settings.verbose:
                entry.before.append(f"running mapping script {mapping.script} on {logical}")
        mapped, stopped = run_mappings(defn, physical, logical, run_mapping)
        if not mapped:
            script = stopped.script if stopped is not None else None
            entry.before.extend(mapping_failure(script, physical, mapped, mapping_error))
            entry.failed = True
            inv.entries.append(entry)
            return True
        ran = any(match_any(m.patterns, logical) for m in defn.mappings)
        if ran and not defn.stanzas(mapped):
            # ifupdown: a name the script maps to and no stanza defines is skipped, not failed.
            entry.before.append(f"ignoring unknown interface {physical}={mapped}")
            inv.entries.append(entry)
            return True
        logical = mapped
    if request.up:
        parent = _vlan_raw(physical)
        if parent is not None and defn.stanzas(parent):
            _add(
                defn,
                request,
                settings,
                state,
                inv,
                Entry(parent, parent_of=physical),
                parent,
                parent,
            )
    else:
        for stanza in defn.ifaces:
            if stanza.name.startswith(physical + ".") and "." not in physical:
                vlan = stanza.name
                done = {e.plan.physical for e in inv.entries if e.plan is not None}
                # ifupdown -n records nothing, so a VLAN already taken down is still up in
                # its state and goes down again before its link: print it twice as it does.
                if request.no_act or (
                    vlan not in done
                    and all(e.target.partition("=")[0] != vlan for e in inv.entries)
                ):
                    _add(
                        defn,
                        request,
                        settings,
                        state,
                        inv,
                        Entry(vlan, parent_of=physical),
                        vlan,
                        vlan,
                    )
    _add(defn, request, settings, state, inv, entry, physical, logical)
    return True


def _vlan_raw(physical: str) -> str | None:
    device = physical.split(":", 1)[0]
    raw, dot, _vid = device.partition(".")
    return raw if dot and raw else None


def _add(
    defn: InterfacesFile,
    request: Request,
    settings: Settings,
    state: StateLookup,
    inv: Invocation,
    entry: Entry,
    physical: str,
    logical: str,
) -> None:
    if not defn.stanzas(logical):
        entry.before.append(f"unknown interface {logical}")
        entry.failed = True
        inv.entries.append(entry)
        return
    if not request.force:
        recorded = state(physical)
        if request.up and recorded is not None:
            if not entry.quiet_already and entry.parent_of is None:
                entry.before.append(f"interface {physical} already configured")
            inv.entries.append(entry)
            return
        if not request.up and recorded is None:
            if entry.parent_of is None:
                entry.before.append(f"interface {physical} not configured")
            inv.entries.append(entry)
            return
    plan, refusal = plan_target(defn, physical, logical, settings, up=request.up)
    entry.plan = plan
    entry.refusal = refusal
    inv.entries.append(entry)
