"""Kernel equivalence with Debian's ifupdown, exact ifdown, rollback and strict input.

Two namespaces built alike (tests/netns/kernelstate.py): the real `ifup` runs in one,
`ifvip ifup` in the other, on the same interfaces file, each with its own state directory
and an empty /etc/network/if-*.d. Their kernel snapshots (addresses with flags, labels,
broadcast and scope; routes of every table; rules; links; the interfaces' sysctls) must be
identical, and so must the ifstate files. `ifvip ifdown` must then leave the namespace
exactly as it was before `ifup`, which the real ifdown does not (test_real_ifdown_forgets).
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.netns.kernelstate import Runner, Twins, snapshot
from tests.programs import AS_ROOT

SHARED = Path(__file__).resolve().parents[3] / "shared"
DMZ = SHARED / "examples" / "production-dmz.interfaces"
PROBES = SHARED / "corpus" / "ifupdown" / "ifvip-probes"

pytestmark = [
    pytest.mark.root,
    pytest.mark.interop,
    AS_ROOT,
    pytest.mark.skipif(shutil.which("ifup") is None, reason="Debian's ifupdown is not installed"),
]


def _devices(targets: Sequence[str]) -> tuple[str, ...]:
    names = []
    for target in targets:
        base = target.split("=", 1)[0].split(":", 1)[0]
        if base not in names and base != "lo":
            names.append(base)
    return tuple(names)


def equivalent(
    text: str, targets: Sequence[str], work: Path, scripts: dict[str, tuple[str, int]] | None = None
) -> None:
    """Real ifup and ifvip ifup leave the same kernel; ifvip ifdown restores the start.

    `scripts` go into both namespaces' /etc/network (`if-up.d/NAME`: (text, mode))."""
    path = work / "interfaces"
    path.write_text(text)
    devices = _devices(targets) or ("eth0",)
    with Twins(2, devices=devices) as twins:
        real_ns, ifvip_ns = twins.names
        for ns in twins.names:
            for name, (body, mode) in (scripts or {}).items():
                script = Path("/etc/netns") / ns / "network" / name
                script.write_text(body)
                script.chmod(mode)
        real = Runner(real_ns, path, work / "state-real")
        mine = Runner(ifvip_ns, path, work / "state-ifvip")
        before = snapshot(ifvip_ns, ifnames=devices)
        assert snapshot(real_ns, ifnames=devices).diff(before) == ""

        done_real = real.real("ifup", *targets)
        done_mine = mine.ifvip("ifup", *targets)
        assert done_real.returncode == 0, done_real.stderr
        assert done_mine.returncode == 0, done_mine.stderr
        after_real = snapshot(real_ns, ifnames=devices)
        after_mine = snapshot(ifvip_ns, ifnames=devices)
        differ = after_real.diff(after_mine)
        assert differ == "", f"real ifup (-) and ifvip ifup (+) differ:\n{differ}"
        assert after_mine.diff(before) != "" or not text.strip()
        for name in ("ifstate", *(f"ifstate.{d}" for d in devices)):
            real_file, mine_file = work / "state-real" / name, work / "state-ifvip" / name
            assert real_file.exists() == mine_file.exists(), name
            if real_file.exists():
                assert real_file.read_text() == mine_file.read_text(), name

        done_down = mine.ifvip("ifdown", *targets)
        assert done_down.returncode == 0, done_down.stderr
        assert "not found" not in done_down.stderr
        left = snapshot(ifvip_ns, ifnames=devices).diff(before)
        assert left == "", f"ifvip ifdown left (+) / took (-):\n{left}"


# ---------------------------------------------------------------- fixed files


def test_production_dmz(tmp_path: Path) -> None:
    if not DMZ.exists():
        pytest.skip(f"{DMZ} is not beside the checkout")
    equivalent(DMZ.read_text(), ["eth0", "eth1"], tmp_path)


def test_if_d_scripts_between_many_stanzas(tmp_path: Path) -> None:
    """ifvip runs the if-*.d directories itself, choosing scripts as run-parts does, and
    reads a link again after any script ran: here a script takes eth0 down after the
    second stanza, the third stanza's `ip link set up` must bring it back as ifupdown's
    does; scripts with a dot or without the x bit are skipped by both."""
    stanzas = ["auto eth0"]
    for n in range(10, 14):
        stanzas.append(f"iface eth0 inet static\n    address 198.51.100.{n}/24")
    stanzas[1] += "\n    gateway 198.51.100.1"
    for n in range(1, 4):
        stanzas.append(
            f"iface eth0 inet6 static\n    address 2001:db8:5::{n}/64\n    dad-attempts 0"
        )
    when = '[ "$ADDRFAM $IF_ADDRESS" = "inet {address}" ] || exit 0\n'
    scripts = {
        "if-up.d/20-bounce": (
            "#!/bin/sh\n" + when.format(address="198.51.100.11") + 'ip link set "$IFACE" down\n',
            0o755,
        ),
        "if-up.d/30-route": (
            "#!/bin/sh\n" + when.format(address="198.51.100.12")
            + 'ip route add 203.0.113.99/32 dev "$IFACE" table 7\n',
            0o755,
        ),
        "if-down.d/30-route": (
            "#!/bin/sh\n" + when.format(address="198.51.100.12")
            + 'ip route del 203.0.113.99/32 dev "$IFACE" table 7\n',
            0o755,
        ),
        "if-up.d/40.dotted": ('#!/bin/sh\nip link set dev "$IFACE" mtu 1280\n', 0o755),
        "if-up.d/50-not-executable": ('#!/bin/sh\nip link set dev "$IFACE" mtu 1280\n', 0o644),
        "if-pre-up.d/10-true": ("#!/bin/sh\nexit 0\n", 0o755),
    }  # fmt: skip
    equivalent("\n\n".join(stanzas) + "\n", ["eth0"], tmp_path, scripts)


# Corpus probes whose stanzas use methods and addresses a namespace can take. Targets not
# listed are left out for the reason given.
PROBE_TARGETS: dict[str, list[str]] = {
    # eth3 (10.0.0.33) is not a documentation address; eth4's peer works the same.
    "p03-inet-static-variants": ["eth0", "eth1", "eth2", "eth4", "eth5", "eth6:1"],
    # eth1: the real ifup itself fails there ("Nexthop has invalid gateway or device
    # mismatch" on its default route), which test_real_failure_is_also_ifvips covers.
    "p04-inet6-static-variants": ["eth0", "eth2", "eth3", "eth0:1"],
    "p06-hooks-env": ["eth0"],
    "p12c-lo-static": ["lo"],
}
# Left out: p01 (`address 198.51.100.10/24 # not a comment...`: ifvip check rejects the
# address, so ifvip refuses the file), p08 (ifvip check wants an address in the
# `iface common` template stanzas: refused), p09 (eth0's inet6 stanza has no address:
# refused, see test_missing_variable_leaves_no_debris), p02 (repeated options, which
# ifvip check reports as errors: refused), p05
# (ppp, bootp and other methods a namespace cannot run), p07 (renames the test links),
# p11 (802.1Q VLANs, not available on this kernel), the p10 error probes (bad input,
# test_reader_error_applies_nothing), p14 (sources files outside the probe's namespace
# names).


@pytest.mark.parametrize("probe", sorted(PROBE_TARGETS))
def test_corpus_probe(probe: str, tmp_path: Path) -> None:
    path = PROBES / probe
    if not path.exists():
        pytest.skip(f"{path} is not beside the checkout")
    text = path.read_text()
    # eth6:1 needs eth6; ifup of an alias alone is what ifupdown allows.
    equivalent(text, PROBE_TARGETS[probe], tmp_path)


def test_real_ifdown_forgets_what_ifvip_undoes(tmp_path: Path) -> None:
    """Hooks without a matching down line and changed sysctls stay behind with Debian's
    ifdown; ifvip's journal undoes them."""
    text = (
        "iface eth0 inet static\n"
        "    address 198.51.100.10/24\n"
        "    up ip addr add 203.0.113.10/24 dev $IFACE\n"
        "    up ip route add 203.0.113.128/25 via 198.51.100.1 table 100\n"
        "    up echo 1 > /proc/sys/net/ipv4/conf/$IFACE/arp_ignore\n"
        "    mtu 1400\n"
    )
    path = tmp_path / "interfaces"
    path.write_text(text)
    with Twins(2) as twins:
        real = Runner(twins.names[0], path, tmp_path / "real")
        mine = Runner(twins.names[1], path, tmp_path / "ifvip")
        before = snapshot(twins.names[0])
        assert real.real("ifup", "eth0").returncode == 0
        assert mine.ifvip("ifup", "eth0").returncode == 0
        assert snapshot(twins.names[0]).diff(snapshot(twins.names[1])) == ""
        assert real.real("ifdown", "eth0").returncode == 0
        assert mine.ifvip("ifdown", "eth0").returncode == 0
        real_left = before.diff(snapshot(twins.names[0])).splitlines()
        # Debian: the link is down and its addresses are gone (and the route with them),
        # but the MTU and the sysctl stay as ifup left them.
        assert "~ sysctl net/ipv4/conf/eth0/arp_ignore: 0 -> 1" in real_left
        assert "+ links ('eth0', 4098, 1400, '02:00:5e:10:00:01', None, 1000)" in real_left
        assert snapshot(twins.names[1]).diff(before) == ""


# ---------------------------------------------------------------- generated stanza sets

_V4 = ipaddress.IPv4Network("198.51.100.0/24")


@st.composite
def stanza_sets(draw: st.DrawFn) -> tuple[str, list[str]]:
    hosts = draw(st.lists(st.integers(2, 120), min_size=4, max_size=4, unique=True))
    lines: list[str] = []
    prefix = draw(st.sampled_from([24, 25]))
    lines += ["iface eth0 inet static", f"    address 198.51.100.{hosts[0]}/{prefix}"]
    if draw(st.booleans()):
        lines.append("    gateway 198.51.100.1")
        if draw(st.booleans()):
            lines.append("    metric 5")
    if draw(st.booleans()):
        lines.append(f"    mtu {draw(st.sampled_from([1280, 1400, 9000]))}")
    if draw(st.booleans()):
        lines.append(f"    up ip addr add 203.0.113.{hosts[1]}/24 dev $IFACE")
    if draw(st.booleans()):
        table = draw(st.sampled_from(["", " table 100", " metric 7"]))
        lines.append(f"    up ip route add 203.0.113.128/26 via 198.51.100.1{table}")
    if draw(st.booleans()):
        lines.append("    up route add -net 203.0.113.192/26 gw 198.51.100.1")
    if draw(st.booleans()):
        lines.append(f"    up ip rule add from 203.0.113.{hosts[2]} lookup 100 priority 1000")
    if draw(st.booleans()):
        lines.append(f"    hwaddress 02:00:5e:10:01:{hosts[1]:02x}")
    if draw(st.booleans()):
        lines.append("    up sysctl -w net.ipv4.conf.$IFACE.arp_ignore=1")
    targets = ["eth0"]
    if draw(st.booleans()):
        lines += ["", "iface eth0:1 inet static", f"    address 198.51.100.{hosts[3]}/24"]
        targets.append("eth0:1")
    if draw(st.booleans()):
        lines += ["", "iface eth0 inet6 static", "    address 2001:db8:1::10/64"]
        if draw(st.booleans()):
            lines.append("    pre-up echo 0 > /proc/sys/net/ipv6/conf/$IFACE/accept_dad")
        else:
            lines.append("    dad-attempts 0")
        if draw(st.booleans()):
            lines.append("    gateway 2001:db8:1::1")
        if draw(st.booleans()):
            lines.append("    accept_ra 0")
        if draw(st.booleans()):
            lines.append("    up ip -6 addr add 2001:db8:2::20/64 dev $IFACE nodad")
        if draw(st.booleans()):
            lines.append("    up ip -6 route add 2001:db8:f::/48 via 2001:db8:1::1 dev $IFACE")
    if draw(st.booleans()):
        lines += ["", "iface eth1 inet6 static", "    address 2001:db8:9::1/64"]
        lines.append("    dad-attempts 0")
        # Not below the link's 1500: ifupdown's inet6 `mtu` then writes
        # net.ipv6.conf.IFACE.mtu, which the kernel sets back to the link's MTU when the
        # carrier comes up (addrconf NETDEV_CHANGE); on a veth that can be just after the
        # write, so real ifupdown itself ends with either value on a loaded machine.
        lines.append("    mtu 1500")
        targets.append("eth1")
    return "\n".join(lines) + "\n", targets


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(stanza_sets())
def test_generated_stanza_sets(case: tuple[str, list[str]]) -> None:
    text, targets = case
    with tempfile.TemporaryDirectory(prefix="ifvip-eq-") as work:
        equivalent(text, targets, Path(work))


# ---------------------------------------------------------------- rollback

HOOKS = [
    "pre-up echo 0 > /proc/sys/net/ipv6/conf/$IFACE/accept_dad",
    "up ip addr add 203.0.113.10/24 dev $IFACE",
    "up ip route add 203.0.113.128/25 via 198.51.100.1 table 100",
    "up ip -6 addr add 2001:db8:2::20/64 dev $IFACE nodad",
    "up echo a shell line",
    "up route add -net 203.0.113.192/26 gw 198.51.100.1",
]


FAILURES = {
    "native": ("ip route del 203.0.113.99/32 dev $IFACE", r"No such process"),
    "shell": ("false", r"exit status 1"),
}


def _rollback_file(failing: int | None, kind: str = "native") -> tuple[str, int]:
    """A dual-stack eth0 whose `failing`-th hook fails; returns the text and that line."""
    hooks = list(HOOKS)
    if failing is not None:
        keyword = hooks[failing].split()[0]
        hooks[failing] = f"{keyword} {FAILURES[kind][0]}"
    inet = ["iface eth0 inet static", "    address 198.51.100.10/24", "    mtu 1400"]
    inet6 = ["iface eth0 inet6 static", "    address 2001:db8:1::10/64", "    dad-attempts 0"]
    inet += [f"    {hook}" for hook in hooks[:3]]
    inet6 += [f"    {hook}" for hook in hooks[3:]]
    lines = [*inet, "", *inet6]
    line = 0
    if failing is not None:
        line = 1 + next(i for i, text in enumerate(lines) if FAILURES[kind][0] in text)
    return "\n".join(lines) + "\n", line


@pytest.mark.parametrize("kind", sorted(FAILURES))
@pytest.mark.parametrize("failing", range(len(HOOKS)), ids=lambda i: f"hook{i + 1}")
def test_failed_hook_leaves_nothing(failing: int, kind: str, tmp_path: Path) -> None:
    text, line = _rollback_file(failing, kind)
    path = tmp_path / "interfaces"
    path.write_text(text)
    with Twins(1) as twins:
        (ns,) = twins.names
        runner = Runner(ns, path, tmp_path / "state")
        before = snapshot(ns)
        done = runner.ifvip("ifup", "eth0")
        assert done.returncode == 1
        command = re.escape(FAILURES[kind][0]).replace(r"\$IFACE", r"\S+")
        assert re.search(
            rf"{re.escape(str(path))}:{line}: \S+ {command}: {FAILURES[kind][1]}", done.stderr
        ), done.stderr
        assert "failed to bring up eth0" in done.stderr
        assert snapshot(ns).diff(before) == ""
        assert (tmp_path / "state" / "ifstate").read_text() == ""
        assert (tmp_path / "state" / "ifstate.eth0").read_text() == ""
        assert not (tmp_path / "state" / "ifvip-journal.eth0.jsonl").exists()
        # Nothing is left that would make the next ifup fail (ifupdown's stale trap).
        path.write_text(_rollback_file(None)[0])
        again = runner.ifvip("ifup", "eth0")
        assert again.returncode == 0, again.stderr


# ---------------------------------------------------------------- strict input


@pytest.mark.parametrize(
    "error",
    [
        "iface eth1 inet bogus\n",  # unknown method
        "address 198.51.100.99\n",  # an option outside any stanza
        "iface eth1 inet\n",  # no method
    ],
)
def test_reader_error_applies_nothing(error: str, tmp_path: Path) -> None:
    good = (
        "iface eth0 inet static\n"
        "    address 198.51.100.10/24\n"
        "    up ip addr add 203.0.113.10/24 dev $IFACE\n"
    )
    path = tmp_path / "interfaces"
    path.write_text(error + good)
    with Twins(1) as twins:
        (ns,) = twins.names
        runner = Runner(ns, path, tmp_path / "state")
        before = snapshot(ns)
        done = runner.ifvip("ifup", "eth0")
        assert done.returncode == 1, done.stderr
        assert str(path) in done.stderr
        assert snapshot(ns).diff(before) == ""
        state = tmp_path / "state" / "ifstate"
        assert not state.exists() or state.read_text() == ""


def test_missing_variable_leaves_no_debris(tmp_path: Path) -> None:
    """A stanza missing its address: Debian's ifup fails after the first stanza applied
    (the stale-address trap of specs §7); ifvip refuses before applying anything."""
    path = PROBES / "p09-multiple-stanzas-failure"
    if not path.exists():
        pytest.skip(f"{path} is not beside the checkout")
    with Twins(2) as twins:
        real = Runner(twins.names[0], path, tmp_path / "real")
        mine = Runner(twins.names[1], path, tmp_path / "ifvip")
        before = snapshot(twins.names[1])
        done = real.real("ifup", "eth0")
        assert done.returncode == 1
        debris = before.diff(snapshot(twins.names[0]))
        assert "+ addresses ('eth0', 2, '198.51.100.110'" in debris
        done = mine.ifvip("ifup", "eth0")
        assert done.returncode == 1
        assert "inet6 static needs option 'address'" in done.stderr
        assert snapshot(twins.names[1]).diff(before) == ""


def test_ifdown_without_journal_is_ifupdowns(tmp_path: Path) -> None:
    """State left by Debian's ifup (no journal): ifvip ifdown runs ifupdown's own down
    commands and leaves what Debian's ifdown leaves."""
    if not DMZ.exists():
        pytest.skip(f"{DMZ} is not beside the checkout")
    with Twins(2) as twins:
        state = tmp_path / "state"
        real = Runner(twins.names[0], DMZ, tmp_path / "real")
        mine = Runner(twins.names[1], DMZ, state)
        assert real.real("ifup", "eth0", "eth1").returncode == 0
        assert mine.real("ifup", "eth0", "eth1").returncode == 0
        assert not list(state.glob("ifvip-journal.*"))
        assert real.real("ifdown", "eth0", "eth1").returncode == 0
        done = mine.ifvip("ifdown", "eth0", "eth1")
        assert done.returncode == 0, done.stderr
        assert snapshot(twins.names[0]).diff(snapshot(twins.names[1])) == ""
        assert (state / "ifstate").read_text() == ""


def test_replaced_default_route_comes_back(tmp_path: Path) -> None:
    """inet6's `ip -6 route replace default ...` overwrites a route that was there: ifvip's
    ifdown puts that one back, where Debian's deletes the default route altogether."""
    text = (
        "iface eth0 inet6 static\n"
        "    address 2001:db8:1::10/64\n"
        "    gateway 2001:db8:1::1\n"
        "    dad-attempts 0\n"
    )
    path = tmp_path / "interfaces"
    path.write_text(text)
    with Twins(2) as twins:
        for ns in twins.names:
            for command in (
                "link set dev eth0 up",
                "-6 route add default via 2001:db8:1::99 dev eth0 onlink",
            ):
                subprocess.run(["ip", "-n", ns, *command.split()], check=True, timeout=10)
        real = Runner(twins.names[0], path, tmp_path / "real")
        mine = Runner(twins.names[1], path, tmp_path / "ifvip")
        before = snapshot(twins.names[1])
        assert real.real("ifup", "eth0").returncode == 0
        done = mine.ifvip("ifup", "eth0")
        assert done.returncode == 0, done.stderr
        assert snapshot(twins.names[0]).diff(snapshot(twins.names[1])) == ""
        assert real.real("ifdown", "eth0").returncode == 0
        assert mine.ifvip("ifdown", "eth0").returncode == 0
        assert snapshot(twins.names[1]).diff(before) == ""
        gone = before.diff(snapshot(twins.names[0]))
        assert "- routes (10, 254, None, 0, None, 0, 1, 3, 0, 4, 0, '2001:db8:1::99'" in gone


def test_forced_ifup_over_a_configured_interface(tmp_path: Path) -> None:
    """`ifup --force` again: a failure leaves the earlier ifup's state and journal alone; a
    success adds to them, and ifdown then undoes both."""
    first = (
        "iface eth0 inet static\n    address 198.51.100.10/24\n    up ip addr add {} dev $IFACE\n"
    )
    path = tmp_path / "interfaces"
    path.write_text(first.format("203.0.113.10/24"))
    with Twins(1) as twins:
        (ns,) = twins.names
        runner = Runner(ns, path, tmp_path / "state")
        before = snapshot(ns)
        assert runner.ifvip("ifup", "eth0").returncode == 0
        up = snapshot(ns)
        journal = (tmp_path / "state" / "ifvip-journal.eth0.jsonl").read_text()
        again = runner.ifvip("ifup", "--force", "eth0")
        assert again.returncode == 1
        assert "File exists" in again.stderr or "already assigned" in again.stderr
        assert snapshot(ns).diff(up) == ""
        assert (tmp_path / "state" / "ifstate").read_text() == "eth0=eth0\n"
        assert (tmp_path / "state" / "ifvip-journal.eth0.jsonl").read_text() == journal

        path.write_text(first.format("203.0.113.20/24").replace(".10/24\n", ".11/24\n", 1))
        assert runner.ifvip("ifup", "--force", "eth0").returncode == 0
        both = before.diff(snapshot(ns))
        assert "203.0.113.10" in both and "203.0.113.20" in both
        done = runner.ifvip("ifdown", "eth0")
        assert done.returncode == 0, done.stderr
        assert snapshot(ns).diff(before) == ""
