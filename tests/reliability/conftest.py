"""The reliability tests' pair of hosts (tests/reliability/harness.py), made and deleted
around each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.harness import PairLab


@pytest.fixture
def lab() -> Iterator[PairLab]:
    with PairLab() as pair:
        yield pair
