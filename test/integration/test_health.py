"""Active health checks, passive ejection, backups and the 503 when nothing is left: a backend
that fails is taken out of rotation without clients noticing, and comes back when it recovers."""

import re
import time

from harness import (Backend, BoundBackend, ClosedPort, HealthSwitch, LoadClients, Sluice,
                     assert_status, bodies, client_requests, is_health_check, ok, proxy_config,
                     served, service, wait_for_log)

# Fast checks, so a state change takes a few hundred milliseconds.
FAST_HEALTH = {"path": "/health", "interval_ms": 200, "timeout_ms": 200, "rise": 2, "fall": 2}


def down_line(backend) -> str:
    return rf"backend {re.escape(backend.address)} is down"


def up_line(backend) -> str:
    return rf"backend {re.escape(backend.address)} is up"


def test_backend_restart_under_load_loses_no_request_and_rejoins_after_rise_checks():
    # Passive ejection is off: it would hold the backend out for ejection_ms after the
    # connect failures of its downtime, which is not what this test is about.
    settings = {"health": FAST_HEALTH, "passive": {"failures": 0}, "retries": 1}
    with BoundBackend(service("a")) as a, Backend(service("b")) as b, \
            Sluice(proxy_config(a, b, upstream=settings)) as proxy:
        with LoadClients(proxy.port, clients=4) as load:
            time.sleep(1.0)
            assert served(a) > 0 and served(b) > 0, \
                f"both backends should serve before the restart: a {served(a)}, b {served(b)}"
            a.kill()
            killed_at = time.monotonic()
            assert wait_for_log(proxy, down_line(a), 3.0), \
                "no 'is down' line within 3 s of the backend dying"
            down_seen = time.monotonic() - killed_at
            time.sleep(1.0)  # clients keep going with only b
            restarted = BoundBackend(service("a"), port=a.port)
            assert wait_for_log(proxy, up_line(a), 3.0), \
                "no 'is up' line within 3 s of the backend coming back"
            time.sleep(1.5)  # traffic reaches the restarted backend again
        results = load.snapshot()
        failures = load.failures()
        b_served = served(b)
    restarted.stop()

    assert len(results) > 100, f"only {len(results)} requests in ~4.5 s of load"
    assert not failures, (f"{len(failures)} of {len(results)} requests failed, first: "
                          f"{failures[:5]} (downtime began at +{killed_at - results[0][0]:.2f} s)")
    assert down_seen < 2.0, f"'is down' took {down_seen:.2f} s with fall 2 x interval 200 ms"
    assert b_served > len(results) / 2, f"b served {b_served} of {len(results)} requests"
    log = restarted.requests
    checks_before = 0
    for request in log:
        if not is_health_check(request):
            break
        checks_before += 1
    assert len(client_requests(restarted)) > 0, \
        f"the restarted backend got no client request in 1.5 s after 'is up' ({len(log)} checks)"
    assert checks_before >= FAST_HEALTH["rise"], \
        (f"the restarted backend got a client request after only {checks_before} health checks "
         f"(rise is {FAST_HEALTH['rise']}); order: "
         f"{['check' if is_health_check(r) else r.target for r in log[:6]]}")


def test_backend_failing_its_health_check_is_taken_down_after_fall_checks():
    sick = HealthSwitch(500)
    with Backend(service("a", sick)) as a, Backend(service("b")) as b, \
            Sluice(proxy_config(a, b, upstream={"health": FAST_HEALTH})) as proxy:
        started = time.monotonic()
        matches = wait_for_log(proxy, down_line(a) + r".*", 3.0)
        took = time.monotonic() - started
        assert matches, "no 'is down' line within 3 s for a backend answering 500"
        line = matches[0].group(0)
        a_checks = [r for r in a.requests if is_health_check(r)]
        before = served(a)
        answers = bodies(proxy, 20)
        time.sleep(0.3)
        after = served(a)
    assert "2 failed checks" in line and "500" in line, f"unexpected log line: {line!r}"
    assert took < 2.0, f"taken down after {took:.2f} s (fall 2 x interval 200 ms)"
    assert len(a_checks) >= FAST_HEALTH["fall"], f"only {len(a_checks)} checks before 'down'"
    assert answers == ["b"] * 20, f"answers after a went down: {answers}"
    assert after == before, f"the down backend got {after - before} requests"


def test_backend_taken_down_under_load_gets_no_further_requests():
    # The sick backend still answers everything but its health path, on pooled connections.
    sick = HealthSwitch(200)
    with Backend(service("a", sick)) as a, Backend(service("b")) as b, \
            Sluice(proxy_config(a, b, upstream={"health": FAST_HEALTH})) as proxy:
        with LoadClients(proxy.port, clients=4) as load:
            time.sleep(0.5)
            assert served(a) > 0, "a served nothing before it fell sick"
            sick.status = 500
            assert wait_for_log(proxy, down_line(a), 3.0), "no 'is down' line within 3 s"
            time.sleep(0.1)  # requests already on their way when the state changed
            a_at_down, b_at_down = served(a), served(b)
            a_connections = a.connections
            time.sleep(1.0)
            a_after, b_after = served(a), served(b)
        failures = load.failures()
    assert not failures, f"{len(failures)} requests failed, first: {failures[:3]}"
    assert b_after - b_at_down > 20, f"b served only {b_after - b_at_down} requests in 1 s"
    assert a_after == a_at_down, \
        (f"a got {a_after - a_at_down} client requests in the 1 s after 'is down' "
         f"({a.connections - a_connections} new connections, health checks included)")


def test_health_checks_send_the_configured_host_header():
    health = {**FAST_HEALTH, "host": "health.internal.test"}
    with Backend(service("a")) as a, Sluice(proxy_config(a, upstream={"health": health})):
        assert a.wait_for(lambda b: sum(map(is_health_check, b.requests)) >= 2, 3.0), \
            "fewer than 2 health checks in 3 s at a 200 ms interval"
    hosts = [r.header_values("Host") for r in a.requests if is_health_check(r)]
    assert hosts and all(h == ["health.internal.test"] for h in hosts), \
        f"Host headers of the health checks: {hosts}"


def test_backup_gets_traffic_only_while_every_primary_is_down():
    health_a, health_b = HealthSwitch(200), HealthSwitch(200)
    with Backend(service("a", health_a)) as a, Backend(service("b", health_b)) as b, \
            Backend(service("spare")) as spare:
        backends = [a, b, {"address": spare.address, "backup": True}]
        with Sluice(proxy_config(*backends, upstream={"health": FAST_HEALTH})) as proxy:
            time.sleep(0.5)  # a few checks pass
            primaries_up = bodies(proxy, 12)
            health_a.status = 500
            assert wait_for_log(proxy, down_line(a), 3.0), "a not taken down"
            one_primary = bodies(proxy, 8)
            health_b.status = 500
            assert wait_for_log(proxy, down_line(b), 3.0), "b not taken down"
            all_down = bodies(proxy, 8)
            health_a.status = 200
            assert wait_for_log(proxy, up_line(a), 3.0), "a not brought back up"
            primary_back = bodies(proxy, 8)
    assert set(primaries_up) == {"a", "b"}, f"with both primaries up: {primaries_up}"
    assert one_primary == ["b"] * 8, f"with one primary up: {one_primary}"
    assert all_down == ["spare"] * 8, f"with every primary down: {all_down}"
    assert primary_back == ["a"] * 8, f"once a primary is back: {primary_back}"


def test_every_backend_down_gives_503_with_retry_after_naming_the_upstream():
    with ClosedPort() as dead1, ClosedPort() as dead2:
        config = proxy_config(upstreams={"catalog": [dead1, dead2]},
                              upstream={"health": FAST_HEALTH})
        with Sluice(config) as proxy:
            assert wait_for_log(proxy, rf"backend ({re.escape(dead1.address)}|"
                                       rf"{re.escape(dead2.address)}) is down", 3.0, count=2), \
                "both unreachable backends should be down within 3 s"
            started = time.monotonic()
            response = proxy.get("/items")
            elapsed = time.monotonic() - started
    assert_status(response, 503)
    assert response.header("retry-after") is not None, \
        f"503 without Retry-After:\n{response.describe()}"
    assert re.fullmatch(r"\d+", response.header("retry-after")), response.describe()
    assert b"catalog" in response.body, f"503 body does not name the upstream: {response.body!r}"
    assert elapsed < 1.0, f"the 503 took {elapsed:.2f} s"


def test_backend_answering_5xx_is_ejected_after_failures_then_let_back_in():
    def bad_gateway(ex):
        ex.read_body()
        ex.respond(502, b"bad")

    passive = {"failures": 3, "ejection_ms": 2500, "max_ejection_ms": 60000}
    with Backend(bad_gateway) as bad, Backend(ok(b"good")) as good, \
            Sluice(proxy_config(bad, good, workers=1, upstream={"passive": passive})) as proxy:
        statuses = []
        for i in range(12):
            statuses.append(proxy.get(f"/warm/{i}").status)
            if wait_for_log(proxy, r"ejected", 0):
                break
        matches = wait_for_log(proxy, rf"backend {re.escape(bad.address)} ejected for (\d+) ms "
                                      rf"after (\d+) failures", 1.0)
        assert matches, f"no ejection line after {statuses.count(502)} 502s: {statuses}"
        ejected_at = time.monotonic()
        failures_at_ejection = served(bad)
        during = bodies_and_statuses(proxy, 20)
        quiet_until = time.monotonic() - ejected_at
        after_ejection = served(bad)
        back = wait_for_log(proxy, rf"backend {re.escape(bad.address)} back in", 4.0)
        back_after = time.monotonic() - ejected_at
        later = bodies_and_statuses(proxy, 6)
        again = wait_for_log(proxy, rf"backend {re.escape(bad.address)} ejected for (\d+) ms",
                             1.0, count=2)
    assert matches[0].group(1) == "2500" and matches[0].group(2) == "3", matches[0].group(0)
    assert failures_at_ejection == 3, f"ejected after {failures_at_ejection} requests, not 3"
    assert quiet_until < 2.0, f"the 20 requests took {quiet_until:.1f} s: test too slow to judge"
    assert during == [(200, "good")] * 20, f"while ejected: {during}"
    assert after_ejection == failures_at_ejection, \
        f"the ejected backend got {after_ejection - failures_at_ejection} requests"
    assert back, "no 'back in' line within 4 s of a 2.5 s ejection"
    assert back_after >= 2.3, f"let back in {back_after:.2f} s into a 2.5 s ejection"
    assert served(bad) > after_ejection, f"not tried again once back in: {later}"
    assert again and again[1].group(1) == "5000", \
        "one failure on probation should eject it again for twice as long"


def test_backend_refusing_connections_is_ejected_and_not_tried_again():
    # No retries: every connect to the closed port then shows as a 502 and a log line.
    passive = {"failures": 2, "ejection_ms": 60000, "max_ejection_ms": 60000}
    settings = {"passive": passive, "retries": 0}
    with ClosedPort() as dead, Backend(service("alive")) as alive, \
            Sluice(proxy_config(dead, alive, workers=1, upstream=settings)) as proxy:
        statuses = []
        for i in range(8):
            statuses.append(proxy.get(f"/warm/{i}").status)
            if wait_for_log(proxy, r"ejected", 0):
                break
        matches = wait_for_log(proxy, rf"backend {re.escape(dead.address)} ejected for (\d+) ms "
                                      rf"after (\d+) failures in a row \(last: ([^)]*)\)", 1.0)
        assert matches, f"no ejection line after {statuses.count(502)} 502s: {statuses}"
        alive_at_ejection = served(alive)
        after = bodies_and_statuses(proxy, 20)
        time.sleep(0.2)
        log = proxy.log_text()
    # Each failed connect logs its 502 (the one that ejects, just after the ejection line).
    tries = re.findall(rf"backend {re.escape(dead.address)}: 502 .*", log)
    assert matches[0].group(1) == "60000" and matches[0].group(2) == "2", matches[0].group(0)
    assert "refused" in matches[0].group(3), f"ejection reason: {matches[0].group(0)}"
    assert statuses.count(502) == 2, f"ejected after {statuses.count(502)} connect failures"
    assert after == [(200, "alive")] * 20, f"while ejected: {after}"
    assert served(alive) - alive_at_ejection == 20
    assert len(tries) == 2, \
        f"the closed port was tried {len(tries) - 2} times after its ejection: {tries[2:5]}"


def bodies_and_statuses(proxy, count):
    out = []
    for i in range(count):
        response = proxy.get(f"/n/{i}")
        out.append((response.status, response.body.decode()))
    return out
