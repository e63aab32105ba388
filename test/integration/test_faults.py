"""Backends that refuse, reset, close, go stale or die mid-response, and clients that go away:
each ends in a clear status or a clean close, never a hang."""

import time

from harness import (Backend, ClosedPort, ConnectionClosed, MiB, Sluice, assert_status,
                     close_without_answer, die_mid_response, ok, proxy_config,
                     reset_before_answer, stream)


def timed_get(proxy, target="/", timeout=6.0):
    """(response, seconds it took) for one GET on a fresh connection."""
    started = time.monotonic()
    response = proxy.get(target, timeout=timeout)
    return response, time.monotonic() - started


def test_unreachable_backend_gives_502():
    with ClosedPort() as dead, Sluice(proxy_config(dead)) as proxy:
        response, elapsed = timed_get(proxy)
    assert_status(response, 502)
    assert elapsed < 3, f"502 took {elapsed:.1f} s"


def test_connect_failure_fails_over_to_the_next_backend():
    with ClosedPort() as dead, Backend(ok(b"alive")) as alive, \
            Sluice(proxy_config(dead, alive, workers=1, upstream={"retries": 1})) as proxy:
        responses = [proxy.get("/") for _ in range(4)]
    assert [(r.status, r.body) for r in responses] == [(200, b"alive")] * 4


def test_backend_reset_before_responding_gives_502():
    with Backend(reset_before_answer()) as backend, Sluice(proxy_config(backend)) as proxy:
        response, elapsed = timed_get(proxy)
    assert_status(response, 502)
    assert elapsed < 3, f"502 took {elapsed:.1f} s"


def test_backend_closing_without_responding_gives_502():
    with Backend(close_without_answer()) as backend, Sluice(proxy_config(backend)) as proxy:
        response, elapsed = timed_get(proxy)
    assert_status(response, 502)
    assert elapsed < 3, f"502 took {elapsed:.1f} s"


def test_pooled_connection_closed_by_idle_backend_is_not_reused():
    def answer_then_close_when_idle(ex):
        ex.read_body()
        ex.respond(200, b"fresh")  # keep-alive, as far as sluice can tell
        time.sleep(0.2)
        ex.close()

    with Backend(answer_then_close_when_idle) as backend, Sluice(proxy_config(backend)) as proxy, \
            proxy.client() as client:
        first = client.exchange("GET", "/first")
        time.sleep(1.0)
        second = client.exchange("GET", "/second")
    assert_status(first, 200)
    assert_status(second, 200)
    assert second.body == b"fresh"


def test_request_on_stale_pooled_connection_is_retried_on_a_fresh_one():
    def close_on_second_request(ex):
        ex.read_body()
        if ex.index > 0:
            ex.close()  # the keep-alive race: the backend gave up just as the request came
        else:
            ex.respond(200, b"fresh")

    with Backend(close_on_second_request) as backend, Sluice(proxy_config(backend)) as proxy, \
            proxy.client() as client:
        first = client.exchange("GET", "/first")
        time.sleep(0.1)
        second = client.exchange("GET", "/second")
    assert_status(first, 200)
    assert_status(second, 200)
    assert second.body == b"fresh"
    assert backend.targets() == ["/first", "/second", "/second"], \
        f"expected the pooled try, then a retry on a new connection: {backend.targets()}"


def test_post_reset_before_any_response_byte_is_not_resent():
    def answer_get_reset_post(ex):
        ex.read_body()
        if ex.request.method == "POST":
            ex.reset()
        else:
            ex.respond(200, b"warm")

    with Backend(answer_get_reset_post) as backend, \
            Sluice(proxy_config(backend, workers=1, upstream={"retries": 1})) as proxy, \
            proxy.client() as client:
        warm = client.exchange("GET", "/warm")  # the POST then goes on a reused connection
        response = client.exchange("POST", "/order", body=b"buy one")
        time.sleep(0.3)  # a resent POST would arrive by now
    assert_status(warm, 200)
    assert_status(response, 502)
    assert backend.requests[1].connection == backend.requests[0].connection, \
        "the POST did not go on the pooled connection"
    posts = [r for r in backend.requests if r.method == "POST"]
    assert len(posts) == 1, f"the backend saw the POST {len(posts)} times: {backend.targets()}"


def test_get_whose_backend_dies_mid_response_is_not_resent():
    dying = die_mid_response(1_000_000, 1000)
    with Backend(dying) as a, Backend(dying) as b, \
            Sluice(proxy_config(a, b, workers=1, upstream={"retries": 1})) as proxy, \
            proxy.client() as client:
        client.request("GET", "/once")
        response = client.read_head()
        assert_status(response, 200)
        assert client.wait_closed(3.0), "client connection left open after a truncated body"
        time.sleep(0.3)  # a resent GET would arrive by now
    seen = a.targets() + b.targets()
    assert seen == ["/once"], f"the backends saw {seen} for one GET that died mid-response"


def test_backend_dying_mid_response_closes_the_client_connection():
    with Backend(die_mid_response(1_000_000, 1000)) as backend, \
            Sluice(proxy_config(backend)) as proxy, proxy.client() as client:
        started = time.monotonic()
        client.request("GET", "/")
        response = client.read_head()
        received = 0
        if response.status != 502:
            assert_status(response, 200)
            try:
                for piece in client.body_pieces(response):
                    received += len(piece)
            except ConnectionClosed:
                pass
        elapsed = time.monotonic() - started
        assert client.wait_closed(1.0), "client connection left open after a truncated body"
    assert received < 1_000_000, "client got the whole body the backend never sent"
    assert elapsed < 5, f"the truncated response took {elapsed:.1f} s to end"


def test_client_disconnect_mid_response_closes_the_backend_connection():
    slow_endless = stream(100 * MiB, piece=16 * 1024, delay=0.02)
    with Backend(slow_endless) as backend, Sluice(proxy_config(backend)) as proxy:
        client = proxy.client()
        client.request("GET", "/endless")
        response = client.read_head()
        assert_status(response, 200)
        client.recv_exact(64 * 1024)
        client.close()
        closed_at = time.monotonic()
        event = backend.wait_event(("send_failed", "peer_closed"), timeout=5)
    assert event is not None, "backend kept streaming 5 s after the client went away"
    assert event[0] - closed_at < 2.5, f"backend noticed after {event[0] - closed_at:.1f} s"
