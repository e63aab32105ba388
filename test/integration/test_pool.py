"""The upstream connection pool: an idle connection waits at most keepalive_timeout_ms, and no
more than `keepalive` of them stay open per backend and worker."""

import time

from harness import Backend, Sluice, assert_status, ok, proxy_config


def test_idle_pooled_connection_is_closed_after_keepalive_timeout_ms():
    settings = {"keepalive_timeout_ms": 300}
    with Backend(ok()) as backend, \
            Sluice(proxy_config(backend, workers=1, upstream=settings)) as proxy:
        assert_status(proxy.get("/"), 200)
        idle_since = time.monotonic()
        closed = backend.wait_event(("closed",), 3.0)
    assert closed is not None, "pooled connection still open 3 s into a 300 ms keepalive timeout"
    idle = closed[0] - idle_since
    assert 0.2 <= idle < 1.0, f"pooled connection closed after {idle:.2f} s idle (timeout 300 ms)"


def test_idle_pooled_connections_beyond_keepalive_are_closed():
    def answer_once_four_are_in(ex):
        ex.read_body()
        ex.backend.wait_for(lambda b: len(b.requests) >= 4, 3.0)
        ex.respond(200, b"together")

    with Backend(answer_once_four_are_in) as backend, \
            Sluice(proxy_config(backend, workers=1, upstream={"keepalive": 1})) as proxy:
        clients = [proxy.client() for _ in range(4)]
        try:
            for i, client in enumerate(clients):
                client.request("GET", f"/{i}")
            responses = [client.read_final_response() for client in clients]
        finally:
            for client in clients:
                client.close()
        assert [(r.status, r.body) for r in responses] == [(200, b"together")] * 4, responses
        assert backend.connections == 4, f"4 concurrent requests came on {backend.connections}"
        backend.wait_for(lambda b: b.open_connections() <= 1, 2.0)
        time.sleep(0.2)  # a connection closed late would be seen by now
        still_open = backend.open_connections()
    assert still_open == 1, f"{still_open} idle upstream connections left open with keepalive 1"
