"""Requests and responses pass through intact: bodies, framing, keep-alive, pipelining,
interim responses, upgrades and HTTP/1.0 clients."""

import os
import time

from harness import (Backend, ClosedPort, Sluice, assert_status, chunked, echo, echo_target, hang,
                     ok, proxy_config, request_bytes, upgrade_echo)


def test_get_is_proxied_with_body_intact():
    body = os.urandom(50_000)
    with Backend(ok(body)) as backend, Sluice(proxy_config(backend)) as proxy:
        response = proxy.get("/hello?name=world")
    assert_status(response, 200)
    assert response.body == body
    assert [(r.method, r.target) for r in backend.requests] == [("GET", "/hello?name=world")]


def test_request_body_with_content_length_reaches_backend_intact():
    body = os.urandom(100_000)
    with Backend(echo()) as backend, Sluice(proxy_config(backend)) as proxy, proxy.client() as client:
        response = client.exchange("POST", "/upload", body=body)
    assert_status(response, 200)
    assert response.body == body
    assert backend.requests[0].body == body


def test_round_robin_alternates_between_two_backends():
    with Backend(ok(b"a")) as a, Backend(ok(b"b")) as b, \
            Sluice(proxy_config(a, b, workers=1)) as proxy:
        bodies = [proxy.get("/").body for _ in range(6)]
    assert sorted(bodies) == [b"a"] * 3 + [b"b"] * 3, bodies
    assert all(x != y for x, y in zip(bodies, bodies[1:])), f"not alternating: {bodies}"


def test_client_connection_is_kept_alive_across_requests():
    with Backend(echo_target()) as backend, Sluice(proxy_config(backend)) as proxy, \
            proxy.client() as client:
        for i in range(5):
            response = client.exchange("GET", f"/request-{i}")
            assert_status(response, 200)
            assert response.body == f"/request-{i}".encode()
        assert not client.wait_closed(0.2), "sluice closed a keep-alive connection"


def test_upstream_connections_are_reused_across_requests():
    with Backend(ok()) as backend, Sluice(proxy_config(backend, workers=2)) as proxy:
        for _ in range(8):
            assert_status(proxy.get("/"), 200)
    assert len(backend.requests) == 8
    assert backend.connections <= 2, \
        f"backend saw {backend.connections} connections for 8 sequential requests (2 workers)"


def test_pipelined_requests_are_answered_in_order():
    def slow_first(ex):
        if ex.request.target == "/1":
            time.sleep(0.2)
        echo_target()(ex)

    with Backend(slow_first) as backend, Sluice(proxy_config(backend)) as proxy, \
            proxy.client() as client:
        client.send(b"".join(request_bytes("GET", f"/{i}") for i in (1, 2, 3)))
        bodies = [client.read_final_response().body for _ in range(3)]
    assert bodies == [b"/1", b"/2", b"/3"]


def test_chunked_request_body_is_forwarded_intact():
    pieces = [b"hello", b" ", os.urandom(5000), b"world"]
    with Backend(echo()) as backend, Sluice(proxy_config(backend)) as proxy, proxy.client() as client:
        client.send(request_bytes("POST", "/", [("Transfer-Encoding", "chunked")])
                    + chunked(*pieces, extension=";name=value"))
        response = client.read_final_response()
    assert_status(response, 200)
    assert backend.requests[0].body == b"".join(pieces)
    assert response.body == b"".join(pieces)


def test_chunked_request_body_arriving_in_pieces_is_forwarded_intact():
    pieces = [b"first", os.urandom(20_000), b"last"]
    with Backend(echo()) as backend, Sluice(proxy_config(backend)) as proxy, proxy.client() as client:
        client.send(request_bytes("POST", "/", [("Transfer-Encoding", "chunked")]))
        for piece in pieces:
            time.sleep(0.05)
            client.send(b"%x\r\n%s\r\n" % (len(piece), piece))
        client.send(b"0\r\n\r\n")
        response = client.read_final_response()
    assert_status(response, 200)
    assert backend.requests[0].body == b"".join(pieces)
    assert response.body == b"".join(pieces)


def test_chunked_response_is_relayed_intact():
    pieces = [b"hello ", os.urandom(30_000), b" world"]

    def handler(ex):
        ex.read_body()
        ex.send_head(200, [("Transfer-Encoding", "chunked")])
        for piece in pieces:
            ex.send_chunk(piece)
            time.sleep(0.02)
        ex.end_chunks()

    with Backend(handler) as backend, Sluice(proxy_config(backend)) as proxy:
        response = proxy.get("/")
    assert_status(response, 200)
    assert response.body == b"".join(pieces)


def test_close_delimited_response_is_relayed_intact():
    body = os.urandom(40_000)

    def handler(ex):
        ex.read_body()
        ex.respond(200, body, framing="close")

    with Backend(handler) as backend, Sluice(proxy_config(backend)) as proxy:
        response = proxy.get("/")
    assert_status(response, 200)
    assert response.body == body


def answers_then_follow_up(status, headers=()):
    """A handler giving `status` with no body to /first and "follow-up" to anything else."""
    def handler(ex):
        ex.read_body()
        if ex.request.target == "/first":
            ex.respond(status, headers=headers, framing="none")
        else:
            ex.respond(200, b"follow-up")
    return handler


def assert_no_body_then_usable(status, method="GET", headers=(), backend_headers=()):
    with Backend(answers_then_follow_up(status, backend_headers)) as backend, \
            Sluice(proxy_config(backend)) as proxy, proxy.client() as client:
        first = client.exchange(method, "/first", headers)
        follow_up = client.exchange("GET", "/second")
    assert_status(first, status)
    assert first.body == b""
    assert_status(follow_up, 200)
    assert follow_up.body == b"follow-up"


def test_head_response_has_no_body_and_connection_stays_usable():
    assert_no_body_then_usable(200, "HEAD", backend_headers=[("Content-Length", "1234")])


def test_204_response_has_no_body_and_connection_stays_usable():
    assert_no_body_then_usable(204)


def test_304_response_has_no_body_and_connection_stays_usable():
    assert_no_body_then_usable(304, headers=[("If-None-Match", '"v1"')],
                               backend_headers=[("ETag", '"v1"'), ("Content-Length", "100")])


def test_expect_100_continue_gets_interim_response_before_body():
    def handler(ex):
        if "100-continue" in ex.request.tokens("expect"):
            ex.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        ex.respond(200, ex.read_body())

    with Backend(handler) as backend, Sluice(proxy_config(backend)) as proxy, proxy.client() as client:
        client.request("POST", "/upload", [("Content-Length", "11"), ("Expect", "100-continue")])
        interim = client.read_response()
        client.send(b"hello world")
        final = client.read_final_response()
    assert_status(interim, 100)
    assert_status(final, 200)
    assert final.body == b"hello world"


def test_expect_100_continue_answered_with_a_final_status_reaches_the_client_then_closes():
    def refuse_expectation(ex):
        ex.respond(417, b"no uploads here")  # no 100, and the body is never read
        ex.wait_closed(5.0)
        ex.close()

    with Backend(refuse_expectation) as backend, Sluice(proxy_config(backend)) as proxy, \
            proxy.client() as client:
        started = time.monotonic()
        client.request("POST", "/upload", [("Content-Length", "11"), ("Expect", "100-continue")])
        response = client.read_response()  # the body is never sent
        elapsed = time.monotonic() - started
        closed = client.wait_closed(3.0)
    assert_status(response, 417)
    assert response.body == b"no uploads here"
    assert elapsed < 2, f"the 417 took {elapsed:.1f} s"
    # The request body never came, so no next request can be found on this connection.
    assert "close" in response.tokens("connection"), \
        f"417 without Connection: close for a request whose body never came:\n{response.describe()}"
    assert closed, "connection left open 3 s after a 417 to a request whose body never came"


def test_upgrade_tunnels_bytes_both_ways():
    greeting = b"hello from the backend"
    headers = [("Connection", "Upgrade"), ("Upgrade", "websocket"),
               ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
    with Backend(upgrade_echo(greeting)) as backend, Sluice(proxy_config(backend)) as proxy, \
            proxy.client() as client:
        client.request("GET", "/socket", headers)
        switched = client.read_response()
        assert_status(switched, 101)
        assert client.recv_exact(len(greeting)) == greeting
        for message in (b"ping", os.urandom(200_000), b"pong"):
            client.send(message)
            assert client.recv_exact(len(message)) == message
    seen = backend.requests[0]
    assert "websocket" in seen.tokens("upgrade"), seen.describe()
    assert "upgrade" in seen.tokens("connection"), seen.describe()


def test_declined_upgrade_leaves_the_connection_usable():
    # The backend answers 200 instead of 101: what follows on the connection is HTTP again.
    headers = [("Connection", "Upgrade"), ("Upgrade", "websocket"),
               ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
    with Backend(echo_target()) as backend, Sluice(proxy_config(backend)) as proxy, \
            proxy.client(timeout=3.0) as client:
        declined = client.exchange("GET", "/socket", headers)
        assert_status(declined, 200)
        assert declined.body == b"/socket"
        try:
            after = client.exchange("GET", "/after")
        except AssertionError as timeout:
            raise AssertionError("after a declined upgrade the connection did not answer a "
                                 f"second request within 3 s ({timeout}); the backend saw "
                                 f"{backend.targets()}") from None
    assert_status(after, 200)
    assert after.body == b"/after"


def test_http10_request_without_host_is_proxied():
    with Backend(ok(b"old client")) as backend, Sluice(proxy_config(backend)) as proxy, \
            proxy.client() as client:
        client.send(b"GET /old HTTP/1.0\r\n\r\n")
        response = client.read_final_response()
    assert_status(response, 200)
    assert response.body == b"old client"
    assert backend.requests[0].target == "/old"


def test_http10_request_without_host_reaches_the_backend_with_a_host_header():
    def strict_http11(ex):  # as RFC 9112 requires of a server: no Host, 400
        ex.read_body()
        if ex.request.has("Host"):
            ex.respond(200, b"has host")
        else:
            ex.respond(400, b"no host")

    with Backend(strict_http11) as backend, Sluice(proxy_config(backend)) as proxy, \
            proxy.client() as client:
        client.send(b"GET /old HTTP/1.0\r\n\r\n")
        response = client.read_final_response()
    seen = backend.requests[0]
    assert len(seen.header_values("Host")) == 1, f"backend received:\n{seen.describe()}"
    assert_status(response, 200)


def test_http10_connection_closes_after_the_response():
    with Backend(ok(b"old client")) as backend, Sluice(proxy_config(backend)) as proxy, \
            proxy.client() as client:
        client.send(b"GET / HTTP/1.0\r\nHost: sluice.test\r\n\r\n")
        response = client.read_final_response()
        assert_status(response, 200)
        assert response.body == b"old client"
        assert client.wait_closed(2.0), "connection to an HTTP/1.0 client left open"


def test_chunked_upstream_response_reaches_http10_client_dechunked():
    pieces = [b"one ", os.urandom(10_000), b" three"]

    def handler(ex):
        ex.read_body()
        ex.send_head(200, [("Transfer-Encoding", "chunked")])
        for piece in pieces:
            ex.send_chunk(piece)
        ex.end_chunks()

    with Backend(handler) as backend, Sluice(proxy_config(backend)) as proxy, \
            proxy.client() as client:
        client.send(b"GET / HTTP/1.0\r\n\r\n")
        response = client.read_final_response()
        assert_status(response, 200)
        assert "chunked" not in response.tokens("transfer-encoding"), response.describe()
        assert response.body == b"".join(pieces)
        assert client.wait_closed(2.0), "connection to an HTTP/1.0 client left open"


def test_upgrade_request_answered_by_the_proxy_itself_leaves_the_connection_usable():
    # No backend to switch protocols: Sluice answers 502 itself, and HTTP goes on.
    headers = [("Connection", "Upgrade"), ("Upgrade", "websocket"),
               ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
    with ClosedPort() as closed, Sluice(proxy_config(closed)) as proxy, \
            proxy.client(timeout=3.0) as client:
        assert_status(client.exchange("GET", "/socket", headers), 502)
        try:
            after = client.exchange("GET", "/after")
        except AssertionError as timeout:
            raise AssertionError("after a local answer to an Upgrade request the connection did "
                                 f"not answer a second request within 3 s ({timeout})") from None
    assert_status(after, 502)


def test_expect_100_continue_to_a_silent_backend_gets_504_not_408():
    # The client waits for 100 Continue before sending its body: the silent one is the backend.
    with Backend(hang()) as backend, \
            Sluice(proxy_config(backend, timeouts={"upstream_response_ms": 500})) as proxy, \
            proxy.client(timeout=5.0) as client:
        client.request("POST", "/upload", [("Content-Length", "11"), ("Expect", "100-continue")])
        response = client.read_response()
    assert_status(response, 504)
