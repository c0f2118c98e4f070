"""Health checks: options, rise/fall hysteresis, demotion events, the /proc/net/tcp parser."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ifvip.daemon.checks import (
    CarrierCheck,
    CheckConfig,
    Demotions,
    GroupHealth,
    HttpCheck,
    Hysteresis,
    ListenerProbe,
    ProbeResult,
    ScriptCheck,
    TcpCheck,
    http_request,
    http_status,
    listens,
    observe,
    parse_check_options,
    parse_proc_net_tcp,
    probe_plan,
    record,
    set_demotion,
)
from ifvip.daemon.probes import CheckRunner, carrier_up, run_probe
from ifvip.daemon.settings import ConfigProblems
from ifvip.election.events import Demote, Promote
from ifvip.election.vrrp import SetPriority
from ifvip.hookenv import HOOK_PATH

OK = ProbeResult(True)
BAD = ProbeResult(False, "connection refused")
VIP = ipaddress.ip_address("203.0.113.10")


def _run(results: list[bool], rise: int = 2, fall: int = 2) -> list[bool]:
    h = Hysteresis(rise, fall)
    verdicts = []
    for ok in results:
        h = observe(h, ProbeResult(ok))
        verdicts.append(h.healthy)
    return verdicts


# ------------------------------------------------------------------------- hysteresis


def test_fall_failures_in_a_row_turn_the_verdict() -> None:
    assert _run([False, False, False]) == [True, False, False]


def test_rise_successes_in_a_row_restore_it() -> None:
    assert _run([False, False, True, True], rise=2) == [True, False, False, True]


def test_one_good_result_resets_the_failure_run() -> None:
    assert _run([False, True, False, True, False], fall=2) == [True] * 5


def test_alternating_results_never_move_the_verdict() -> None:
    assert _run([False, True] * 20) == [True] * 40
    assert _run([False, False] + [True, False] * 20) == [True] + [False] * 41


def test_rise_and_fall_are_counted_separately() -> None:
    assert _run([False] * 3 + [True] * 3, rise=3, fall=3) == [True, True, False, False, False, True]


def test_streak_and_last_result_are_kept_for_the_status() -> None:
    h = Hysteresis()
    for result in (OK, BAD, BAD, BAD):
        h = observe(h, result)
    assert (h.streak, h.last, h.healthy, h.changes) == (3, BAD, False, 1)


def test_rise_or_fall_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        Hysteresis(0, 2)


@given(
    st.lists(st.booleans(), max_size=200),
    st.integers(min_value=1, max_value=5),
    st.integers(min_value=1, max_value=5),
)
def test_the_verdict_changes_at_most_once_per_rise_or_fall_results(
    results: list[bool], rise: int, fall: int
) -> None:
    verdicts = _run(results, rise, fall)
    changes = sum(1 for a, b in zip([True, *verdicts], verdicts, strict=False) if a != b)
    assert changes <= len(results) // min(rise, fall)
    # and every change is preceded by a full run of agreeing results
    previous = True
    for i, verdict in enumerate(verdicts):
        if verdict != previous:
            need = rise if verdict else fall
            assert i + 1 >= need and all(r == verdict for r in results[i + 1 - need : i + 1])
        previous = verdict


# ------------------------------------------------------------------------- demotion


def test_demotion_sources_are_a_union() -> None:
    d = Demotions()
    d, event = set_demotion(d, "health", True, "health check failed: tcp *:80")
    assert event == Demote("health check failed: tcp *:80")
    d, event = set_demotion(d, "sigusr2", True, "SIGUSR2")
    assert event is None
    d, event = set_demotion(d, "health", False, "health checks pass")
    assert event is None and d.demoted
    d, event = set_demotion(d, "sigusr2", False, "SIGUSR2: promoted")
    assert event == Promote("SIGUSR2: promoted") and not d.demoted


def _health(*checks: Any, **timing: Any) -> GroupHealth:
    return GroupHealth(CheckConfig(checks=tuple(checks), **timing))


def test_a_failing_check_demotes_once_and_recovery_promotes() -> None:
    health = _health(TcpCheck(None, 80), CarrierCheck("veth0"))
    demotions = Demotions()
    events = []
    for index, result in [(0, BAD), (1, OK), (0, BAD), (1, OK), (0, BAD), (0, OK), (0, OK)]:
        health, demotions, event = record(health, index, result, demotions)
        events.append(event)
    assert events == [
        None,
        None,
        Demote("health check failed: tcp *:80"),
        None,
        None,
        None,
        Promote("health checks pass"),
    ]
    assert health.healthy and not demotions.demoted


def test_a_second_failing_check_keeps_the_group_demoted() -> None:
    health = _health(TcpCheck(None, 80), CarrierCheck("veth0"), fall=1, rise=1)
    d = Demotions()
    health, d, first = record(health, 0, BAD, d)
    health, d, second = record(health, 1, BAD, d)
    health, d, third = record(health, 0, OK, d)
    assert isinstance(first, Demote) and second is None and third is None
    assert health.failing() == ["carrier veth0"]


def test_a_sigusr2_demotion_outlives_recovered_checks() -> None:
    health = _health(TcpCheck(None, 80), fall=1, rise=1)
    d, _ = set_demotion(Demotions(), "sigusr2", True, "SIGUSR2")
    health, d, event = record(health, 0, BAD, d)
    assert event is None
    health, d, event = record(health, 0, OK, d)
    assert event is None and d.demoted


def test_vrrp_weight_changes_priority_instead_of_faulting() -> None:
    health = _health(TcpCheck(None, 80), TcpCheck(None, 81), fall=1, weight=-20)
    health, demotions, event = record(health, 0, BAD, Demotions())
    assert (
        event is None
        and not demotions.demoted
        and not health.faults
        and health.priority_delta() == -20
    )
    plus = _health(TcpCheck(None, 80), weight=10, fall=1)
    assert plus.priority_delta() == 10
    plus, _, _ = record(plus, 0, BAD, Demotions())
    assert plus.priority_delta() == 0


def test_demotion_bound_is_interval_times_fall_plus_timeout_plus_one_advert() -> None:
    config = CheckConfig(checks=(TcpCheck(None, 80),), interval=2, fall=3, timeout=1)
    assert config.demotion_bound(1.0) == 8.0


# ------------------------------------------------------------------------- VIP checks


def test_a_check_on_a_vip_is_judged_by_the_local_listener_on_a_backup() -> None:
    check = _parse(http=["http://203.0.113.10:8080/health"]).checks[0]
    assert probe_plan(check, is_master=True, vips=[VIP]) is check
    assert probe_plan(check, is_master=False, vips=[VIP]) == ListenerProbe(8080, VIP)
    tcp = TcpCheck(VIP, 443)
    assert probe_plan(tcp, is_master=False, vips=[VIP]) == ListenerProbe(443, VIP)


def test_other_checks_run_unchanged_on_a_backup() -> None:
    other = TcpCheck(ipaddress.ip_address("198.51.100.7"), 443)
    assert probe_plan(other, is_master=False, vips=[VIP]) is other
    named = _parse(http=["http://backend.example/"]).checks[0]
    assert probe_plan(named, is_master=False, vips=[VIP]) is named


# ------------------------------------------------------------------------- /proc/net/tcp

PROC_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1122 1
   1: 0A7100CB:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1123 1
   2: 0100007F:0050 0A7100CB:A1B2 01 00000000:00000000 00:00000000 00000000     0        0 1124 1
   3: garbage
"""
PROC_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue
   0: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000
   1: B80D0120000000000000000005000000:01BB 00000000000000000000000000000000:0000 0A 00000000
   2: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000
"""


def test_proc_net_tcp_lists_listeners_only() -> None:
    assert parse_proc_net_tcp(PROC_TCP, byteorder="little") == {
        (ipaddress.ip_address("0.0.0.0"), 2024),
        (ipaddress.ip_address("203.0.113.10"), 8080),
    }


def test_proc_net_tcp6_words_are_host_order() -> None:
    assert parse_proc_net_tcp(PROC_TCP6, byteorder="little") == {
        (ipaddress.ip_address("::1"), 631),
        (ipaddress.ip_address("2001:db8::5"), 443),
        (ipaddress.ip_address("::"), 22),
    }


def test_proc_net_tcp_on_a_big_endian_host() -> None:
    text = "header\n 0: CB00710A:1F90 00000000:0000 0A\n"
    assert parse_proc_net_tcp(text, byteorder="big") == {(VIP, 8080)}


def test_something_listens_on_port() -> None:
    sockets = parse_proc_net_tcp(PROC_TCP, byteorder="little") | parse_proc_net_tcp(
        PROC_TCP6, byteorder="little"
    )
    assert listens(sockets, 8080, None)
    assert listens(sockets, 8080, VIP)
    assert not listens(sockets, 8080, ipaddress.ip_address("203.0.113.11"))
    assert listens(sockets, 2024, VIP)  # 0.0.0.0
    assert listens(sockets, 22, VIP)  # :: takes IPv4 too
    assert not listens(sockets, 80, None)  # only a connected socket uses port 80
    assert not listens(sockets, 2024, ipaddress.ip_address("2001:db8::9"))  # 0.0.0.0 is v4


# ------------------------------------------------------------------------- HTTP


def test_http_status_line() -> None:
    assert http_status(b"HTTP/1.0 200 OK\r\n") == 200
    assert http_status(b"HTTP/1.1 503 Service Unavailable\r\n") == 503
    assert http_status(b"SSH-2.0-OpenSSH\r\n") is None
    assert http_status(b"HTTP/1.1 999 Nope\r\n") is None
    assert http_status(b"") is None


def test_http_request_names_the_host_and_path() -> None:
    check = _parse(http=["http://[2001:db8::5]:8080/health?deep=1"]).checks[0]
    assert isinstance(check, HttpCheck)
    assert http_request(check).splitlines()[:2] == [
        b"GET /health?deep=1 HTTP/1.0",
        b"Host: [2001:db8::5]:8080",
    ]
    plain = _parse(http=["https://203.0.113.10"]).checks[0]
    assert isinstance(plain, HttpCheck)
    assert (plain.port, plain.path, plain.tls) == (443, "/", True)
    assert http_request(plain).splitlines()[1] == b"Host: 203.0.113.10"


# ------------------------------------------------------------------------- options


def _parse(**options: Any) -> CheckConfig:
    return parse_check_options(**options)


def _problems(**options: Any) -> list[str]:
    with pytest.raises(ConfigProblems) as caught:
        parse_check_options(**options)
    return caught.value.problems


def test_defaults_are_solnets_two_two_two() -> None:
    config = _parse(tcp=["80"])
    assert (config.interval, config.rise, config.fall, config.timeout) == (2.0, 2, 2, 2.0)
    assert config.checks == (TcpCheck(None, 80),)
    assert not _parse()


def test_every_kind_of_check_is_parsed() -> None:
    config = _parse(
        http=["http://203.0.113.10:8080/"],
        http_status="204",
        tcp=["203.0.113.10:443", "[2001:db8::5]:443"],
        script=["/bin/true --quiet"],
        track_interface=["veth0"],
        interval="1",
        rise="3",
        fall="1",
        timeout="0.5",
        links=["lo", "veth0"],
    )
    http, tcp4, tcp6, script, carrier = config.checks
    assert isinstance(http, HttpCheck) and http.expect == 204
    assert tcp4.name == "tcp 203.0.113.10:443" and tcp6.name == "tcp [2001:db8::5]:443"
    assert script == ScriptCheck(("/bin/true", "--quiet"))
    assert carrier == CarrierCheck("veth0")
    assert (config.interval, config.rise, config.fall, config.timeout) == (1.0, 3, 1, 0.5)


def test_a_script_is_found_on_the_fixed_path() -> None:
    assert _parse(script=["true"]).checks == (ScriptCheck(("true",)),)


def test_vrrp_weight() -> None:
    assert _parse(tcp=["80"], weight="-30", protocol="vrrp").weight == -30


@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"http": ["ftp://203.0.113.10/"]}, "--check-http"),
        ({"http": ["http://"]}, "--check-http"),
        ({"http": ["http://203.0.113.10:99999/"]}, "--check-http"),
        ({"http": ["http://203.0.113.10:0/"]}, "--check-http"),
        ({"http": ["http://203.0.113.10/a b"]}, "--check-http"),
        ({"http": ["203.0.113.10:80"]}, "--check-http"),
        ({"http": ["http://user:secret@203.0.113.10/"]}, "--check-http"),
        ({"http": ["http://203.0.113.10/"], "http_status": "42"}, "--check-http-status"),
        ({"http_status": "200", "tcp": ["80"]}, "--check-http-status"),
        ({"http": ["http://203.0.113.10/"], "http_insecure": True}, "--check-http-insecure"),
        ({"tcp": ["0"]}, "--check-tcp"),
        ({"tcp": ["65536"]}, "--check-tcp"),
        ({"tcp": ["http"]}, "--check-tcp"),
        ({"tcp": ["203.0.113.300:80"]}, "--check-tcp"),
        ({"tcp": ["2001:db8::5:80"]}, "--check-tcp"),
        ({"tcp": ["80", "80"]}, "--check-tcp"),
        ({"script": [""]}, "--check-script"),
        ({"script": ["'unbalanced"]}, "--check-script"),
        ({"script": ["/nonexistent/check.sh"]}, "--check-script"),
        ({"script": ["no-such-program-anywhere"]}, "--check-script"),
        ({"track_interface": ["veth9"], "links": ["lo"]}, "--track-interface"),
        ({"track_interface": ["a-name-longer-than-15"]}, "--track-interface"),
        ({"tcp": ["80"], "interval": "0"}, "--check-interval"),
        ({"tcp": ["80"], "interval": "soon"}, "--check-interval"),
        ({"tcp": ["80"], "interval": "nan"}, "--check-interval"),
        ({"tcp": ["80"], "rise": "0"}, "--check-rise"),
        ({"tcp": ["80"], "fall": "1.5"}, "--check-fall"),
        ({"tcp": ["80"], "interval": "1", "timeout": "3"}, "--check-timeout"),
        ({"tcp": ["80"], "weight": "-20"}, "--check-weight"),
        ({"tcp": ["80"], "weight": "300", "protocol": "vrrp"}, "--check-weight"),
        ({"interval": "5"}, "--check-interval"),
        ({"fall": "3"}, "--check-fall"),
    ],
)
def test_each_bad_check_option_is_named(options: dict[str, Any], option: str) -> None:
    problems = _problems(**options)
    assert problems and all(p.startswith(option + ":") for p in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    problems = _problems(tcp=["0"], http=["ftp://x/"], rise="0")
    assert [p.split(":")[0] for p in problems] == ["--check-http", "--check-tcp", "--check-rise"]


def test_a_url_password_is_never_echoed() -> None:
    (problem,) = _problems(http=["http://user:hunter2@203.0.113.10/"])
    assert "hunter2" not in problem


# ------------------------------------------------------------------------- probes (no network)


def test_a_script_check_exits_zero_for_healthy() -> None:
    assert asyncio.run(run_probe(ScriptCheck(("true",)), timeout=5)) == ProbeResult(True, "exit 0")
    assert asyncio.run(run_probe(ScriptCheck(("false",)), timeout=5)) == ProbeResult(
        False, "exit 1"
    )


def test_a_hanging_script_is_killed_at_the_timeout_with_its_children() -> None:
    check = ScriptCheck(("sh", "-c", "sleep 30 & sleep 30"))
    result = asyncio.run(run_probe(check, timeout=0.3))
    assert result == ProbeResult(False, "killed after 0.3 s")


def test_a_script_sees_the_state_and_a_fixed_path() -> None:
    check = ScriptCheck(
        ("sh", "-c", 'test "$IFVIP_STATE" = MASTER && test "$PATH" = "$0"', HOOK_PATH)
    )
    assert asyncio.run(run_probe(check, state="MASTER", timeout=5)).ok
    assert not asyncio.run(run_probe(check, state="BACKUP", timeout=5)).ok


def test_a_missing_interface_has_no_carrier(tmp_path: Any) -> None:
    (tmp_path / "veth0").mkdir()
    (tmp_path / "veth0" / "flags").write_text("0x1003\n")
    (tmp_path / "veth0" / "carrier").write_text("1\n")
    assert carrier_up("veth0", root=str(tmp_path))
    (tmp_path / "veth0" / "flags").write_text("0x1002\n")
    assert not carrier_up("veth0", root=str(tmp_path))
    assert not carrier_up("veth9", root=str(tmp_path))


def test_a_runner_feeds_demote_after_fall_rounds() -> None:
    events: list[object] = []
    config = CheckConfig(checks=(ScriptCheck(("false",)),), fall=2, timeout=5)
    runner = CheckRunner(config, [], state=lambda: "MASTER", feed=events.append)
    asyncio.run(runner.round())
    assert events == []
    asyncio.run(runner.round())
    assert events == [Demote("health check failed: script false")]
    assert runner.rounds == 2 and runner.demotions.sources == frozenset({"health"})


def test_a_vrrp_weight_feeds_set_priority_instead() -> None:
    events: list[object] = []
    config = CheckConfig(checks=(ScriptCheck(("false",)),), fall=1, timeout=5, weight=-20)
    runner = CheckRunner(config, [], state=lambda: "MASTER", feed=events.append, base_priority=150)
    asyncio.run(runner.round())
    assert events == [SetPriority(130, "check weight -20 (script false)")]
    asyncio.run(runner.round())
    assert len(events) == 1  # unchanged priority: nothing more


def test_sigusr2_joins_the_union_of_the_runner() -> None:
    events: list[object] = []
    config = CheckConfig(checks=(ScriptCheck(("false",)),), fall=1, timeout=5)
    runner = CheckRunner(config, [], state=lambda: "MASTER", feed=events.append)
    runner.set_source("sigusr2", True, "SIGUSR2")
    asyncio.run(runner.round())
    runner.set_source("sigusr2", False, "SIGUSR2: promoted")
    assert events == [Demote("SIGUSR2")]  # still demoted by the failing check
