"""A passively ejected backend that recovers: with active checks, `rise` passing checks in a row
end its ejection early and it gets traffic again at once; without them it stays out for its
whole ejection time."""

import re
import time

from harness import Backend, HealthSwitch, Sluice, proxy_config, service, wait_for_log

HEALTH = {"path": "/health", "interval_ms": 200, "timeout_ms": 200, "rise": 2, "fall": 2}


def switched(name: str, switch: HealthSwitch, events: list):
    """Answers every request, health checks included, with switch.status (the body `name` for
    client requests); notes ("check" or "client", status) in `events` for each answer."""
    def handler(ex):
        ex.read_body()
        status = switch.status
        check = ex.request.target == HEALTH["path"]
        events.append(("check" if check else "client", status))
        ex.respond(status, b"health" if check else name.encode())
    return handler


def eject(proxy, backend) -> re.Match:
    """Sends requests until `backend` (answering 5xx) is ejected; returns the ejection line."""
    for i in range(20):
        proxy.get(f"/warm/{i}")
        if wait_for_log(proxy, r"ejected", 0):
            break
    matches = wait_for_log(proxy, rf"backend {re.escape(backend.address)} ejected for (\d+) ms",
                           1.0)
    assert matches, "the backend answering 502 was not ejected"
    return matches[0]


def first_answer_from(proxy, name: str, within: float) -> float | None:
    """When (time.monotonic()) a request was first answered with body `name`, sending one every
    20 ms; None if none was within `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proxy.get("/n").body == name.encode():
            return time.monotonic()
        time.sleep(0.02)
    return None


def test_ejected_backend_passing_rise_checks_gets_traffic_long_before_its_ejection_ends():
    switch, events = HealthSwitch(502), []
    settings = {"health": HEALTH, "retries": 0,
                "passive": {"failures": 3, "ejection_ms": 30000, "max_ejection_ms": 60000}}
    with Backend(switched("a", switch, events)) as a, Backend(service("b")) as b, \
            Sluice(proxy_config(a, b, workers=1, upstream=settings)) as proxy:
        ejection = eject(proxy, a)
        # Still sick: its checks fail and it stays out.
        time.sleep(1.0)
        while_sick = first_answer_from(proxy, "a", 0.3)
        let_back_while_sick = wait_for_log(proxy, r"back in", 0)
        switch.status = 200
        recovered_at = time.monotonic()
        answered_at = first_answer_from(proxy, "a", 5.0)
        back = wait_for_log(proxy, rf"backend {re.escape(a.address)} back in (.*)", 0.5)
    assert ejection.group(1) == "30000", ejection.group(0)
    assert while_sick is None and not let_back_while_sick, \
        "a backend still failing its checks was let back in"
    assert answered_at is not None, "no request reached the recovered backend within 5 s"
    took = answered_at - recovered_at
    rise, interval = HEALTH["rise"], HEALTH["interval_ms"] / 1000
    assert took < rise * interval + 1.0, \
        f"traffic came back {took:.2f} s after the recovery (rise {rise} x interval {interval} s)"
    assert back and "2 passing checks" in back[0].group(1), \
        f"log line: {back[0].group(0) if back else None}"
    # Before its first client request since recovering, the backend passed `rise` checks in a row.
    recovered = events.index(("check", 200))
    first_client = events.index(("client", 200))
    before = events[recovered:first_client]
    assert len(before) >= rise and before == [("check", 200)] * len(before), \
        f"answers between the recovery and its first client request: {before}"


def test_ejected_backend_without_active_checks_stays_out_for_its_whole_ejection():
    switch, events = HealthSwitch(502), []
    settings = {"retries": 0,
                "passive": {"failures": 3, "ejection_ms": 1500, "max_ejection_ms": 60000}}
    with Backend(switched("a", switch, events)) as a, Backend(service("b")) as b, \
            Sluice(proxy_config(a, b, workers=1, upstream=settings)) as proxy:
        eject(proxy, a)
        ejected_at = time.monotonic()
        switch.status = 200  # recovered at once; nothing checks it
        answered_at = first_answer_from(proxy, "a", 4.0)
        back = wait_for_log(proxy, rf"backend {re.escape(a.address)} back in (.*)", 0.5)
    assert answered_at is not None, "the backend was not let back within 4 s of a 1.5 s ejection"
    took = answered_at - ejected_at
    assert took >= 1.3, f"let back {took:.2f} s into a 1.5 s ejection"
    assert took < 1.5 + 1.0, f"let back {took:.2f} s into a 1.5 s ejection: over 1 s late"
    assert back and back[0].group(1) == "after its ejection", back[0].group(0) if back else None
