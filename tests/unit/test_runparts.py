"""ifvip's in-process run-parts against Debian's run-parts, on the same directories.

Both run the same if-*.d-like directory with the same environment; the scripts log their
name, arguments, umask and environment to one file. The log, run-parts' messages and the
exit status must be the same for every combination of --exit-on-error and --verbose.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ifvip.ifupdown.executor import NetlinkExecutor, OpError
from ifvip.ifupdown.netlink import Kernel
from ifvip.ifupdown.plan import RunParts
from ifvip.ifupdown.runparts import scripts

RUN_PARTS = shutil.which("run-parts")
pytestmark = pytest.mark.skipif(RUN_PARTS is None, reason="needs Debian's run-parts")

LOGGER = '#!/bin/sh\necho "$(basename "$0") $# $(umask) $FOO $IFACE" >> "$LOG"\n'


def _script(directory: Path, name: str, body: str, *, executable: bool = True) -> None:
    path = directory / name
    path.write_text(body)
    path.chmod(0o755 if executable else 0o644)


def _tree(directory: Path) -> None:
    """Every kind of entry run-parts treats differently, in an order that tests its sort."""
    _script(directory, "10-first", LOGGER)
    _script(directory, "20-fails", LOGGER + "exit 3\n")
    _script(directory, "30-after", LOGGER)
    _script(directory, "40.sh", LOGGER)  # a dot: skipped
    _script(directory, "45-plain", LOGGER, executable=False)  # not executable: skipped
    (directory / "50-directory").mkdir()  # not a file: skipped
    (directory / "55-link").symlink_to("30-after")  # followed
    _script(directory, "60-killed", LOGGER + "kill -9 $$\n")
    _script(directory, "65-noshebang", "echo no interpreter\n")  # exec fails
    _script(directory, "A-upper", LOGGER)  # byte order: before `_` and lower case
    _script(directory, "_under", LOGGER)
    _script(directory, "a-lower", LOGGER)
    _script(directory, "-dash", LOGGER)
    (directory / "z-dangling").symlink_to("missing")  # cannot be stat()ed
    _script(directory, "zz-last", LOGGER)


def _real(
    directory: str, env: dict[str, str], exit_on_error: bool, verbose: bool
) -> tuple[int, str]:
    argv = [str(RUN_PARTS)]
    argv += ["--exit-on-error"] if exit_on_error else []
    argv += ["--verbose"] if verbose else []
    done = subprocess.run(
        [*argv, directory], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    return done.returncode, done.stderr


def _native(
    directory: str, env: dict[str, str], exit_on_error: bool, verbose: bool, err: Path
) -> tuple[int, str]:
    op = RunParts(
        directory=directory,
        env=tuple(env.items()),
        exit_on_error=exit_on_error,
        verbose=verbose,
    )
    fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)

    async def run() -> int:
        async with Kernel() as kernel:  # no netlink socket is ever opened for RunParts
            try:
                await NetlinkExecutor(kernel, stderr=fd).apply(op)
            except OpError as exc:
                assert exc.reason == "exit status 1"
                return 1
            return 0

    try:
        code = asyncio.run(run())
    finally:
        os.close(fd)
    return code, err.read_text()


@pytest.mark.parametrize("exit_on_error", [False, True])
@pytest.mark.parametrize("verbose", [False, True])
@pytest.mark.parametrize("trailing_slash", [False, True])
def test_native_run_parts_does_what_run_parts_does(
    tmp_path: Path, exit_on_error: bool, verbose: bool, trailing_slash: bool
) -> None:
    hooks = tmp_path / "if-up.d"
    hooks.mkdir()
    _tree(hooks)
    directory = str(hooks) + ("/" if trailing_slash else "")
    old = os.umask(0o077)  # run-parts gives its scripts 022 whatever the caller's is
    try:
        results = {}
        for who in ("real", "native"):
            log = tmp_path / f"{who}.log"
            env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "FOO": "bar", "IFACE": "eth0"}
            env["LOG"] = str(log)
            if who == "real":
                code, err = _real(directory, env, exit_on_error, verbose)
            else:
                code, err = _native(directory, env, exit_on_error, verbose, tmp_path / "err")
            text = log.read_text() if log.exists() else ""
            results[who] = (code, err, text.replace(str(log), "LOG"))
    finally:
        os.umask(old)
    assert results["native"] == results["real"]
    code, err, text = results["real"]
    assert code == 1  # the tree has failing scripts, so this is not a vacuous comparison
    assert text.startswith("-dash 0 0022 bar eth0\n10-first 0 0022 bar eth0\n")


@pytest.mark.parametrize("exit_on_error", [False, True])
def test_an_empty_or_missing_directory_is_as_run_parts_says(
    tmp_path: Path, exit_on_error: bool
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for directory in (str(empty), str(tmp_path / "missing"), str(tmp_path / "file")):
        (tmp_path / "file").write_text("")
        env = {"PATH": "/usr/bin:/bin"}
        real = _real(directory, env, exit_on_error, True)
        native = _native(directory, env, exit_on_error, True, tmp_path / "err")
        assert native == real


def test_scripts_lists_in_byte_order_and_reports_what_cannot_be_stat(tmp_path: Path) -> None:
    _tree(tmp_path)
    entries = scripts(str(tmp_path))
    names = [os.path.basename(e.path) for e in entries]
    assert names == [
        "-dash", "10-first", "20-fails", "30-after", "55-link", "60-killed", "65-noshebang",
        "A-upper", "_under", "a-lower", "z-dangling", "zz-last",
    ]  # fmt: skip
    assert [e.error for e in entries if e.error] == ["No such file or directory"]
