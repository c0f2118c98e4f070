"""What CARP and VRRP share on the wire: IP protocol 112 and its multicast groups."""

from __future__ import annotations

import ipaddress
from typing import Final

IPPROTO_VRRP: Final = 112  # IANA's number for VRRP, which CARP (and ucarp) reuse
GROUP_V4: Final = ipaddress.IPv4Address("224.0.0.18")  # both protocols' IPv4 group
GROUP_V6: Final = ipaddress.IPv6Address("ff02::12")  # VRRPv3's IPv6 group (RFC 5798 §5.1.2.2)
