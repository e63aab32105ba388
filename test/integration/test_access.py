"""Access control: "access" allow and deny lists on a listener (checked at accept, before a
byte is read: a refused connection is closed without a reply) and on a route (checked per
request: 403, outcome "denied"), for IPv4 (127.0.0.1, and 127.0.0.2 as a second loopback
client) and IPv6 (::1) clients; and "trusted_proxies": X-Forwarded-For from a trusted proxy
names the client (the route's list, the access log and the X-Forwarded-For the backend gets use
that address), from an untrusted one it is passed on but not believed.

The IPv6 tests run sluice with its listener on [::1] and are skipped where the host has no IPv6
loopback."""

import json
import signal
import socket
import time

import pytest

from test_proxy_protocol import assert_closed_without_reply
from harness import (HOST, Backend, Client, SocketReader, Sluice, SourceClient, assert_status,
                     free_port, ok, proxy_config, wait_for_log)

pytestmark = pytest.mark.timeout(60)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


needs_ipv6 = pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) here")


class V6Client(Client):
    """wire.Client over IPv6: a connection from ::1 to [::1]:port."""

    def __init__(self, port: int, timeout: float = 5.0):
        self.timeout = timeout
        self.sock = socket.create_connection(("::1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = SocketReader(self.sock)


class V6Sluice(Sluice):
    """Sluice with its listener on [::1] instead of 127.0.0.1; its clients come from ::1."""

    host = "::1"

    def client(self, timeout: float = 5.0) -> Client:
        return V6Client(self.port, timeout)


def with_listener_access(config: dict, access: dict) -> dict:
    config["listeners"] = [{"address": f"{HOST}:0", "access": access}]
    return config


def forwarded_for(backend: Backend) -> str | None:
    return backend.requests[-1].header("X-Forwarded-For")


def access_lines(proxy: Sluice) -> list[dict]:
    """The access log's lines (the log is on stdout, which shares the proxy's log file)."""
    out = []
    for line in proxy.log_text().splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


# --------------------------------------------------------------------------- listener

@pytest.mark.parametrize("access", [
    {"allow": ["127.0.0.1"]},
    {"allow": ["127.0.0.0/8", "::1"], "deny": ["127.0.0.2"]},
    {"deny": ["127.0.0.2/32"]},
])
def test_listener_refuses_an_ipv4_client_at_accept_without_a_reply(access):
    with Backend(ok()) as backend:
        config = with_listener_access(proxy_config(backend), access)
        config["log"] = {"level": "debug"}
        with Sluice(config) as proxy:
            with SourceClient(proxy.port, "127.0.0.2") as refused:
                assert_closed_without_reply(refused)
            assert wait_for_log(proxy, r"client 127\.0\.0\.2: refused by listener 0's access list",
                                3.0)
            assert_status(proxy.get("/"), 200)  # from 127.0.0.1
            with SourceClient(proxy.port, "127.0.0.1") as admitted:
                assert_status(admitted.exchange("GET", "/again"), 200)
    assert [r.target for r in backend.requests] == ["/", "/again"]


def reload_listeners(proxy: Sluice, listeners: list[dict]) -> None:
    config = dict(proxy.config, listeners=listeners)
    start = len(proxy.log_text())
    with open(proxy.config_path, "w") as f:
        json.dump(config, f)
    proxy.send_signal(signal.SIGHUP)
    assert wait_for_log(proxy, "config reloaded", 5, start=start), proxy.log_tail()
    proxy.config = config


def test_a_listener_keeps_its_own_access_list_when_a_reload_removes_the_one_before_it():
    """Access lists follow the listener, not its place in the config: after a reload removes
    the first listener, the second one's list still applies to it."""
    with Backend(ok()) as backend, Sluice(proxy_config(backend)) as proxy:
        second = f"{HOST}:{free_port()}"
        guarded = {"address": second, "access": {"deny": ["127.0.0.2"]}}
        reload_listeners(proxy, [{"address": proxy.address}, guarded])
        reload_listeners(proxy, [guarded])
        port = int(second.rsplit(":", 1)[1])
        deadline = time.monotonic() + 3
        while True:  # the workers take the new runtime a moment after the log line
            with SourceClient(port, "127.0.0.1") as admitted:
                assert_status(admitted.exchange("GET", "/"), 200)
            with SourceClient(port, "127.0.0.2") as refused:
                try:
                    assert_closed_without_reply(refused, 1.0)
                    break
                except AssertionError:
                    if time.monotonic() > deadline:
                        raise
            time.sleep(0.05)


@needs_ipv6
@pytest.mark.parametrize("access,admitted", [
    ({"allow": ["::1"]}, True),
    ({"allow": ["127.0.0.0/8"]}, False),            # an IPv4 list does not cover ::1
    ({"deny": ["::1"]}, False),
    ({"allow": ["::/0"], "deny": ["::1/128"]}, False),
    ({"allow": ["::1"], "deny": ["::/0"]}, True),     # the longer prefix wins
    ({"deny": ["127.0.0.1", "2001:db8::/32"]}, True),
])
def test_listener_access_for_an_ipv6_client(access, admitted):
    with Backend(ok()) as backend, \
            V6Sluice(with_listener_access(proxy_config(backend), access)) as proxy:
        with proxy.client() as client:
            if admitted:
                assert_status(client.exchange("GET", "/"), 200)
                assert forwarded_for(backend) == "::1"
            else:
                assert_closed_without_reply(client)
    if not admitted:
        assert not backend.requests


def test_listener_refusals_are_counted_in_the_metrics():
    with Backend(ok()) as backend:
        config = with_listener_access(proxy_config(backend), {"deny": ["127.0.0.2"]})
        admin_port = free_port()
        config["admin"] = {"address": f"{HOST}:{admin_port}"}
        with Sluice(config) as proxy:
            for _ in range(3):
                with SourceClient(proxy.port, "127.0.0.2") as refused:
                    assert_closed_without_reply(refused)
            with Client(admin_port) as admin:
                page = admin.exchange("GET", "/metrics", host="admin").body.decode()
    assert "\nsluice_client_connections_refused_total 3\n" in page


# --------------------------------------------------------------------------- route

def route_config(backend: Backend) -> dict:
    return proxy_config(backend, routes=[
        {"path_prefix": "/v4", "upstream": "app", "access": {"allow": ["127.0.0.0/8"]}},
        {"path_prefix": "/v6", "upstream": "app", "access": {"allow": ["::1"]}},
        {"path_prefix": "/hole", "upstream": "app",
         "access": {"allow": ["127.0.0.0/8", "::1"], "deny": ["127.0.0.2"]}},
        {"path_prefix": "/nobody", "upstream": "app",
         "access": {"deny": ["0.0.0.0/0", "::/0"]}},
        {"upstream": "app"},
    ])


def statuses(client: Client, targets) -> dict[str, int]:
    return {target: client.exchange("GET", target).status for target in targets}


TARGETS = ["/v4", "/v6", "/hole", "/nobody", "/open"]


def test_route_access_for_ipv4_clients_answers_403_and_keeps_the_connection():
    with Backend(ok()) as backend, Sluice(route_config(backend)) as proxy:
        with SourceClient(proxy.port, "127.0.0.1") as client:
            assert statuses(client, TARGETS) == {
                "/v4": 200, "/v6": 403, "/hole": 200, "/nobody": 403, "/open": 200}
        with SourceClient(proxy.port, "127.0.0.2") as client:
            assert statuses(client, TARGETS) == {
                "/v4": 200, "/v6": 403, "/hole": 403, "/nobody": 403, "/open": 200}
        with proxy.client() as client:
            denied = client.exchange("GET", "/nobody")
            assert_status(denied, 403)
            assert b"denied" in denied.body
        lines = wait_for_log(proxy, r'"outcome":"denied"', 3.0, count=6)
        assert lines, proxy.log_tail()
    assert [r.target for r in backend.requests] == ["/v4", "/hole", "/open", "/v4", "/open"]
    denied = [line for line in access_lines(proxy) if line.get("outcome") == "denied"]
    assert {(line["status"], line["client_ip"]) for line in denied} == {
        (403, "127.0.0.1"), (403, "127.0.0.2")}


@needs_ipv6
def test_route_access_for_an_ipv6_client():
    with Backend(ok()) as backend, V6Sluice(route_config(backend)) as proxy:
        with proxy.client() as client:
            assert statuses(client, TARGETS) == {
                "/v4": 403, "/v6": 200, "/hole": 200, "/nobody": 403, "/open": 200}
    assert [forwarded_for_request(r) for r in backend.requests] == ["::1"] * 3


def forwarded_for_request(request) -> str | None:
    return request.header("X-Forwarded-For")


# --------------------------------------------------------------------------- trusted proxies

def trusted_config(backend: Backend, trusted: list[str], allow: list[str]) -> dict:
    config = proxy_config(backend, routes=[
        {"path_prefix": "/", "upstream": "app", "access": {"allow": allow}}])
    config["trusted_proxies"] = trusted
    return config


def xff(value: str) -> list[tuple[str, str]]:
    return [("X-Forwarded-For", value)]


def test_x_forwarded_for_from_a_trusted_proxy_names_the_client():
    """127.0.0.1 is a trusted proxy: its requests are the clients' its header names. The route
    lets in 203.0.113.0/24 only, so the proxy's own address would be refused."""
    with Backend(ok()) as backend:
        config = trusted_config(backend, ["127.0.0.1", "10.0.0.0/8"], ["203.0.113.0/24"])
        with Sluice(config) as proxy, SourceClient(proxy.port, "127.0.0.1") as client:
            # The client, then a trusted hop (10.0.0.2) that forwarded it to 127.0.0.1.
            assert_status(client.exchange("GET", "/a", xff("198.51.100.1, 203.0.113.7, 10.0.0.2")),
                          200)
            assert forwarded_for(backend) == "198.51.100.1, 203.0.113.7"
            # Named client outside the list, a trusted hop before it notwithstanding.
            assert_status(client.exchange("GET", "/b", xff("203.0.113.7, 198.51.100.9")), 403)
            # No header: the trusted proxy is the client, and it is not on the list.
            assert_status(client.exchange("GET", "/c"), 403)
            # Two fields are one list; a port on an entry is dropped.
            assert_status(client.exchange("GET", "/d", xff("192.0.2.1") + xff("203.0.113.8:5000")),
                          200)
            assert forwarded_for(backend) == "192.0.2.1, 203.0.113.8"
            # A malformed entry ends the walk: the trusted proxy itself stands, and is refused.
            assert_status(client.exchange("GET", "/e", xff("203.0.113.7, junk")), 403)
        assert wait_for_log(proxy, r'"outcome":"denied"', 3.0, count=3)
    assert [r.target for r in backend.requests] == ["/a", "/d"]
    by_target = {line["target"]: line for line in access_lines(proxy) if "target" in line}
    assert by_target["/a"]["client_ip"] == "203.0.113.7"
    assert by_target["/b"]["client_ip"] == "198.51.100.9"
    assert by_target["/c"]["client_ip"] == "127.0.0.1"
    assert by_target["/d"]["client_ip"] == "203.0.113.8"


def test_x_forwarded_for_from_an_untrusted_proxy_is_passed_on_but_not_believed():
    """Only 127.0.0.1 is trusted; 127.0.0.2's header claims an allowed address in vain, and a
    denied one does not keep it out."""
    with Backend(ok()) as backend:
        config = trusted_config(backend, ["127.0.0.1"], ["127.0.0.2"])
        with Sluice(config) as proxy, SourceClient(proxy.port, "127.0.0.2") as client:
            assert_status(client.exchange("GET", "/a", xff("198.51.100.1")), 200)
            assert forwarded_for(backend) == "198.51.100.1, 127.0.0.2"
        config = trusted_config(backend, ["127.0.0.1"], ["203.0.113.0/24"])
        with Sluice(config) as proxy, SourceClient(proxy.port, "127.0.0.2") as client:
            assert_status(client.exchange("GET", "/b", xff("203.0.113.7")), 403)
    assert [r.target for r in backend.requests] == ["/a"]


@needs_ipv6
def test_x_forwarded_for_from_an_untrusted_ipv6_peer_is_not_believed():
    with Backend(ok()) as backend:
        config = trusted_config(backend, ["127.0.0.1"], ["::1"])
        with V6Sluice(config) as proxy, proxy.client() as client:
            assert_status(client.exchange("GET", "/a", xff("203.0.113.7")), 200)
            assert forwarded_for(backend) == "203.0.113.7, ::1"
        config = trusted_config(backend, ["::1"], ["2001:db8::/32"])
        with V6Sluice(config) as proxy, proxy.client() as client:
            # ::1 trusted now: the client is the IPv6 address the header names.
            assert_status(client.exchange("GET", "/b", xff("[2001:db8::7]:443")), 200)
            assert forwarded_for(backend) == "2001:db8::7"
            assert_status(client.exchange("GET", "/c", xff("2001:db9::7")), 403)
    assert [r.target for r in backend.requests] == ["/a", "/b"]


def test_hash_balancing_keys_on_the_client_a_trusted_proxy_names():
    """Four backends hashed on client_ip: each named client lands where its own connection
    would, so a proxy's clients spread instead of all going to one backend."""
    backends = [Backend(ok()) for _ in range(4)]

    def backend_of(target: str) -> int:
        return next(i for i, b in enumerate(backends) if any(r.target == target for r in b.requests))

    try:
        config = proxy_config(*backends, upstream={"balance": "hash", "hash_key": "client_ip"})
        config["trusted_proxies"] = ["127.0.0.1"]
        with Sluice(config) as proxy:
            for i in range(2, 12):
                with SourceClient(proxy.port, "127.0.0.1") as client:
                    assert_status(client.exchange("GET", f"/via{i}", xff(f"127.0.0.{i}")), 200)
                with SourceClient(proxy.port, f"127.0.0.{i}") as client:
                    assert_status(client.exchange("GET", f"/direct{i}"), 200)
        via = {i: backend_of(f"/via{i}") for i in range(2, 12)}
        assert via == {i: backend_of(f"/direct{i}") for i in range(2, 12)}
        assert len(set(via.values())) > 1
    finally:
        for backend in backends:
            backend.stop()
