"""`ifvip ifup` where /proc/sys is read-only, as Docker mounts it without --privileged.

The seed's production DMZ file writes accept_dad 0 in a pre-up hook before its IPv6
address goes on. Under a read-only /proc/sys that write cannot happen: ifvip adds that
interface's IPv6 addresses with nodad instead (one warning naming the line), and the rest
of the state is real ifupdown's (run with /proc/sys writable, in a twin namespace). Any
other sysctl write fails the interface before anything of it is applied.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.netns.kernelstate import IFVIP, Runner, Twins, snapshot, with_readonly_proc

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]

DMZ = Path(__file__).resolve().parents[3] / "shared" / "examples" / "production-dmz.interfaces"
READ_ONLY = 'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec "$@"'


def _readonly_ifup(runner: Runner, *args: str) -> tuple[int, str]:
    argv = ["unshare", "--mount", "sh", "-c", READ_ONLY, "sh", *IFVIP, "ifup"]
    done = runner.run([*argv, "-i", str(runner.path), f"--state-dir={runner.state_dir}", *args])
    return done.returncode, done.stderr


def test_the_dmz_file_comes_up_with_nodad_under_a_read_only_proc_sys(tmp_path: Path) -> None:
    if not DMZ.exists():
        pytest.skip("shared examples not beside the checkout")
    with Twins(2) as twins:
        real = Runner(twins.names[0], DMZ, tmp_path / "real")
        mine = Runner(twins.names[1], DMZ, tmp_path / "ifvip")
        before = snapshot(mine.ns)
        assert real.real("ifup", "eth1").returncode == 0
        code, said = _readonly_ifup(mine, "eth1")
        assert code == 0, said
        line = next(
            n for n, text in enumerate(DMZ.read_text().splitlines(), 1) if "accept_dad" in text
        )
        (warning,) = [w for w in said.splitlines() if "read-only" in w]
        assert warning.startswith(f"ifup: {DMZ}:{line}: ") and "nodad" in warning
        expected = with_readonly_proc(snapshot(real.ns), before, "eth1")
        diff = snapshot(mine.ns).diff(expected)
        assert not diff, diff


def test_any_other_sysctl_hook_fails_the_interface_before_anything(tmp_path: Path) -> None:
    path = tmp_path / "interfaces"
    path.write_text(
        "iface eth1 inet static\n"
        "  address 198.51.100.9/24\n"
        "  pre-up echo 1 > /proc/sys/net/ipv4/conf/$IFACE/forwarding\n"
    )
    with Twins(1) as twins:
        mine = Runner(twins.names[0], path, tmp_path / "ifvip")
        before = snapshot(mine.ns)
        code, said = _readonly_ifup(mine, "eth1")
        assert code == 1
        assert f"ifup: {path}:3: " in said and "/proc/sys is read-only" in said, said
        assert "failed to bring up eth1" in said
        diff = snapshot(mine.ns).diff(before)
        assert not diff, diff
