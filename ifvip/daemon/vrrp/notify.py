"""keepalived's generic notify scripts: `SCRIPT INSTANCE NAME STATE PRIORITY`, no shell.

Run one after the other in the order of the transitions (keepalived's run concurrently and
can reorder, issue #1055), through the daemon's one child runner (children.py): bounded in
time, killed with their whole process group when they run over.
"""

from __future__ import annotations

import logging
import os
from typing import Final

from ifvip.daemon.children import run_child
from ifvip.hookenv import HOOK_PATH

log = logging.getLogger("ifvip")

NOTIFY_TIMEOUT: Final = 60.0


async def run_notify(
    script: str,
    instance: str,
    state: str,
    priority: int,
    name: str,
    timeout: float = NOTIFY_TIMEOUT,
) -> None:
    """keepalived's generic notify: `SCRIPT INSTANCE NAME STATE PRIORITY`, no shell; run
    over `timeout` seconds, it is killed with everything it started."""
    argv = [script, "INSTANCE", instance, state, str(priority)]
    env = {**os.environ, "PATH": HOOK_PATH}
    try:
        code = await run_child(argv, env=env, timeout=timeout)
    except OSError as exc:
        log.error("(%s) cannot run %s: %s", name, script, exc.strerror)
        return
    if code is None:
        log.error("(%s) %s ran over %.0f s and was killed", name, script, timeout)
        return
    if code != 0:
        log.warning("(%s) %s %s exited with %d", name, script, state, code)
