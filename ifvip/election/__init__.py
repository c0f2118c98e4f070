"""The pure elections: events.py (what both share), carp.py (ucarp's CARP), vrrp.py
(keepalived's VRRP). Nothing here reads a clock, opens a socket or sleeps."""
