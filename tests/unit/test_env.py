"""The hook environment, against the real-run dump of ifupdown 0.8.41 (specs/ifupdown.md §4)."""

from __future__ import annotations

from ifvip.hookenv import HOOK_PATH
from ifvip.ifupdown.env import hook_env, mangle, vlan_parent
from ifvip.interfaces.options import effective_options


def test_name_mangling() -> None:
    assert mangle("bridge_ports") == "IF_BRIDGE_PORTS"
    assert mangle("dns-nameservers") == "IF_DNS_NAMESERVERS"
    assert mangle("dns.search") == "IF_DNSSEARCH"
    assert mangle("Wpa-SSID") == "IF_WPA_SSID"
    assert mangle("a+b%c/d") == "IF_ABCD"


def test_real_run_dump_of_an_inet_static_stanza() -> None:
    # `ifup -a -v` of specs §4's stanza, PHASE=pre-up; PWD is set by sh itself.
    written = [
        ("address", "198.51.100.70/24"),
        ("gateway", "198.51.100.1"),
        ("bridge_ports", "none"),
        ("dns-nameservers", "198.51.100.53\n203.0.113.53"),
        ("dns.search", "example.org"),
        ("Wpa-SSID", "MixedCase"),
        ("pre-up", "echo pre-up"),
        ("up", "echo up"),
    ]
    options = effective_options(written, "inet", "static", "eth0")
    env = dict(
        hook_env(
            physical="eth0",
            logical="eth0",
            family="inet",
            method="static",
            options=options,
            mode="start",
            phase="pre-up",
            verbose=True,
            cls="auto",
            caller={"HOME": "/root", "FOO": "bar", "IFUPDOWN_br0": "post-up"},
        )
    )
    assert env == {
        "IFUPDOWN_br0": "post-up",
        "ADDRFAM": "inet",
        "CLASS": "auto",
        "IFACE": "eth0",
        "IFUPDOWN_eth0": "pre-up",
        "IF_ADDRESS": "198.51.100.70",
        "IF_BRIDGE_PORTS": "none",
        "IF_BROADCAST": "198.51.100.255",
        "IF_DNSSEARCH": "example.org",
        "IF_DNS_NAMESERVERS": "198.51.100.53\n203.0.113.53",
        "IF_GATEWAY": "198.51.100.1",
        "IF_NETMASK": "255.255.255.0",
        "IF_WPA_SSID": "MixedCase",
        "LOGICAL": "eth0",
        "METHOD": "static",
        "MODE": "start",
        "PATH": HOOK_PATH,
        "PHASE": "pre-up",
        "VERBOSITY": "1",
    }


def test_inet6_defaults_and_no_class_without_allow() -> None:
    options = effective_options([("address", "2001:db8::1/64")], "inet6", "static", "eth0")
    env = dict(
        hook_env(
            physical="eth0",
            logical="work",
            family="inet6",
            method="static",
            options=options,
            mode="stop",
            phase="post-down",
            verbose=False,
        )
    )
    assert "CLASS" not in env
    assert env["LOGICAL"] == "work"
    assert (env["MODE"], env["PHASE"], env["VERBOSITY"]) == ("stop", "post-down", "0")
    assert env["IF_ADDRESS"] == "2001:db8::1"
    assert env["IF_NETMASK"] == "64"
    assert env["IF_AUTOCONF"] == "0"
    assert env["IF_DAD_ATTEMPTS"] == "60"
    assert env["IF_DAD_INTERVAL"] == "0.1"
    assert env["IF_PREFERRED_LIFETIME"] == ""


def test_vlan_gets_the_parent_lock_variable() -> None:
    env = dict(
        hook_env(
            physical="eth0.100",
            logical="eth0.100",
            family="inet",
            method="manual",
            options=(),
            mode="start",
            phase="post-up",
            verbose=False,
        )
    )
    assert env["IFUPDOWN_eth0.100"] == "post-up"
    assert env["IFUPDOWN_eth0"] == "parent-lock"
    assert vlan_parent("eth0.100") == "eth0"
    assert vlan_parent("eth0") is None
    assert vlan_parent(".5") is None
