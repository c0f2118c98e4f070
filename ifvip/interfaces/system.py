"""The live system as the reader sees it: links from sysfs and mapping scripts.

These are the only side effects of `ifquery`: reading /sys/class/net for pattern targets
(`/eth*`, `mac/...`) and running `mapping` scripts, which ifupdown runs even with `-n`.
They are kept out of the pure query code, which receives them as arguments.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Final

from ifvip.interfaces.model import Mapping
from ifvip.interfaces.patterns import Link, SystemView

SYS_CLASS_NET: Final = Path("/sys/class/net")

# The environment ifupdown gives hook and mapping children (specs/ifupdown.md §4).
HOOK_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MAPPING_TIMEOUT: Final = 30.0


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def live_system(root: Path = SYS_CLASS_NET) -> SystemView:
    """Links in ifindex order (getifaddrs() order), with a sysfs attribute reader."""
    links: list[tuple[int, Link]] = []
    try:
        names = os.listdir(root)
    except OSError:
        names = []
    for name in names:
        index = _read(root / name / "ifindex")
        mac = _read(root / name / "address") or "00:00:00:00:00:00"
        if index is not None and index.isdigit():
            links.append((int(index), Link(name, mac)))
    links.sort(key=lambda pair: pair[0])

    def sysfs(link: str, var: str) -> str | None:
        if "/" in var or var in ("", ".", ".."):
            return None
        return _read(root / link / var)

    return SystemView(tuple(link for _index, link in links), sysfs)


def run_mapping(mapping: Mapping, physical: str, logical: str) -> str | None:
    """Run a mapping script: physical name as argument, `map` lines on stdin.

    The first line it prints is the new logical name; no output keeps the name. Returns
    None (and ifquery/ifup fail that target) when the script cannot run or fails.
    """
    del logical
    script = mapping.script or ""
    try:
        done = subprocess.run(
            [script, physical],
            input="".join(line + "\n" for line in mapping.maps),
            capture_output=True,
            text=True,
            timeout=MAPPING_TIMEOUT,
            env={"PATH": HOOK_PATH},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    first = done.stdout.split("\n", 1)[0].strip()
    return first or physical
