"""OpenSSL only in the processes that speak TLS.

asyncio imports `ssl` when it is first imported, and with it OpenSSL's libssl and
libcrypto (about 28 ms and 8 MB), though only an https health check ever uses them.
`defer()`, called by the command line before anything imports asyncio, imports asyncio
with `ssl` hidden, so asyncio starts without TLS support; `ssl_module()` imports ssl and
gives asyncio its TLS support back, the first time an https check connects (one in the
configuration at start or one a SIGHUP reload added). Any other `import ssl` in the
process works as usual: `ssl` is hidden only while asyncio is imported.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType


def defer() -> None:
    """Import asyncio without ssl, unless either is imported already (then nothing)."""
    if "asyncio" in sys.modules or "ssl" in sys.modules:
        return
    sys.modules["ssl"] = None  # type: ignore[assignment]  # `import ssl` → ImportError
    try:
        import asyncio  # noqa: F401, PLC0415
    finally:
        if "ssl" in sys.modules and sys.modules["ssl"] is None:
            del sys.modules["ssl"]


def ssl_module() -> ModuleType:
    """The ssl module, with asyncio able to open TLS connections (`ssl=` contexts)."""
    import ssl  # noqa: PLC0415 - OpenSSL only for TLS
    from asyncio import base_events, selector_events, sslproto  # noqa: PLC0415

    if getattr(sslproto, "ssl", ssl) is None:  # asyncio was imported by defer()
        for module in (base_events, selector_events):
            if getattr(module, "ssl", ssl) is None:
                module.ssl = ssl  # type: ignore[attr-defined]
        importlib.reload(sslproto)  # its module-level names (SSLAgainErrors) need ssl
    return ssl


def ssl_error(exc: BaseException) -> bool:
    """Whether `exc` is an ssl.SSLError (without importing ssl: none can be one before)."""
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(exc, ssl.SSLError)
