"""ifvip's VRRP codec on live adverts of the real keepalived 2.2.7, in a namespace lab."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.keepalived_lab import Instance, KeepalivedLab, until
from tests.programs import INTEROP, NEEDS_KEEPALIVED

pytestmark = [*INTEROP, NEEDS_KEEPALIVED]

# Receives protocol 112 on eth0 for `seconds`, decodes with the configured version and family
# (never guessed), checks TTL/hop limit, prints one line per advert.
LISTENER = """
import ipaddress, select, socket, sys, time
from ifvip.daemon.transport import Channel
from ifvip.wire.vrrp import decode
version, family, src, seconds = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
index = socket.if_nametoindex("eth0")
channel = Channel("eth0", index, socket.AF_INET if family == 4 else socket.AF_INET6, source=src)
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    if not select.select([channel], [], [], 0.1)[0]:
        continue
    packet = channel.receive()
    if packet is None:
        continue
    advert = decode(packet.payload, version=version, family=family, src=packet.src, dst=packet.dst)
    print(packet.src, packet.ttl, advert.describe(), advert.encode(packet.src, packet.dst).hex()
          if version == 3 else advert.encode().hex(), packet.payload.hex(), flush=True)
"""


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[KeepalivedLab]:
    with KeepalivedLab(["h1", "h2"], tmp_path) as built:
        yield built


@pytest.mark.parametrize(
    "inst",
    [
        Instance(version=3, family=4),
        Instance(version=3, family=4, advert_int=0.1),
        Instance(version=2, family=4, auth_pass="secret12"),
        Instance(version=3, family=6),
    ],
    ids=["v3-ipv4", "v3-ipv4-100ms", "v2-pass", "v3-ipv6"],
)
def test_live_keepalived_adverts_decode_and_re_encode_byte_for_byte(
    lab: KeepalivedLab, inst: Instance
) -> None:
    ka = lab.keepalived("h1", inst, priority=255, state="MASTER")
    until(lambda: "Entering MASTER STATE" in ka.log, 10, "keepalived MASTER")
    src = lab.address("h2") if inst.family == 4 else lab.link_local("h2")
    code = f"import sys; sys.argv = ['x', '{inst.version}', '{inst.family}', '{src}', '2.5']\n"
    out = lab.run_python("h2", code + LISTENER, timeout=20)
    lines = out.splitlines()
    assert len(lines) >= (10 if inst.advert_int < 1 else 2), out
    want_src = lab.address("h1") if inst.family == 4 else lab.link_local("h1")
    for line in lines:
        src_seen, ttl, *_desc, encoded, raw = line.split()
        assert src_seen == want_src and ttl == "255"
        assert encoded == raw
        assert f"VRRPv{inst.version} vrid 51 prio 255" in line
    if inst.version == 3:
        assert f"max_adver_int {round(inst.advert_int * 100)}cs" in lines[0]
    assert "secret12" not in out
    assert ka.state() == "MASTER"
