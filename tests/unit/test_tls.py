"""ifvip/tls.py: asyncio starts without ssl, and gets TLS back when a check needs it."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import sys
from ifvip import tls
tls.defer()
import asyncio, socket
print("ssl" in sys.modules, "_ssl" in sys.modules, "libssl" in open("/proc/self/maps").read())

async def main():
    async def garbage(reader, writer):
        writer.write(b"HTTP/1.0 200 OK\\r\\n\\r\\n" * 100)
        await writer.drain()
        writer.close()
    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        ssl = tls.ssl_module()
        context = ssl.create_default_context()
        try:
            await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, ssl=context), 10)
        except Exception as exc:
            print(type(exc).__name__, tls.ssl_error(exc))
    finally:
        server.close()

asyncio.run(main())
"""


def test_asyncio_without_ssl_until_tls_is_needed() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "False False False", done.stderr
    # A TLS handshake with a server that speaks plain HTTP: ssl's own error, not asyncio's
    # "ssl module not available".
    assert lines[1] == "SSLError True", done.stderr


def test_defer_leaves_ssl_importable() -> None:
    code = "from ifvip import tls; tls.defer(); import ssl; print(ssl.OPENSSL_VERSION != '')"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == "True\n"
