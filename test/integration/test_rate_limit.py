"""Rate limits on a route ("rate_limit"): a client over its rate gets 429 with Retry-After while
another client is served at the same time; the client is the one trusted_proxies names; the
route-wide "rps"; the limit holds within 10% over 4 workers when every request comes on a new
connection (the kernel spreads them over the workers' SO_REUSEPORT sockets); an IPv6 client; and
a reload that leaves the settings alone keeps the buckets.

Rates here are low (a token back every second or half second) so that nothing but a scheduler
stall of that length could let an extra request in; the 4-worker test counts over ~2 s."""

import json
import signal
import socket
import threading
import time

import pytest

from harness import (HOST, Backend, Sluice, SourceClient, assert_status, ok, proxy_config,
                     wait_for_log)
from test_access import V6Sluice, access_lines, needs_ipv6

pytestmark = pytest.mark.timeout(60)


def limited(backend: Backend, rate_limit: dict, *, workers: int = 2, extra_routes=()) -> dict:
    return proxy_config(backend, workers=workers, routes=[
        *extra_routes, {"path_prefix": "/", "upstream": "app", "rate_limit": rate_limit}])


def assert_limited(response, detail: bytes) -> int:
    """A 429 with a whole number of seconds in Retry-After (at least 1); returns it."""
    assert_status(response, 429)
    assert detail in response.body, response.body
    retry_after = response.header("Retry-After")
    assert retry_after is not None and retry_after.isdigit(), response.headers
    assert int(retry_after) >= 1
    return int(retry_after)


def xff(value: str) -> list[tuple[str, str]]:
    return [("X-Forwarded-For", value)]


CLIENT_OVER = b"the client is over this route's request rate"
ROUTE_OVER = b"this route is over its request rate"


def test_a_client_over_its_rate_gets_429_while_another_client_is_served():
    with Backend(ok()) as backend, \
            Sluice(limited(backend, {"per_client_rps": 1, "burst": 3})) as proxy, \
            SourceClient(proxy.port, "127.0.0.1") as a, SourceClient(proxy.port, "127.0.0.2") as b:
        for i in range(3):
            assert_status(a.exchange("GET", f"/a{i}"), 200)
        # a's burst is spent; b, at the same time, has its own.
        assert assert_limited(a.exchange("GET", "/a-over"), CLIENT_OVER) == 1  # 1 token a second
        assert_status(b.exchange("GET", "/b0"), 200)
        assert_limited(a.exchange("GET", "/a-over-again"), CLIENT_OVER)
        assert_status(b.exchange("GET", "/b1"), 200)
        # The connection stays open after a 429, and a token is back within Retry-After.
        time.sleep(1.05)
        assert_status(a.exchange("GET", "/a-later"), 200)
        assert wait_for_log(proxy, r'"outcome":"rate_limited"', 3.0, count=2), proxy.log_tail()
    assert backend.targets() == ["/a0", "/a1", "/a2", "/b0", "/b1", "/a-later"]
    refused = [line for line in access_lines(proxy) if line.get("outcome") == "rate_limited"]
    assert {(line["status"], line["client_ip"]) for line in refused} == {(429, "127.0.0.1")}


def test_the_client_is_the_one_a_trusted_proxy_names():
    """Both requests come from 127.0.0.1, a trusted proxy: each X-Forwarded-For client has its
    own bucket, and the proxy itself (no header) has a third."""
    with Backend(ok()) as backend:
        config = limited(backend, {"per_client_rps": 1, "burst": 2})
        config["trusted_proxies"] = ["127.0.0.1"]
        with Sluice(config) as proxy, proxy.client() as client:
            for _ in range(2):
                assert_status(client.exchange("GET", "/x", xff("203.0.113.1")), 200)
            assert_limited(client.exchange("GET", "/x", xff("203.0.113.1")), CLIENT_OVER)
            assert_status(client.exchange("GET", "/y", xff("203.0.113.2")), 200)
            assert_status(client.exchange("GET", "/z"), 200)
            assert_limited(client.exchange("GET", "/x", xff("198.51.100.9, 203.0.113.1")),
                           CLIENT_OVER)
    assert backend.targets() == ["/x", "/x", "/y", "/z"]


def test_the_route_rps_holds_for_all_clients_and_other_routes_are_apart():
    with Backend(ok()) as backend:
        open_route = {"path_prefix": "/open", "upstream": "app"}
        config = limited(backend, {"rps": 2}, extra_routes=[open_route])
        with Sluice(config) as proxy, \
                SourceClient(proxy.port, "127.0.0.1") as a, \
                SourceClient(proxy.port, "127.0.0.2") as b, \
                SourceClient(proxy.port, "127.0.0.3") as c:
            assert_status(a.exchange("GET", "/1"), 200)
            assert_status(b.exchange("GET", "/2"), 200)
            assert assert_limited(c.exchange("GET", "/3"), ROUTE_OVER) == 1
            assert_limited(a.exchange("GET", "/4"), ROUTE_OVER)
            for client in (a, b, c):
                assert_status(client.exchange("GET", "/open"), 200)
    assert backend.targets() == ["/1", "/2", "/open", "/open", "/open"]


def test_a_client_the_access_list_refuses_spends_no_tokens():
    with Backend(ok()) as backend:
        config = limited(backend, {"rps": 1})
        config["routes"][0]["access"] = {"deny": ["127.0.0.2"]}
        with Sluice(config) as proxy, SourceClient(proxy.port, "127.0.0.2") as refused:
            for _ in range(3):
                assert_status(refused.exchange("GET", "/"), 403)
            assert_status(proxy.get("/"), 200)
    assert len(backend.requests) == 1


def hammer(port: int, until: float, counts: dict, lock: threading.Lock) -> None:
    """One request per connection every 8 ms until `until` (4 of these: 500 a second, ten times
    the rate, without using up the ephemeral ports others' tests need); counts statuses."""
    request = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    mine: dict = {}
    next_at = time.monotonic()
    while next_at < until:
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at += 0.008
        with socket.create_connection((HOST, port), timeout=5) as sock:
            sock.sendall(request)
            head = sock.recv(64)
            while len(head) < 12:
                more = sock.recv(64)
                if not more:
                    break
                head += more
        status = int(head[9:12]) if head.startswith(b"HTTP/1.1 ") else 0
        mine[status] = mine.get(status, 0) + 1
    with lock:
        for status, n in mine.items():
            counts[status] = counts.get(status, 0) + n


def test_the_limit_holds_within_ten_percent_over_four_workers():
    """A client on new connections, spread over 4 workers, gets its own rate, not 4 times it:
    burst + rate × elapsed requests in ~2 s, within 10%."""
    rate, burst, seconds = 50, 50, 2.0
    with Backend(ok()) as backend:
        config = limited(backend, {"per_client_rps": rate, "burst": burst}, workers=4)
        with Sluice(config) as proxy:
            counts: dict = {}
            lock = threading.Lock()
            start = time.monotonic()
            threads = [threading.Thread(target=hammer, args=(proxy.port, start + seconds,
                                                             counts, lock)) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            elapsed = time.monotonic() - start
    expected = burst + rate * elapsed
    assert set(counts) <= {200, 429}, counts
    assert counts.get(429, 0) > 2 * counts.get(200, 0), counts  # the client pushed past its rate
    accepted = counts.get(200, 0)
    assert abs(accepted - expected) <= 0.1 * expected, (accepted, expected, counts)
    assert len(backend.requests) == accepted


@needs_ipv6
def test_an_ipv6_client_is_limited_by_its_address():
    with Backend(ok()) as backend, \
            V6Sluice(limited(backend, {"per_client_rps": 1, "burst": 2})) as proxy, \
            proxy.client() as client:
        assert_status(client.exchange("GET", "/"), 200)
        assert_status(client.exchange("GET", "/"), 200)
        assert_limited(client.exchange("GET", "/"), CLIENT_OVER)
        assert wait_for_log(proxy, r'"client_ip":"::1".*"outcome":"rate_limited"'
                            r'|"outcome":"rate_limited".*"client_ip":"::1"', 3.0), proxy.log_tail()
    assert len(backend.requests) == 2


def rewrite_config(proxy: Sluice, config: dict) -> None:
    config = dict(config, listeners=[{"address": proxy.address}])
    with open(proxy.config_path, "w") as f:
        json.dump(config, f)


def test_a_reload_keeps_the_buckets_unless_the_settings_change():
    with Backend(ok()) as backend:
        config = limited(backend, {"per_client_rps": 1, "burst": 2})
        with Sluice(config) as proxy, proxy.client() as client:
            for _ in range(2):
                assert_status(client.exchange("GET", "/"), 200)
            assert_limited(client.exchange("GET", "/"), CLIENT_OVER)
            rewrite_config(proxy, config)
            proxy.send_signal(signal.SIGHUP)
            assert wait_for_log(proxy, r"config reloaded \(generation 2\)", 5), proxy.log_tail()
            assert_limited(client.exchange("GET", "/"), CLIENT_OVER)  # still spent
            changed = limited(backend, {"per_client_rps": 1, "burst": 3})
            rewrite_config(proxy, changed)
            proxy.send_signal(signal.SIGHUP)
            assert wait_for_log(proxy, r"config reloaded \(generation 3\)", 5), proxy.log_tail()
            for _ in range(3):  # new settings: a full bucket of the new burst
                assert_status(client.exchange("GET", "/"), 200)
            assert_limited(client.exchange("GET", "/"), CLIENT_OVER)
    assert len(backend.requests) == 5
