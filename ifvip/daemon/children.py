"""The one way the daemon runs a child process: -u/-d scripts, check scripts, VRRP notify.

Each child leads its own session, hence its own process group, so that a kill reaches
whatever it started too (a `sleep` in the background, a pipeline). A child that runs over
its time, or whose caller is cancelled, is killed with its whole group and reaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence


async def run_child(
    argv: Sequence[str], *, env: Mapping[str, str], timeout: float, quiet: bool = False
) -> int | None:
    """Run `argv` in a process group of its own; its exit code, or None once killed after
    `timeout` seconds. `quiet`: stdin, stdout and stderr on /dev/null. An OSError from
    starting it (missing, not executable) reaches the caller; so does a cancellation, after
    the group is killed."""
    null = asyncio.subprocess.DEVNULL if quiet else None
    process = await asyncio.create_subprocess_exec(
        *argv, env=dict(env), stdin=null, stdout=null, stderr=null, start_new_session=True
    )
    try:
        return await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        await kill_group(process)
        return None
    except asyncio.CancelledError:
        await kill_group(process)
        raise


async def kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGKILL the process group a child leads, then reap the child."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    # Reaping is quick once killed; finish it even if we are cancelled again meanwhile.
    await asyncio.shield(process.wait())
