"""The PATH every child of ifvip gets, as ifupdown gives its hooks (specs/ifupdown.md §4).

One definition for both halves: ifupdown's hooks, methods' programs and mapping scripts
(`ifupdown/env.py`, `ifupdown/command.py`, `interfaces/system.py`), and the daemon's -u/-d
scripts, check scripts and VRRP notify scripts (`daemon/children.py`). Never the caller's
own PATH. Imports nothing, so it costs a short command nothing to load.
"""

from __future__ import annotations

from typing import Final

HOOK_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
