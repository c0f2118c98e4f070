"""pyroute2's rtnetlink socket and message classes, loaded without the rest of pyroute2.

`import pyroute2` runs the package's `__init__`, which imports every part of the library
(ndb, ipdb, conntrack, nftables, the tc plugins, `unittest.mock` for its mock socket...):
about 0.1 s and 11 MB before the first request. ifvip needs a small part of it: the async
netlink socket (`pyroute2.netlink.nlsocket`), the marshal that parses the kernel's answers
(`pyroute2.netlink.marshal`) and the `ifinfmsg`, `ifaddrmsg`, `rtmsg` and `fibmsg` classes
that encode requests and decode answers. This module registers the `pyroute2` package
without running its `__init__` (the package's `__init__` runs after all, once, the first
time anything asks the package for a name it does not have: `from pyroute2 import
IPRoute` keeps working in the same process) and imports only those modules.

pyroute2 stays the netlink library: every message is encoded and decoded by its classes.
The module paths used here are pyroute2 0.9's (pinned in pyproject.toml);
tests/netns/test_rtnl.py runs the same operations through this socket and through
`AsyncIPRoute` and compares the results, and tests/unit/test_startup_imports.py checks
which pyroute2 modules are loaded.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any, Final


def _register_package() -> None:
    """Make `pyroute2.x.y` importable without running `pyroute2/__init__.py`."""
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.loader is None:
        raise ImportError("pyroute2 is not installed")
    loader = spec.loader
    package = importlib.util.module_from_spec(spec)

    def whole_package(name: str) -> Any:
        if name.startswith("__") and name not in ("__all__", "__version__"):
            raise AttributeError(name)
        # `from pyroute2 import netns` (pyroute2's own modules do that): the submodule.
        if importlib.util.find_spec(f"pyroute2.{name}") is not None:
            return importlib.import_module(f"pyroute2.{name}")
        # A name only the package's __init__ defines (IPRoute, NDB...): run it, once.
        del package.__getattr__
        loader.exec_module(package)
        return getattr(package, name)

    package.__getattr__ = whole_package  # type: ignore[method-assign]
    sys.modules["pyroute2"] = package


_register_package()

# These imports need the package registered above.
from pyroute2.netlink import (  # noqa: E402
    NETLINK_ROUTE,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_EXCL,
    NLM_F_REPLACE,
    NLM_F_REQUEST,
)
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402
from pyroute2.netlink.marshal import Marshal  # noqa: E402
from pyroute2.netlink.nlsocket import AsyncNetlinkSocket  # noqa: E402
from pyroute2.netlink.rtnl import (  # noqa: E402
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_DELROUTE,
    RTM_DELRULE,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_GETROUTE,
    RTM_GETRULE,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
    RTM_NEWRULE,
    RTM_VALUES,
)
from pyroute2.netlink.rtnl.fibmsg import fibmsg  # noqa: E402
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg  # noqa: E402
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP, ifinfmsg  # noqa: E402
from pyroute2.netlink.rtnl.rtmsg import rtmsg  # noqa: E402

__all__ = [
    "IFF_UP",
    "NLM_F_ACK",
    "NLM_F_CREATE",
    "NLM_F_DUMP",
    "NLM_F_EXCL",
    "NLM_F_REPLACE",
    "NLM_F_REQUEST",
    "RTM_DELADDR",
    "RTM_DELLINK",
    "RTM_DELROUTE",
    "RTM_DELRULE",
    "RTM_GETADDR",
    "RTM_GETLINK",
    "RTM_GETROUTE",
    "RTM_GETRULE",
    "RTM_NEWADDR",
    "RTM_NEWLINK",
    "RTM_NEWROUTE",
    "RTM_NEWRULE",
    "NetlinkError",
    "RtnlSocket",
    "fibmsg",
    "ifaddrmsg",
    "ifinfmsg",
    "rtmsg",
]

# What ifvip sends and reads: links, addresses, routes and rules (pyroute2's MarshalRtnl
# maps the same types to the same classes, and also tc, neighbour and nsid messages).
MESSAGES: Final[dict[int, Any]] = {
    RTM_NEWLINK: ifinfmsg,
    RTM_DELLINK: ifinfmsg,
    RTM_GETLINK: ifinfmsg,
    RTM_NEWADDR: ifaddrmsg,
    RTM_DELADDR: ifaddrmsg,
    RTM_GETADDR: ifaddrmsg,
    RTM_NEWROUTE: rtmsg,
    RTM_DELROUTE: rtmsg,
    RTM_GETROUTE: rtmsg,
    RTM_NEWRULE: fibmsg,
    RTM_DELRULE: fibmsg,
    RTM_GETRULE: fibmsg,
}


class RtnlMarshal(Marshal):  # type: ignore[misc]  # pyroute2 is untyped
    """pyroute2's Marshal for the link, address, route and rule messages; each parsed
    message gets its `event` name (RTM_NEWLINK...) as MarshalRtnl gives it."""

    msg_map = MESSAGES

    def fix_message(self, msg: Any) -> None:
        event = RTM_VALUES.get(msg["header"]["type"])
        if event is not None:
            msg["event"] = event


class RtnlSocket(AsyncNetlinkSocket):  # type: ignore[misc]  # pyroute2 is untyped
    """An asyncio rtnetlink socket (pyroute2's AsyncNetlinkSocket with RtnlMarshal), in
    `netns` when given: `nlm_request()`, `get()`, `bind(groups=...)`, `close()`."""

    marshal_class = RtnlMarshal

    def __init__(self, netns: str | None = None, **kwargs: Any) -> None:
        super().__init__(family=NETLINK_ROUTE, netns=netns, **kwargs)

    async def request(self, msg: Any, msg_type: int, flags: int) -> list[Any]:
        """Send `msg` as `msg_type` with `flags` and collect the answers (a dump's
        messages, a get's one); a kernel error is raised as pyroute2's NetlinkError."""
        return [answer async for answer in await self.nlm_request(msg, msg_type, flags)]
