"""A userspace Ethernet hub with faults: netem's loss and delay, for kernels without netem.

Run inside a lab's switch namespace (`ip netns exec SW python -m tests.reliability.hub
--ports p1,p2,p3`): it takes the ports off the bridge and repeats every frame that arrives
on one port out of every other port, unless a fault says otherwise. Faults apply per
(frame, output port), like netem on each veth: a frame is lost with probability `loss`,
and delayed by `delay ± jitter` ms (uniform, so frames reorder, as `netem delay D J`).
`partition A B` drops everything between ports A and B (0-based) both ways; `heal` ends
partitions. Control lines on stdin, one answer line each on stdout:

    loss 0.2 | delay 50 50 | partition 0 1 | heal | stats | quit
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import selectors
import socket
import struct
import sys
import time
from typing import Final

from pyroute2 import IPRoute

ETH_P_ALL: Final = 0x0003
SOL_PACKET: Final = 263
PACKET_ADD_MEMBERSHIP: Final = 1
PACKET_MR_PROMISC: Final = 1
PACKET_OUTGOING: Final = 4


class Hub:
    def __init__(self, ports: list[str], seed: int) -> None:
        self.rng = random.Random(seed)
        self.loss = 0.0
        self.delay = 0.0
        self.jitter = 0.0
        self.cut: set[frozenset[int]] = set()
        self.pending: list[tuple[float, int, int, bytes]] = []
        self.seq = 0
        self.stats = {"in": 0, "out": 0, "lost": 0, "cut": 0}
        self.socks: list[socket.socket] = []
        with IPRoute() as ipr:
            for name in ports:
                index = ipr.link_lookup(ifname=name)[0]
                ipr.link("set", index=index, master=0)
                ipr.link("set", index=index, state="up")
                sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
                sock.bind((name, ETH_P_ALL))
                mreq = struct.pack("iHH8s", index, PACKET_MR_PROMISC, 0, b"")
                sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
                sock.setblocking(False)
                self.socks.append(sock)

    def received(self, port: int) -> None:
        sock = self.socks[port]
        while True:
            try:
                frame, address = sock.recvfrom(65535)
            except BlockingIOError:
                return
            if address[2] == PACKET_OUTGOING:
                continue  # our own repeat, seen on the way out
            self.stats["in"] += 1
            now = time.monotonic()
            for out in range(len(self.socks)):
                if out == port:
                    continue
                if frozenset((port, out)) in self.cut:
                    self.stats["cut"] += 1
                    continue
                if self.loss and self.rng.random() < self.loss:
                    self.stats["lost"] += 1
                    continue
                wait = self.delay + (
                    self.rng.uniform(-self.jitter, self.jitter) if self.jitter else 0
                )
                if wait <= 0:
                    self.send(out, frame)
                else:
                    self.seq += 1
                    heapq.heappush(self.pending, (now + wait, self.seq, out, frame))

    def send(self, port: int, frame: bytes) -> None:
        try:
            self.socks[port].send(frame)
            self.stats["out"] += 1
        except OSError:
            self.stats["lost"] += 1

    def due(self) -> None:
        now = time.monotonic()
        while self.pending and self.pending[0][0] <= now:
            _, _, port, frame = heapq.heappop(self.pending)
            self.send(port, frame)

    def command(self, line: str) -> str:
        words = line.split()
        if not words:
            return "ok"
        match words[0]:
            case "loss":
                self.loss = float(words[1])
            case "delay":
                self.delay = float(words[1]) / 1000
                self.jitter = float(words[2]) / 1000 if len(words) > 2 else 0.0
            case "partition":
                self.cut.add(frozenset((int(words[1]), int(words[2]))))
            case "heal":
                self.cut.clear()
            case "stats":
                return json.dumps(self.stats)
            case "quit":
                raise SystemExit(0)
            case _:
                return f"error unknown command {words[0]}"
        return "ok"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", required=True, help="comma-separated port names")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    hub = Hub(args.ports.split(","), args.seed)
    selector = selectors.DefaultSelector()
    for port, sock in enumerate(hub.socks):
        selector.register(sock, selectors.EVENT_READ, port)
    selector.register(sys.stdin, selectors.EVENT_READ, None)
    print("ready", flush=True)
    while True:
        timeout = max(0.0, hub.pending[0][0] - time.monotonic()) if hub.pending else None
        for key, _ in selector.select(timeout):
            if key.data is None:
                line = sys.stdin.readline()
                if not line:
                    return  # the controller went away
                print(hub.command(line), flush=True)
            else:
                hub.received(key.data)
        hub.due()


if __name__ == "__main__":
    main()
