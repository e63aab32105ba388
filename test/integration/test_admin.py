"""The admin listener ("admin" in the config): /healthz, /readyz (backends, drain), /status,
/metrics in the Prometheus text format with exact counts after a known load, GET only, off
unless configured, and counters that a reload does not send back."""

import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest

from harness import (HOST, Backend, Client, ClosedPort, ConnectionClosed, HealthSwitch, Sluice, assert_status,
                     free_port, ok, proxy_config, service, wait_for_log)

FAST_HEALTH = {"path": "/health", "interval_ms": 100, "timeout_ms": 100, "rise": 2, "fall": 2}


def with_admin(config: dict) -> dict:
    return {**config, "admin": {"address": f"{HOST}:{free_port()}"}}


def admin_port(proxy: Sluice) -> int:
    return int(proxy.config["admin"]["address"].rsplit(":", 1)[1])


def admin(proxy: Sluice, target: str, method: str = "GET", *, attempts: int = 20):
    """One request to the admin listener on a fresh connection. Retried when the connection
    is refused, reset or closed before an answer, as it may be while the workers drain: a
    worker that begins its drain closes connections that have not sent a request yet, and
    one that has drained closes its admin socket."""
    for attempt in range(attempts):
        try:
            with Client(admin_port(proxy)) as client:
                return client.exchange(method, target, host="admin")
        except (ConnectionRefusedError, ConnectionResetError, ConnectionClosed):
            if attempt == attempts - 1:
                raise
            time.sleep(0.05)


def wait_for_page(proxy: Sluice, target: str, predicate, timeout: float = 5.0):
    """Polls an admin page until predicate(response) holds; returns the last response."""
    deadline = time.monotonic() + timeout
    while True:
        response = admin(proxy, target)
        if predicate(response) or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def samples(text: str) -> dict[str, float]:
    """The samples of a Prometheus text page: {'name{labels}': value}."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out


def listening_ports(pid: int) -> list[int]:
    """The ports of the TCP sockets in LISTEN state that process `pid` holds, one per socket."""
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            held.add(target[len("socket:["):-1])
    ports = []
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in held:  # 0A: TCP_LISTEN
                    ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return sorted(ports)


def test_healthz_answers_ok_with_one_admin_socket_per_worker():
    with Backend(ok()) as backend, \
            Sluice(with_admin(proxy_config(backend, workers=3))) as proxy:
        response = admin(proxy, "/healthz")
        head = admin(proxy, "/healthz", "HEAD")
        ports = listening_ports(proxy.pid)
    assert_status(response, 200)
    assert response.body == b"ok\n"
    assert_status(head, 200)
    assert head.body == b""
    assert ports == sorted([proxy.port] * 3 + [admin_port(proxy)] * 3), ports


def test_admin_is_off_unless_configured():
    with Backend(ok()) as backend, Sluice(proxy_config(backend, workers=2)) as proxy:
        assert_status(proxy.get("/"), 200)
        ports = listening_ports(proxy.pid)
    assert ports == [proxy.port, proxy.port], f"listening on {ports} without an admin object"


def test_admin_answers_get_and_head_only():
    with Backend(ok()) as backend, Sluice(with_admin(proxy_config(backend))) as proxy:
        post = admin(proxy, "/metrics", "POST")
        unknown = admin(proxy, "/nothing-here")
    assert_status(post, 405)
    assert_status(unknown, 404)
    assert not backend.requests, "an admin request reached the backend"


def test_readyz_follows_the_only_backend_of_the_routed_upstream():
    sick = HealthSwitch(200)
    config = proxy_config(upstream={"health": FAST_HEALTH, "passive": {"failures": 0}},
                          upstreams={"app": [], "spare": []}, routes=[{"upstream": "app"}])
    with Backend(service("a", sick)) as a, ClosedPort() as dead:
        config["upstreams"]["app"]["backends"] = [{"address": a.address}]
        config["upstreams"]["spare"]["backends"] = [{"address": dead.address}]  # no route
        with Sluice(with_admin(config)) as proxy:
            ready = wait_for_page(proxy, "/readyz", lambda r: r.status == 200)
            sick.status = 500
            down = wait_for_page(proxy, "/readyz", lambda r: r.status == 503)
            status = json.loads(admin(proxy, "/status").body)
            sick.status = 200
            back = wait_for_page(proxy, "/readyz", lambda r: r.status == 200)
    assert_status(ready, 200)
    assert ready.body == b"ready\n"
    assert_status(down, 503)
    assert down.body == b"not ready: upstream 'app' has no usable backend\n", down.body
    backend = status["upstreams"][0]["backends"][0]
    assert backend["state"] == "down" and backend["why"] == "status 500", backend
    assert_status(back, 200)


def test_readyz_says_503_while_draining():
    def slow(ex):
        ex.read_body()
        time.sleep(1.5)
        ex.respond(200, b"finished")

    with Backend(slow) as backend:
        proxy = Sluice(with_admin(proxy_config(backend, timeouts={"drain_ms": 5000}))).start()
        assert_status(admin(proxy, "/readyz"), 200)
        with proxy.client() as client:
            client.request("GET", "/slow")
            assert backend.wait_for(lambda b: b.requests, 3), "request never reached the backend"
            proxy.send_signal(signal.SIGTERM)
            draining = wait_for_page(proxy, "/readyz", lambda r: r.status == 503, timeout=1.0)
            metrics = samples(admin(proxy, "/metrics").body.decode())
            response = client.read_final_response()
        status = proxy.wait(8)
    assert_status(draining, 503)
    assert b"draining" in draining.body, draining.body
    assert metrics["sluice_draining"] == 1
    assert_status(response, 200)
    assert status == 0, f"exit status {status} after draining\n{proxy.log_tail()}"


def test_status_lists_listeners_routes_and_each_backends_state():
    health = {**FAST_HEALTH, "rise": 1, "fall": 1}
    with Backend(service("a")) as a, ClosedPort() as dead:
        config = with_admin(proxy_config(a, dead, upstream={"health": health}))
        with Sluice(config) as proxy:
            assert wait_for_log(proxy, r"is down", 3.0), proxy.log_tail()
            response = admin(proxy, "/status")
    assert_status(response, 200)
    assert response.header("Content-Type") == "application/json"
    status = json.loads(response.body)
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", status["version"]), status["version"]
    assert status["config"]["path"] == proxy.config_path
    assert status["config"]["generation"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", status["config"]["loaded_at"])
    assert status["listeners"] == [{"address": proxy.address, "tls": False}]
    assert status["routes"] == [{"host": "", "path_prefix": "/", "upstream": "app"}]
    backends = {b["address"]: b for b in status["upstreams"][0]["backends"]}
    assert backends[a.address]["state"] == "up" and backends[a.address]["why"] is None
    assert backends[dead.address]["state"] == "down", backends[dead.address]
    assert backends[dead.address]["why"] == "connect: connection refused", backends[dead.address]
    for b in backends.values():
        assert b["in_flight"] == 0 and b["passive_ejections"] == 0, b
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*Z", b["since"]), b


def promtool_check(text: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian package 'prometheus', which "
                    "scripts/bootstrap.sh installs)")
    done = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    assert done.returncode == 0, f"promtool check metrics:\n{done.stdout.decode()}"


def known_load(proxy: Sluice) -> None:
    """37 requests: 30 answered 200 (10 of them POSTs with 100-byte bodies) and 7 with no
    route (404); then 5 to a backend answering 503. Each on a fresh connection, so both
    workers take some."""
    for i in range(30):
        body = b"x" * 100 if i % 3 == 0 else None
        with proxy.client() as client:
            response = client.exchange("POST" if body else "GET", f"/ok?{i}", body=body,
                                       host="app.test")
        assert_status(response, 200)
    for i in range(7):
        assert_status(proxy.get(f"/nowhere?{i}", host="other.test"), 404)
    for i in range(5):
        assert_status(proxy.get(f"/bad?{i}", host="bad.test"), 503)


def test_metrics_count_a_known_load_exactly_and_pass_promtool():
    with Backend(ok()) as good, Backend(ok(b"nope", status=503)) as bad:
        config = proxy_config(upstreams={"app": [good], "bad": [bad]},
                              routes=[{"host": "app.test", "upstream": "app"},
                                      {"host": "bad.test", "upstream": "bad"}],
                              upstream={"passive": {"failures": 0}})
        with Sluice(with_admin(config)) as proxy:
            known_load(proxy)
            expected = {
                'sluice_requests_total{route="app.test/",upstream="app",class="2xx"}': 30,
                'sluice_requests_total{route="",upstream="",class="4xx"}': 7,
                'sluice_requests_total{route="bad.test/",upstream="bad",class="5xx"}': 5,
            }
            response = wait_for_page(
                proxy, "/metrics",
                lambda r: all(samples(r.body.decode()).get(k) == v for k, v in expected.items()))
    assert_status(response, 200)
    assert response.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    text = response.body.decode()
    m = samples(text)
    requests = {k: v for k, v in m.items() if k.startswith("sluice_requests_total{") and v}
    assert requests == expected, requests
    assert m['sluice_local_replies_total{status="404"}'] == 7
    assert sum(v for k, v in m.items() if k.startswith("sluice_local_replies_total")) == 7
    assert m['sluice_exchange_outcomes_total{outcome="ok"}'] == 35
    assert m['sluice_exchange_outcomes_total{outcome="local_reply"}'] == 7
    assert m['sluice_request_bytes_total{route="app.test/",upstream="app"}'] == 1000
    assert m['sluice_request_bytes_total{route="bad.test/",upstream="bad"}'] == 0
    assert m['sluice_response_bytes_total{route="app.test/",upstream="app"}'] > 30 * len(b"ok")
    assert m['sluice_upstream_response_seconds_count{upstream="app"}'] == 30
    assert m['sluice_upstream_response_seconds_count{upstream="bad"}'] == 5
    assert m['sluice_upstream_response_seconds_bucket{upstream="app",le="+Inf"}'] == 30
    assert m[f'sluice_backend_response_seconds_count{{upstream="app",backend="{good.address}"}}'] == 30
    assert m[f'sluice_backend_response_seconds_count{{upstream="bad",backend="{bad.address}"}}'] == 5
    # Each proxied request took one connection: a new one or one from the pool.
    assert m["sluice_upstream_connections_opened_total"] + \
        m["sluice_upstream_connections_reused_total"] == 35
    assert m["sluice_upstream_connections_opened_total"] >= 2
    assert m["sluice_retries_total"] == 0
    assert m["sluice_client_connections_accepted_total"] >= 42
    assert m["sluice_client_connections_open"] >= 1  # this scrape's own connection
    assert m[f'sluice_backend_up{{upstream="bad",backend="{bad.address}"}}'] == 1
    assert m[f'sluice_backend_ejections_total{{upstream="bad",backend="{bad.address}"}}'] == 0
    assert m['sluice_config_reloads_total{outcome="ok"}'] == 0
    assert m["sluice_access_log_lines_dropped_total"] == 0
    promtool_check(text)


def test_a_reload_keeps_the_counters():
    with Backend(ok(b"one")) as one, Backend(ok(b"two")) as two:
        config = with_admin(proxy_config(one, two, upstream={"passive": {"failures": 0}}))
        with Sluice(config) as proxy:
            for i in range(10):
                assert_status(proxy.get(f"/?{i}"), 200)
            series = 'sluice_requests_total{route="*/",upstream="app",class="2xx"}'
            before = wait_for_page(proxy, "/metrics",
                                   lambda r: samples(r.body.decode()).get(series) == 10)
            # New routes ahead of the old one and the backends reordered: the names stay.
            reloaded = dict(config, listeners=[{"address": proxy.address}],
                            routes=[{"host": "new.test", "upstream": "app"}, {"upstream": "app"}])
            reloaded["upstreams"]["app"]["backends"].reverse()
            with open(proxy.config_path, "w") as f:
                json.dump(reloaded, f)
            proxy.send_signal(signal.SIGHUP)
            assert wait_for_log(proxy, r"config reloaded \(generation 2\)", 5), proxy.log_tail()
            wait_for_page(proxy, "/status",
                          lambda r: json.loads(r.body)["config"]["generation"] == 2)
            after_reload = samples(admin(proxy, "/metrics").body.decode())
            for i in range(3):
                assert_status(proxy.get(f"/?{i}"), 200)
            after = wait_for_page(proxy, "/metrics",
                                  lambda r: samples(r.body.decode()).get(series) == 13)
    m_before, m_after = samples(before.body.decode()), samples(after.body.decode())
    assert m_before[series] == 10
    assert after_reload[series] >= 10, f"the counter went back to {after_reload[series]}"
    assert m_after[series] == 13, m_after[series]
    assert m_after['sluice_config_reloads_total{outcome="ok"}'] == 1
    assert m_after['sluice_requests_total{route="new.test/",upstream="app",class="2xx"}'] == 0
    for backend in (one, two):
        key = f'sluice_backend_response_seconds_count{{upstream="app",backend="{backend.address}"}}'
        assert m_after[key] >= m_before[key], key
    assert sum(m_after[f'sluice_backend_response_seconds_count{{upstream="app",backend="{b.address}"}}']
               for b in (one, two)) == 13
