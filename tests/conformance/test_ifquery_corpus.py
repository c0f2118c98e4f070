"""ifvip ifquery against the goldens recorded from real ifupdown 0.8.41 (shared/corpus).

Every `*.ifquery.txt` and `*.ifquery-list*.txt` golden is replayed in-process with the
system the goldens were recorded on (lo, then a veth pair eth1/eth0 with fixed MACs): stdout
and the exit code must be identical, and a file ifupdown rejects must be rejected naming
the same line. The test prints N/M and accepts nothing below 100%.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from ifvip.interfaces.loader import load
from ifvip.interfaces.patterns import Link, SystemView
from ifvip.interfaces.query import QueryRequest, query, render
from ifvip.interfaces.system import run_mapping
from tests.conftest import CORPUS

# The recording namespace (SOURCES.md): getifaddrs() listed lo, eth1, eth0 in that order.
RECORDED = SystemView(
    (
        Link("lo", "00:00:00:00:00:00"),
        Link("eth1", "02:00:00:00:00:02"),
        Link("eth0", "02:00:00:00:00:01"),
    ),
    lambda link, var: {"type": "772" if link == "lo" else "1"}.get(var),
)

# Exclusions, each with its reason. None today.
EXCLUDED: dict[str, str] = {}


@dataclass(frozen=True)
class Case:
    golden: Path
    args: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str

    @property
    def id(self) -> str:
        return f"{self.golden.relative_to(CORPUS)}::{' '.join(self.args)}"


def _sections(text: str) -> list[tuple[str | None, int, str, str]]:
    blocks = re.split(r"(?m)^(?=### )", text) if text.startswith("### ") else [text]
    out = []
    for block in filter(None, blocks):
        m = re.match(
            r"(?:### (.*)\n)?exit code: (\d+)\n====stdout====\n(.*?)====stderr====\n(.*)",
            block,
            re.S,
        )
        assert m, f"unreadable golden section: {block[:80]!r}"
        out.append((m.group(1), int(m.group(2)), m.group(3), m.group(4)))
    return out


def _cases() -> list[Case]:
    if not CORPUS.is_dir():
        return []
    cases = []
    for golden in sorted(CORPUS.rglob("*.ifquery*.txt")):
        source = golden.name.split(".ifquery")[0]
        for header, code, out, err in _sections(golden.read_text()):
            if header:
                args = tuple(header.split()[1:])
            else:
                args = ("-i", source, "--list")
                allow = re.search(r"ifquery-list-allow-(.*)\.txt$", golden.name)
                if allow:
                    args += (f"--allow={allow.group(1)}",)
            cases.append(Case(golden, args, code, out, err))
    return cases


CASES = _cases()


def _run(case: Case) -> tuple[int, str, list[str]]:
    """Run the ifquery engine as the CLI would, in the golden's directory."""
    args = list(case.args)
    path = args[args.index("-i") + 1]
    list_mode = "--list" in args
    allow = next((a.split("=", 1)[1] for a in args if a.startswith("--allow=")), None)
    targets = tuple(a for a in args if not a.startswith("-") and a != path)
    cwd = os.getcwd()
    os.chdir(case.golden.parent)
    try:
        defn = load(path)
        if not defn.ifupdown_ok:
            return 1, "", [str(e) for e in defn.errors]
        result = query(
            defn,
            QueryRequest(targets=targets, list_mode=list_mode, allow=allow),
            RECORDED,
            run_mapping,
        )
    finally:
        os.chdir(cwd)
    return result.exit_code, render(result, as_json=False), result.stderr


def test_corpus_is_here() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is not beside the checkout ({CORPUS})")
    assert len(CASES) > 200


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_ifquery_matches_golden(case: Case) -> None:
    if case.id in EXCLUDED:
        pytest.skip(EXCLUDED[case.id])
    code, stdout, errors = _run(case)
    assert (code, stdout) == (case.exit_code, case.stdout)
    rejected = re.search(r":(\d+): (.*)\nifquery: couldn't read interfaces file", case.stderr)
    if rejected:
        line, message = rejected.groups()
        assert any(f":{line}:" in e and message in e for e in errors), errors


def test_corpus_score(capsys: pytest.CaptureFixture[str]) -> None:
    """N/M over the whole corpus, printed; anything below 100% fails."""
    if not CASES:
        pytest.skip("no corpus")
    passed = 0
    for case in CASES:
        if case.id in EXCLUDED:
            continue
        code, stdout, _errors = _run(case)
        passed += (code, stdout) == (case.exit_code, case.stdout)
    total = len(CASES) - len(EXCLUDED)
    with capsys.disabled():
        print(f"\nifquery corpus conformance: {passed}/{total} ({len(EXCLUDED)} excluded)")
    assert passed == total
