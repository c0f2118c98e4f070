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

from tests.netns.kernelstate import IFVIP, Runner, Snapshot, Twins, snapshot

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
]

DMZ = Path(__file__).resolve().parents[3] / "shared" / "examples" / "production-dmz.interfaces"
IFA_F_NODAD = 0x02
READ_ONLY = 'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec "$@"'


def _readonly_ifup(runner: Runner, *args: str) -> tuple[int, str]:
    argv = ["unshare", "--mount", "sh", "-c", READ_ONLY, "sh", *IFVIP, "ifup"]
    done = runner.run([*argv, "-i", str(runner.path), f"--state-dir={runner.state_dir}", *args])
    return done.returncode, done.stderr


def _as_nodad(reference: Snapshot, before: Snapshot) -> Snapshot:
    """Real ifupdown's state, with eth1's IPv6 addresses nodad and its sysctls untouched."""
    addresses = sorted(
        (
            (*row[:6], row[6] | IFA_F_NODAD, *row[7:])
            if row[0] == "eth1" and row[1] == 10 and not str(row[2]).startswith("fe80:")
            else row
            for row in reference.addresses
        ),
        key=repr,
    )
    sysctls = {
        key: before.sysctls.get(key, value) if "/eth1/" in key else value
        for key, value in reference.sysctls.items()
    }
    return Snapshot(reference.links, addresses, reference.routes, reference.rules, sysctls)


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
        expected = _as_nodad(snapshot(real.ns), before)
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
