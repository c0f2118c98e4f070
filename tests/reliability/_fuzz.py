"""Shared knobs of the reliability fuzzers: bounded for CI, long on request.

`IFVIP_FUZZ_EXAMPLES=N` sets every fuzzer's example count (e.g. 100000 for a night run);
without it each test uses its own modest default so the directory runs in seconds.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings


def fuzz(default: int) -> settings:
    """Hypothesis settings: `default` examples unless IFVIP_FUZZ_EXAMPLES says otherwise."""
    examples = int(os.environ.get("IFVIP_FUZZ_EXAMPLES", default))
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
