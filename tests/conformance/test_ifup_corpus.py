"""`ifvip ifup -n -v` against the goldens recorded from real ifupdown 0.8.41 (shared/corpus).

Every section of every `*.ifup-n.per-iface.txt` golden (one `ifup -n -v -i FILE NAME` each),
every `*.ifup-n.txt` golden of an accepted file (`ifup -n -v -i FILE ARGS`, mostly `-a`),
and every `*.ifdown-nac.txt` golden (`ifdown -v` with the state the recorded ifup left,
replayed as `ifvip ifdown -n -v`: ifvip's down commands without a journal) is replayed
in-process with the system the goldens were recorded on (lo, then a veth
pair eth1/eth0; dhclient and ifupdown's helper scripts installed, udhcpc and dhcpcd not):
the exit status and stderr must match, with whitespace normalised the way Debian's own
tests compare (`diff -b`: runs of blanks are one blank, trailing blanks do not count; we
also ignore leading blanks). The test prints N/M; every exclusion is listed with a reason.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from ifvip.ifupdown.command import Options, run
from ifvip.interfaces.patterns import Link, SystemView
from ifvip.interfaces.system import run_mapping
from tests.conftest import CORPUS

RECORDED = SystemView(
    (
        Link("lo", "00:00:00:00:00:00"),
        Link("eth1", "02:00:00:00:00:02"),
        Link("eth0", "02:00:00:00:00:01"),
    ),
    lambda link, var: {"type": "772" if link == "lo" else "1"}.get(var),
)
INSTALLED = frozenset({"dhclient", "wait-for-ll6.sh", "settle-dad.sh"})

_NAC = (
    "the golden is `ifdown --no-act-commands`, which records the state as it goes, so a VLAN "
    "goes down once; `ifdown -n` records nothing and takes it down again before its link, in "
    "ifupdown 0.8.41 as in ifvip (tests/conformance/test_realworld.py compares real -n runs)"
)

# Whole files (every section of their goldens), each with its reason.
EXCLUDED_FILES: dict[str, str] = {}
# ifdown goldens of files whose ifup ones all pass.
EXCLUDED_DOWN: dict[str, str] = {
    "ifvip-probes/p07c-exclude-and-option": "ifupdown 0.8.41 segfaults (exit 139) on `-o gateway=`",
}
# Single sections (`file::args`), each with its reason.
EXCLUDED_CASES: dict[str, str] = {
    "debian-ifupdown/tests/linux/testcase.7::ifdown -a": _NAC,
    "ifvip-probes/p11-vlan-description::ifdown -a": _NAC,
    "ifvip-probes/p07c-exclude-and-option::-a -X eth1 -o mtu=1280 -o post-up=echo-from-o "
    "-o gateway=": "ifupdown 0.8.41 corrupts its option list on an empty `-o gateway=` "
    "(keeps the gateway, drops the `-o post-up`; specs §11: do not replicate); ifvip unsets it",
}


@dataclass(frozen=True)
class Case:
    golden: Path
    source: str  # the interfaces file, relative to CORPUS
    args: tuple[str, ...]
    exit_code: int
    stderr: str
    up: bool = True
    state: str = ""  # ifdown: the state directory as the recorded ifup left it

    @property
    def id(self) -> str:
        shown = [a for a in self.args if a not in ("-n", "-v", "--no-loopback")]
        shown = [a for i, a in enumerate(shown) if a != "-i" and (i == 0 or shown[i - 1] != "-i")]
        return f"{self.source}::{'' if self.up else 'ifdown '}{' '.join(shown)}"

    @property
    def excluded(self) -> str | None:
        if not self.up and self.source in EXCLUDED_DOWN:
            return EXCLUDED_DOWN[self.source]
        return EXCLUDED_FILES.get(self.source) or EXCLUDED_CASES.get(self.id)


def _sections(text: str) -> list[tuple[str | None, int, str]]:
    blocks = re.split(r"(?m)^(?=### )", text) if text.startswith("### ") else [text]
    out = []
    for block in filter(None, blocks):
        m = re.match(
            r"(?:### (.*)\n)?exit code: (\d+)\n====stdout====\n(.*?)====stderr====\n(.*)",
            block,
            re.S,
        )
        assert m, f"unreadable golden section: {block[:80]!r}"
        out.append((m.group(1), int(m.group(2)), m.group(4)))
    return out


def _run_args(source: Path) -> tuple[str, ...]:
    """The file's `# RUN:` lines joined, else `-a` (how SOURCES.md recorded ifup-n.txt)."""
    runs = re.findall(r"(?m)^# RUN: (.*)$", source.read_text(errors="replace"))
    return tuple(shlex.split(" ".join(runs))) if runs else ("-a",)


def _cases() -> list[Case]:
    if not CORPUS.is_dir():
        return []
    cases = []
    for golden in sorted(CORPUS.rglob("*.ifup-n.per-iface.txt")):
        source = str(golden.relative_to(CORPUS)).removesuffix(".ifup-n.per-iface.txt")
        for header, code, err in _sections(golden.read_text()):
            assert header is not None
            cases.append(Case(golden, source, tuple(header.split()[1:]), code, err))
        args = ("-n", "-v", "-i", Path(source).name, *_run_args(CORPUS / source))
        whole = golden.with_name(golden.name.replace(".per-iface", ""))
        if whole.is_file():
            ((_, code, err),) = _sections(whole.read_text())
            cases.append(Case(whole, source, args, code, err))
        # ifdown (`--no-act-commands` recorded after the ifup; -n prints the same commands),
        # from the state that ifup left.
        down = golden.with_name(golden.name.replace(".ifup-n.per-iface", ".ifdown-nac"))
        state = golden.with_name(golden.name.replace(".ifup-n.per-iface", ".ifstate-after-ifup"))
        if down.is_file():
            ((_, code, err),) = _sections(down.read_text())
            text = state.read_text() if state.is_file() else ""
            cases.append(Case(down, source, args, code, err, up=False, state=text))
    return cases


CASES = _cases()


def normalise(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines()]


def _options(args: tuple[str, ...], state_dir: str) -> Options:
    rest = list(args)
    kw: dict[str, object] = {"no_act": True, "state_dir": state_dir}
    targets: list[str] = []
    exclude: list[str] = []
    overrides: list[tuple[str, str]] = []
    while rest:
        arg = rest.pop(0)
        if arg == "-i":
            kw["path"] = rest.pop(0)
        elif arg == "-v":
            kw["verbose"] = True
        elif arg == "-n":
            pass
        elif arg == "-a":
            kw["all_mode"] = True
        elif arg == "--no-loopback":
            kw["no_loopback"] = True
        elif arg.startswith("--allow="):
            kw["allow"] = arg.split("=", 1)[1]
        elif arg == "-X":
            exclude.append(rest.pop(0))
        elif arg == "-o":
            name, _, value = rest.pop(0).partition("=")
            overrides.append(({"post-up": "up", "pre-down": "down"}.get(name, name), value))
        else:
            targets.append(arg)
    return Options(
        up=True,
        targets=tuple(targets),
        exclude=tuple(exclude),
        overrides=tuple(overrides),
        **kw,  # type: ignore[arg-type]
    )


def _state(text: str, state_dir: Path) -> None:
    """Write the `==== NAME` sections of an `*.ifstate-after-ifup.txt` golden."""
    for block in re.split(r"(?m)^==== ", text):
        if block:
            name, _, body = block.partition("\n")
            (state_dir / name.strip()).write_text(body)


def _run(case: Case, state_dir: Path) -> tuple[int, str]:
    err = io.StringIO()
    for old in state_dir.iterdir():
        old.unlink()
    _state(case.state, state_dir)
    cwd = os.getcwd()
    os.chdir(case.golden.parent)
    try:
        code = run(
            dataclasses.replace(_options(case.args, str(state_dir)), up=case.up),
            system=RECORDED,
            run_mapping=run_mapping,
            available=INSTALLED.__contains__,
            err=err,
        )
    finally:
        os.chdir(cwd)
    return code, err.getvalue()


def test_corpus_is_here() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is not beside the checkout ({CORPUS})")
    assert len(CASES) > 100


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_ifup_n_matches_golden(case: Case, tmp_path: Path) -> None:
    if case.excluded:
        pytest.skip(case.excluded)
    code, stderr = _run(case, tmp_path)
    assert normalise(stderr) == normalise(case.stderr)
    assert code == case.exit_code


def test_corpus_score(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """N/M over every section, printed, with the exclusions; anything below 100% fails."""
    if not CASES:
        pytest.skip("no corpus")
    passed, failed = 0, []
    considered = [c for c in CASES if not c.excluded]
    for case in considered:
        code, stderr = _run(case, tmp_path)
        if (code, normalise(stderr)) == (case.exit_code, normalise(case.stderr)):
            passed += 1
        else:
            failed.append(case.id)
    with capsys.disabled():
        print(
            f"\nifup/ifdown -n -v corpus conformance: {passed}/{len(considered)} "
            f"({len(CASES) - len(considered)} of {len(CASES)} sections excluded)"
        )
        for case in CASES:
            if case.excluded:
                print(f"  excluded {case.id}: {case.excluded}")
        for name in failed:
            print(f"  FAILED {name}")
    assert passed == len(considered)
