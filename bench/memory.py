"""Peak memory of reading a big interfaces file: `ifvip check` and `ifvip ifquery --list`.

    python bench/memory.py [--megabytes 48]

The file is generated (documentation addresses only): `iface eth0|eth1 inet static`
stanzas with an address, an `up` and a `down` route line and a comment, about 225 bytes
each, up to the size asked. Each command runs once in a fresh process (its reading cache
in a temporary directory); the table gives its wall time and peak RSS (ru_maxrss of the
child). No network is touched: both commands only read the file.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IFVIP = str(Path(sys.executable).with_name("ifvip"))


def big_file(megabytes: float) -> str:
    parts = ["auto eth0 eth1\n"]
    size, n = 0, 0
    while size < megabytes * 1_000_000:
        table = 100 + n % 50
        route = f"203.0.113.{(n // 240) % 250}/32 via 198.51.100.1 dev $IFACE table {table}"
        stanza = (
            f"iface eth{n % 2} inet static\n"
            f"    address 198.51.100.{10 + n % 240}/24\n"
            f"    up ip route add {route}\n"
            f"    down ip route del {route}\n"
            f"    # stanza {n}\n\n"
        )
        parts.append(stanza)
        size += len(stanza)
        n += 1
    return "".join(parts)


def _peak(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of one child run to its end."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):
        assert child.stderr is not None
        raise SystemExit(f"{argv[1]} failed: {child.stderr.read().decode()[-2000:]}")
    if child.stderr is not None:
        child.stderr.close()
    return elapsed, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=48)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ifvip-memory-") as tmp:
        path = Path(tmp) / "interfaces"
        path.write_text(big_file(args.megabytes))
        env = {**os.environ, "IFVIP_CACHE_DIR": str(Path(tmp) / "cache")}
        size = path.stat().st_size / 1e6
        print(f"{size:.1f} MB interfaces file")
        print(f"{'command':<24} {'wall s':>8} {'peak RSS MiB':>13}")
        for name, argv in (
            ("check", [IFVIP, "check", "-i", str(path)]),
            ("ifquery --list", [IFVIP, "ifquery", "-i", str(path), "--list"]),
            ("ifquery --list (again)", [IFVIP, "ifquery", "-i", str(path), "--list"]),
        ):
            elapsed, peak = _peak(argv, env)
            print(f"{name:<24} {elapsed:>8.1f} {peak / 1024:>13.0f}", flush=True)


if __name__ == "__main__":
    main()
