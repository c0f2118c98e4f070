"""Prometheus metrics over the status snapshot: names, labels, agreement, /healthz, /readyz."""

from __future__ import annotations

import platform
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ifvip import __version__
from ifvip.daemon.metrics import answer, parse_metrics_address, render
from ifvip.daemon.settings import ConfigProblems
from ifvip.daemon.status import CheckStatus, GroupStatus, Snapshot

NOW = 1_800_000_000.0


def _group(**changes: Any) -> GroupStatus:
    fields: dict[str, Any] = {
        "protocol": "carp",
        "name": "vhid 7",
        "interface": "eth0",
        "vrid": 7,
        "state": "MASTER",
        "since": NOW - 5,
        "master": "198.51.100.1",
        "advskew": 10,
        "vips": ("203.0.113.10/24", "203.0.113.11/32@eth1"),
        "checks": (CheckStatus("tcp *:80", "tcp", True, True, "listening", 4),),
        "counters": {
            "adverts_received": 3,
            "adverts_sent": 340,
            "dropped_auth": 2,
            "dropped_ttl": 1,
            "transitions": 2,
            "announcements_sent": 4,
        },
    }
    fields.update(changes)
    return GroupStatus(**fields)


def _samples(snapshot: Snapshot) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = render(lambda: snapshot).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


MASTER = _group()
BACKUP = _group(
    protocol="vrrp",
    name="vrid 9",
    vrid=9,
    state="BACKUP",
    priority=150,
    advskew=None,
    master="198.51.100.2",
    vips=("2001:db8::10/64",),
    demoted_by=("health",),
    checks=(CheckStatus("http http://203.0.113.10/", "http", False, False, "HTTP 503", 2),),
    counters={"adverts_received": 50, "adverts_sent": 0, "become_master": 1, "transitions": 3},
)
SNAPSHOT = Snapshot(__version__, 1, NOW - 60, NOW, (MASTER, BACKUP))


def test_keepalived_exporter_names_and_labels() -> None:
    s = _samples(SNAPSHOT)
    vrrp = {"iname": "vhid 7", "intf": "eth0", "vrid": "7"}
    assert _value(s, "ifvip_vrrp_state", **vrrp, ip_address="203.0.113.10") == 2
    assert _value(s, "ifvip_vrrp_state", **vrrp, ip_address="203.0.113.11") == 2
    v6 = {"iname": "vrid 9", "intf": "eth0", "vrid": "9"}
    assert _value(s, "ifvip_vrrp_state", **v6, ip_address="2001:db8::10") == 1
    common = {**vrrp, "state": "MASTER"}
    assert _value(s, "ifvip_advertisements_received_total", **common) == 3
    assert _value(s, "ifvip_advertisements_sent_total", **common) == 340
    assert _value(s, "ifvip_authentication_failure_total", **common) == 2
    assert _value(s, "ifvip_ip_ttl_errors_total", **common) == 1
    assert _value(s, "ifvip_become_master_total", **v6, state="BACKUP") == 1


def test_counters_the_runtime_does_not_keep_are_not_invented() -> None:
    names = {name for name, labels in _samples(SNAPSHOT) if ("iname", "vhid 7") in labels}
    assert "ifvip_advertisements_received_total" in names
    assert "ifvip_become_master_total" not in names
    assert "ifvip_priority" not in names


def test_ifvip_own_metrics() -> None:
    s = _samples(SNAPSHOT)
    carp = {"iname": "vhid 7", "intf": "eth0", "vrid": "7"}
    vrrp = {"iname": "vrid 9", "intf": "eth0", "vrid": "9"}
    assert _value(s, "ifvip_up") == 1 and _value(s, "ifvip_ready") == 1
    assert _value(s, "ifvip_build_info", version=__version__, python=platform.python_version()) == 1
    assert _value(s, "ifvip_is_master", **carp) == 1 and _value(s, "ifvip_is_master", **vrrp) == 0
    assert _value(s, "ifvip_transitions_total", **carp) == 2
    assert _value(s, "ifvip_advskew", **carp) == 10 and _value(s, "ifvip_priority", **vrrp) == 150
    assert _value(s, "ifvip_demoted", **vrrp) == 1 and _value(s, "ifvip_demoted", **carp) == 0
    assert _value(s, "ifvip_state_since_timestamp_seconds", **carp) == NOW - 5
    assert _value(s, "ifvip_dropped_total", **carp, reason="auth") == 2
    assert _value(s, "ifvip_announcements_sent_total", **carp) == 4
    assert _value(s, "ifvip_group_info", **vrrp, protocol="vrrp") == 1
    check = {"iname": "vhid 7", "vrid": "7", "check": "tcp *:80", "kind": "tcp"}
    assert _value(s, "ifvip_check_status", **check) == 1
    failing = {"iname": "vrid 9", "vrid": "9", "check": "http http://203.0.113.10/", "kind": "http"}
    assert _value(s, "ifvip_check_status", **failing) == 0


def test_metrics_agree_with_the_status_snapshot() -> None:
    s = _samples(SNAPSHOT)
    for g in SNAPSHOT.groups:
        labels = {"iname": g.name, "intf": g.interface, "vrid": str(g.vrid)}
        assert _value(s, "ifvip_is_master", **labels) == (g.state == "MASTER")
        common = {**labels, "state": g.state}
        assert _value(s, "ifvip_advertisements_received_total", **common) == g.counter(
            "adverts_received"
        )
        assert _value(s, "ifvip_authentication_failure_total", **common) == g.auth_failures
        for reason, count in g.drops.items():
            assert _value(s, "ifvip_dropped_total", **labels, reason=reason) == count


def test_no_secret_reaches_the_metrics() -> None:
    assert b"pass" not in render(lambda: SNAPSHOT).lower().replace(b"passed", b"")


# ------------------------------------------------------------------------- HTTP answers


def _status(response: bytes) -> tuple[int, bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_healthz_and_readyz() -> None:
    assert _status(answer("GET", "/healthz", lambda: SNAPSHOT)) == (200, b"ok\n")
    assert _status(answer("GET", "/readyz", lambda: SNAPSHOT)) == (200, b"ready\n")
    starting = Snapshot(__version__, 1, NOW, NOW, (MASTER, _group(name="vhid 8", state="INIT")))
    assert _status(answer("GET", "/readyz", lambda: starting)) == (503, b"not ready: vhid 8 INIT\n")
    moving = Snapshot(__version__, 1, NOW, NOW, (_group(settled=False),))
    assert _status(answer("GET", "/readyz", lambda: moving))[0] == 503
    empty = Snapshot(__version__, 1, NOW, NOW, ())
    assert _status(answer("GET", "/readyz", lambda: empty)) == (
        503,
        b"not ready: no group configured\n",
    )


def test_a_fault_shows_in_healthz_readyz_and_the_metrics() -> None:
    """A failed MASTER action (issue 13): /healthz and /readyz answer 503 with the failing
    line, ifvip_fault is 1 with it as the reason, ifvip_ready 0."""
    line = "/etc/network/interfaces:30: pre-up echo 1 > /proc/sys/x: Read-only file system"
    faulty = Snapshot(
        __version__, 1, NOW, NOW, (MASTER, _group(name="vhid 8", state="BACKUP", fault=line))
    )
    assert _status(answer("GET", "/healthz", lambda: faulty)) == (
        503,
        f"fault: vhid 8: {line}\n".encode(),
    )
    code, body = _status(answer("GET", "/readyz", lambda: faulty))
    assert code == 503 and line.encode() in body
    samples = _samples(faulty)
    assert _value(samples, "ifvip_fault", iname="vhid 8", intf="eth0", vrid="7", reason=line) == 1
    assert _value(samples, "ifvip_fault", iname="vhid 7", intf="eth0", vrid="7", reason="") == 0
    assert _value(samples, "ifvip_ready") == 0
    assert faulty.faults == [f"vhid 8: {line}"]
    assert SNAPSHOT.faults == []


def test_metrics_answer_and_other_paths() -> None:
    code, body = _status(answer("GET", "/metrics?x=1", lambda: SNAPSHOT))
    assert code == 200 and b"ifvip_vrrp_state" in body
    assert b"Content-Type: text/plain; version=0.0.4" in answer("GET", "/metrics", lambda: SNAPSHOT)
    assert _status(answer("HEAD", "/metrics", lambda: SNAPSHOT))[1] == b""
    assert _status(answer("GET", "/nope", lambda: SNAPSHOT))[0] == 404
    assert _status(answer("POST", "/metrics", lambda: SNAPSHOT))[0] == 405


def test_metrics_address() -> None:
    assert parse_metrics_address("203.0.113.1:9100") == ("203.0.113.1", 9100)
    assert parse_metrics_address("[2001:db8::1]:9100") == ("2001:db8::1", 9100)


@pytest.mark.parametrize(
    "text",
    [":9100", "9100", "localhost:9100", "203.0.113.1:0", "203.0.113.1:70000", "2001:db8::1:9100"],
)
def test_bad_metrics_address_is_named(text: str) -> None:
    with pytest.raises(ConfigProblems) as caught:
        parse_metrics_address(text)
    assert caught.value.problems[0].startswith("--metrics: ")


def test_a_sync_group_hold_is_a_gauge_with_its_reason() -> None:
    """Members of a sync group (issue 17) get ifvip_sync_held: 1 with the reason while
    held back, 0 otherwise; groups outside a sync group have none."""
    reason = "sync group dmz: vrid 52 on eth1 lost its carrier"
    snapshot = Snapshot(
        __version__,
        1,
        NOW,
        NOW,
        (
            _group(name="vhid 7", sync_group="dmz", sync_hold=reason, state="BACKUP"),
            _group(name="vhid 8", sync_group="dmz"),
            _group(name="vhid 9"),
        ),
    )
    samples = _samples(snapshot)
    labels = {"intf": "eth0", "vrid": "7", "sync_group": "dmz"}
    assert _value(samples, "ifvip_sync_held", iname="vhid 7", reason=reason, **labels) == 1
    assert _value(samples, "ifvip_sync_held", iname="vhid 8", reason="", **labels) == 0
    assert not [key for key in samples if key[0] == "ifvip_sync_held" and "vhid 9" in str(key)]
