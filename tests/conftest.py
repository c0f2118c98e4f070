"""Shared test helpers: where the shared corpus and vectors live, and a private /run.

Every ifvip a test starts (in-process or as a child, which inherits the environment) keeps
its state, status socket and reading cache under one temporary directory of this test
session instead of the machine's /run/ifvip; the directory is removed when the session ends.
Tests that need a particular directory still pass --state-dir or IFVIP_* themselves.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus" / "ifupdown"

RUN = Path(tempfile.mkdtemp(prefix="ifvip-tests-run-"))
for _variable, _path in (("IFVIP_STATE_DIR", RUN / "ifvip"), ("IFVIP_CACHE_DIR", RUN / "cache")):
    os.environ.setdefault(_variable, str(_path))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(RUN, ignore_errors=True)


@pytest.fixture
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is not beside the checkout ({CORPUS})")
    return CORPUS
