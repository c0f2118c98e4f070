"""ifvip: keep a virtual IP on one host of a group, configured the way ifupdown would."""

__version__ = "0.1.0"
