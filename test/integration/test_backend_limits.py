"""max_connections per backend with its upstream's wait queue: a slow backend never sees more
requests at once than its limit, the requests past it wait and are served in turn, or get 503
when queue_timeout_ms passes or the queue (queue_max) is full, and a second backend with room
keeps serving while the slow one is full. Each test stops by itself within a few seconds."""

import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from harness import HOST, Backend, Client, Sluice, assert_status, free_port, ok, proxy_config


class InFlight:
    """Requests a backend is working on, counted by its handler: now and the most at once."""

    def __init__(self):
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def enter(self):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def leave(self):
        with self.lock:
            self.now -= 1


def slow(counter: InFlight, seconds: float, body: bytes = b"slow"):
    """Works `seconds` on each request. The count drops before the answer leaves, so the
    proxy's next request can never meet this one still counted."""
    def handler(ex):
        ex.read_body()
        counter.enter()
        time.sleep(seconds)
        counter.leave()
        ex.respond(200, body)
    return handler


def concurrent_gets(proxy: Sluice, count: int, timeout: float = 15.0):
    """`count` GETs at once, each on its own connection: [(response, seconds it took)]."""
    start = threading.Barrier(count)

    def one(i):
        with proxy.client(timeout) as client:
            start.wait()
            began = time.monotonic()
            response = client.exchange("GET", f"/r{i}")
            return response, time.monotonic() - began

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def limited(backend, limit: int, **upstream) -> dict:
    return proxy_config({"address": backend.address, "max_connections": limit}, workers=1,
                        upstream=upstream)


def test_a_slow_backend_never_has_more_than_max_connections_and_the_rest_wait_their_turn():
    counter = InFlight()
    with Backend(slow(counter, 0.3)) as backend:
        # Two workers, 2 over 2: one each, so never more than two at the backend.
        config = proxy_config({"address": backend.address, "max_connections": 2}, workers=2,
                              upstream={"queue_timeout_ms": 10000})
        with Sluice(config) as proxy:
            results = concurrent_gets(proxy, 10)
    for response, _ in results:
        assert_status(response, 200)
        assert response.body == b"slow"
    assert counter.most <= 2, f"{counter.most} requests at the backend at once"
    assert len(backend.requests) == 10
    # Idle connections are capped like busy ones: each worker kept reusing its one.
    assert backend.connections <= 2, f"{backend.connections} connections opened"


def test_one_worker_holds_exactly_max_connections_in_flight():
    counter = InFlight()
    with Backend(slow(counter, 0.3)) as backend:
        with Sluice(limited(backend, 2, queue_timeout_ms=10000)) as proxy:
            results = concurrent_gets(proxy, 10)
    assert [r.status for r, _ in results] == [200] * 10
    assert counter.most == 2
    # Ten requests two at a time, 0.3 s each: the last ones waited four turns.
    assert max(seconds for _, seconds in results) >= 1.2


def test_requests_that_wait_longer_than_queue_timeout_ms_get_503():
    counter = InFlight()
    with Backend(slow(counter, 1.0)) as backend:
        with Sluice(limited(backend, 2, queue_timeout_ms=200)) as proxy:
            results = concurrent_gets(proxy, 10)
            # The proxy is fine afterwards: with the backend free again, requests pass.
            assert_status(proxy.get("/after"), 200)
    served = [(r, s) for r, s in results if r.status == 200]
    refused = [(r, s) for r, s in results if r.status == 503]
    assert len(served) == 2 and len(refused) == 8, [r.status for r, _ in results]
    for response, seconds in refused:
        assert response.header("Retry-After") == "1"
        assert b"queue_timeout_ms" in response.body
        assert 0.15 <= seconds < 0.9, f"503 after {seconds:.3f} s with queue_timeout_ms 200"
    assert counter.most == 2
    assert backend.targets().count("/after") == 1
    assert len(backend.requests) == 3  # the refused ones never reached it


def test_a_full_queue_answers_503_at_once_and_the_queued_ones_are_served():
    counter = InFlight()
    with Backend(slow(counter, 1.0)) as backend:
        with Sluice(limited(backend, 2, queue_max=3, queue_timeout_ms=10000)) as proxy:
            results = concurrent_gets(proxy, 10)
    statuses = sorted(r.status for r, _ in results)
    assert statuses == [200] * 5 + [503] * 5, statuses
    for response, seconds in results:
        if response.status == 503:
            assert b"queue is full" in response.body
            # At once: the first answer from the backend comes only after 1 s.
            assert seconds < 0.8, f"a refusal took {seconds:.3f} s"
    assert counter.most == 2


def test_a_fast_backend_keeps_serving_while_the_slow_one_is_full():
    counter = InFlight()
    with Backend(slow(counter, 2.0)) as slow_backend, Backend(ok(b"fast")) as fast:
        config = proxy_config({"address": slow_backend.address, "max_connections": 1},
                              {"address": fast.address}, workers=1)
        with Sluice(config) as proxy:
            with ThreadPoolExecutor(2) as pool:
                # Round-robin sends one of the two to the slow backend.
                first = [pool.submit(proxy.get, "/first", timeout=10) for _ in range(2)]
                assert slow_backend.wait_for(lambda b: len(b.requests) == 1, 5.0)
                began = time.monotonic()
                answers = [proxy.get(f"/quick{i}") for i in range(20)]
                took = time.monotonic() - began
                first_statuses = [f.result().status for f in first]
    assert first_statuses == [200, 200]
    assert [a.body for a in answers] == [b"fast"] * 20
    assert took < 1.5, f"20 requests took {took:.2f} s while the slow backend was full"
    assert len(slow_backend.requests) <= 2  # only the first ones: it was full meanwhile
    assert counter.most == 1


def test_a_client_that_resets_while_waiting_is_never_sent_to_the_backend():
    counter = InFlight()
    with Backend(slow(counter, 0.6)) as backend:
        with Sluice(limited(backend, 1, queue_timeout_ms=10000)) as proxy:
            with ThreadPoolExecutor(1) as pool:
                first = pool.submit(proxy.get, "/first", timeout=10)
                assert backend.wait_for(lambda b: len(b.requests) == 1, 5.0)
                gone = Client(proxy.port)
                gone.request("GET", "/gone")
                time.sleep(0.1)  # it waits in the queue now
                gone.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                gone.close()  # a reset
                assert_status(proxy.get("/next", timeout=10), 200)
                assert_status(first.result(), 200)
    assert backend.targets() == ["/first", "/next"]


def test_queue_outcomes_are_counted_in_the_metrics():
    counter = InFlight()
    with Backend(slow(counter, 0.8)) as backend:
        config = limited(backend, 1, queue_max=1, queue_timeout_ms=200)
        config["admin"] = {"address": f"{HOST}:{free_port()}"}
        with Sluice(config) as proxy:
            results = concurrent_gets(proxy, 4)
            admin_port = int(config["admin"]["address"].rsplit(":", 1)[1])
            with Client(admin_port) as client:
                text = client.exchange("GET", "/metrics", host="admin").body.decode()
    statuses = sorted(r.status for r, _ in results)
    assert statuses == [200, 503, 503, 503], statuses
    assert 'sluice_exchange_outcomes_total{outcome="queue_full"} 2' in text
    assert 'sluice_exchange_outcomes_total{outcome="queue_timeout"} 1' in text
