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

from ifvip.hookenv import HOOK_PATH
from ifvip.interfaces.model import Mapping
from ifvip.interfaces.patterns import Link, SystemView

SYS_CLASS_NET: Final = Path("/sys/class/net")

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


def mapping_error(script: str) -> str | None:
    """Why a mapping script cannot be executed, as ifupdown says it (None: it can). A name
    without a slash is searched on ifupdown's PATH, as execvp() does."""
    if "/" not in script:
        import shutil  # noqa: PLC0415 - only for a mapping (shutil: 2 ms)

        found = shutil.which(script, path=HOOK_PATH)
        return None if found is not None else os.strerror(2)
    if os.access(script, os.X_OK):
        return None
    try:
        os.stat(script)
    except OSError as exc:
        return exc.strerror
    return os.strerror(13)


def run_mapping(mapping: Mapping, physical: str, logical: str) -> str | None:
    """Run a mapping script: physical name as argument, `map` lines on stdin.

    The first line it prints, trailing white space cut, is the new logical name; "" when
    it prints nothing (ifupdown: `no output from mapping script`). Returns None (and
    ifquery/ifup fail that target) when the script cannot run or fails. A script named
    without a path is looked up on ifupdown's PATH.
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
    if not done.stdout:
        return ""
    return done.stdout.split("\n", 1)[0].rstrip()
