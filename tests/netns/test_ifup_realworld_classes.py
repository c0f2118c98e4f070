"""What real-world files do that ifvip used to refuse, applied for real beside ifupdown.

One file per class of tests/conformance/test_realworld.py's corpus (end-of-line comments in
values, a stanza with placeholder values among good ones, a `ppp` stanza, a mapping to a
name no stanza defines): Debian's `ifup -a` runs in one namespace and `ifvip ifup -a` in its
twin (tests/netns/kernelstate.py), then each program's `ifdown -a`. After each step the
exit codes and the kernel snapshots must be identical, and so must the ifstate files.
Programs the methods call (pon, poff) are stubs bind-mounted on /usr/local/sbin in a
private mount namespace; they change the kernel visibly and log their arguments and
ifupdown's environment, which must be the same for both programs.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.netns.kernelstate import Runner, Twins, snapshot
from tests.programs import AS_ROOT

pytestmark = [
    pytest.mark.root,
    pytest.mark.interop,
    AS_ROOT,
    pytest.mark.skipif(shutil.which("ifup") is None, reason="Debian's ifupdown is not installed"),
]

DEVICES = ("eth0", "eth1", "eth2")


class StubRunner(Runner):
    """A Runner whose commands see `stubs` on /usr/local/sbin (a private mount namespace)."""

    stubs: Path | None = None

    def run(self, argv: Sequence[str], **env: str) -> subprocess.CompletedProcess[str]:
        if self.stubs is None:
            return super().run(argv, **env)
        wrapped = [
            "unshare", "-m", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /usr/local/sbin && exec "$@"', str(self.stubs), *argv,
        ]  # fmt: skip
        return super().run(wrapped, **env)


def _states(work: Path, which: str) -> dict[str, str]:
    """The ifstate files that say something. ifupdown also leaves an empty per-interface
    file (its lock) for an interface it failed or skipped, holding "" or "\n"; ifvip leaves
    none or an empty one: no reader tells them apart."""
    state = work / f"state-{which}"
    if not state.is_dir():
        return {}
    files = {p.name: p.read_text() for p in sorted(state.glob("ifstate*"))}
    return {name: text for name, text in files.items() if text.strip() or name == "ifstate"}


def _without(diff: str, devices: tuple[str, ...]) -> str:
    """A snapshot diff without the lines about `devices`."""
    return "\n".join(
        line
        for line in diff.splitlines()
        if not any(f"'{d}'" in line or f"/{d}/" in line for d in devices)
    )


def compare(
    text: str,
    work: Path,
    *,
    stubs: Path | None = None,
    up_code: int = 0,
    logs: Path | None = None,
    untouched: tuple[str, ...] = (),
) -> None:
    """ifup -a by both programs: same exit code, kernel and ifstate. Then ifdown -a by both:
    same exit code, and ifvip's exact ifdown leaves the namespace as it was before ifup
    (ifupdown's does not: it takes lo down, README "Exact ifdown").

    `untouched`: devices of stanzas ifvip refuses, where ifupdown runs the commands before
    the one the bad value breaks (README "Strict input, at the scope of the failure"):
    compared with the start instead, where ifvip must have applied nothing."""
    path = work / "interfaces"
    path.write_text(text)
    with Twins(2, devices=DEVICES) as twins:
        real_ns, ifvip_ns = twins.names
        real = StubRunner(real_ns, path, work / "state-real")
        mine = StubRunner(ifvip_ns, path, work / "state-ifvip")
        real.stubs = mine.stubs = stubs
        before = snapshot(ifvip_ns, ifnames=DEVICES)
        assert snapshot(real_ns, ifnames=DEVICES).diff(before) == ""
        done_real, done_mine = real.real("ifup", "-a"), mine.ifvip("ifup", "-a")
        assert done_real.returncode == up_code, done_real.stderr
        assert done_mine.returncode == up_code, done_mine.stderr
        after = snapshot(ifvip_ns, ifnames=DEVICES)
        differ = _without(snapshot(real_ns, ifnames=DEVICES).diff(after), untouched)
        assert differ == "", f"after ifup: real (-) and ifvip (+) differ:\n{differ}"
        kept = before.diff(after)
        assert _without(kept, untouched) == kept, f"ifvip applied some of {untouched}: {kept}"
        assert _states(work, "real") == _states(work, "ifvip")
        assert after.diff(before) != ""
        if logs is not None:  # what the stubs saw, each program in its namespace
            assert (logs / f"{real_ns}.log").read_text() == (logs / f"{ifvip_ns}.log").read_text()
        done_real, done_mine = real.real("ifdown", "-a"), mine.ifvip("ifdown", "-a")
        assert done_real.returncode == done_mine.returncode == 0, (done_real, done_mine)
        left = snapshot(ifvip_ns, ifnames=DEVICES).diff(before)
        assert left == "", f"ifvip ifdown left (+) / took (-):\n{left}"
        assert _states(work, "real") == _states(work, "ifvip")
        if logs is not None:
            assert (logs / f"{real_ns}.log").read_text() == (logs / f"{ifvip_ns}.log").read_text()


def test_end_of_line_comments_are_applied_as_ifupdown_applies_them(tmp_path: Path) -> None:
    compare(
        "auto eth0 eth1\n"
        "iface eth0 inet static\n"
        "    address 198.51.100.2/24 # office LAN\n"
        "    gateway 198.51.100.1 # router\n"
        "iface eth1 inet static\n"
        "    address 203.0.113.2\n"
        "    netmask 255.255.255.0 # mask\n",
        tmp_path,
        # eth1's command line is `ip addr add 203.0.113.2 # mask/...`: the shell runs it
        # without `dev`, which fails eth1 in ifupdown, and in ifvip alike
        up_code=1,
    )


def test_a_stanza_with_placeholders_fails_alone(tmp_path: Path) -> None:
    compare(
        "auto eth0 eth1\n"
        "iface eth0 inet static\n"
        "    address <Haupt-IP>\n"
        "    netmask 255.255.255.224\n"
        "    gateway <Gateway-IP>\n"
        "iface eth1 inet static\n"
        "    address 203.0.113.2/24\n"
        "    gateway 203.0.113.1\n"
        "auto eth2\n"
        "iface eth2 inet6 static\n"
        "    address :ip\n"
        "    netmask 64\n",
        tmp_path,
        up_code=1,
        untouched=("eth2",),  # ifupdown sets sysctls and the link up before `ip -6 addr add :ip`
    )


def test_ppp_runs_pon_and_poff_with_ifupdowns_environment(tmp_path: Path) -> None:
    stubs, logs = tmp_path / "stubs", tmp_path / "logs"
    stubs.mkdir()
    logs.mkdir()
    for program, action in (("pon", "add"), ("poff", "del")):
        script = stubs / program
        script.write_text(
            "#!/bin/sh\n"
            f'echo "{program} $* IFACE=$IFACE LOGICAL=$LOGICAL ADDRFAM=$ADDRFAM METHOD=$METHOD'
            ' MODE=$MODE PHASE=$PHASE IF_PROVIDER=$IF_PROVIDER VERBOSITY=$VERBOSITY"'
            f" >> {logs}/$(ip netns identify).log\n"
            f"ip addr {action} 198.51.100.9/32 dev eth1 label eth1:$1\n"
        )
        script.chmod(0o755)
    compare(
        "auto eth0 eth1\n"
        "iface eth0 inet static\n"
        "    address 203.0.113.2/24\n"
        "iface eth1 inet ppp\n"
        "    provider dsl\n",
        tmp_path,
        stubs=stubs,
        logs=logs,
    )
    (log,) = logs.glob("*-1.log")
    assert log.read_text().splitlines() == [
        "pon dsl IFACE=eth1 LOGICAL=eth1 ADDRFAM=inet METHOD=ppp MODE=start PHASE=post-up "
        "IF_PROVIDER=dsl VERBOSITY=0",
        "poff dsl IFACE=eth1 LOGICAL=eth1 ADDRFAM=inet METHOD=ppp MODE=stop PHASE=pre-down "
        "IF_PROVIDER=dsl VERBOSITY=0",
    ]


def test_a_mapping_to_an_unknown_name_is_ignored(tmp_path: Path) -> None:
    compare(
        "mapping eth0\n"
        "    script grep\n"
        "    map eth0 nosuch\n"
        "auto eth0 eth1\n"
        "iface eth1 inet static\n"
        "    address 203.0.113.2/24\n",
        tmp_path,
    )
