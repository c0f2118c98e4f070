"""Runtime helpers that decide without a loop: the default route's interface, link events."""

from __future__ import annotations

from typing import Any

from ifvip.daemon.runtime import interface_of_default_route


def test_the_default_route_with_the_lowest_metric_wins() -> None:
    routes: list[dict[str, Any]] = [
        {"dst_len": 24, "table": 254, "RTA_OIF": 2},
        {"dst_len": 0, "table": 254, "RTA_OIF": 3, "RTA_PRIORITY": 100},
        {"dst_len": 0, "table": 254, "RTA_OIF": 4, "RTA_PRIORITY": 10},
        {"dst_len": 0, "table": 100, "RTA_OIF": 5},
    ]
    assert interface_of_default_route(routes) == 4
    assert interface_of_default_route(routes[:1]) is None
    assert interface_of_default_route([{"dst_len": 0, "table": 254, "RTA_OIF": 7}]) == 7
