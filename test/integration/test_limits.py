"""Size limits on the request head (defaults: line 8 KiB -> 414, headers 32 KiB or more than
100 fields -> 431); requests just inside them pass."""

import time

from harness import (Backend, Sluice, assert_rejected_before_backend, assert_status, echo, ok,
                     proxy_config, request_bytes)


def filler_headers(count: int, value_size: int = 10) -> list[tuple[str, str]]:
    return [(f"X-Filler-{i}", "v" * value_size) for i in range(count)]


def proxied(target="/", headers=()):
    """(response, request the backend saw) for one GET through sluice."""
    with Backend(ok()) as backend, Sluice(proxy_config(backend)) as proxy:
        response = proxy.get(target, headers)
    return response, (backend.requests[0] if backend.requests else None)


def test_request_line_over_limit_gets_414():
    assert_rejected_before_backend(414, request_bytes("GET", "/" + "a" * 9000))


def test_request_line_under_limit_is_proxied():
    target = "/" + "a" * 7000
    response, seen = proxied(target)
    assert_status(response, 200)
    assert seen.target == target


def test_header_block_over_limit_gets_431():
    assert_rejected_before_backend(431, request_bytes("GET", "/", filler_headers(5, 8000)))


def test_header_block_under_limit_is_proxied():
    headers = filler_headers(3, 9000)
    response, seen = proxied("/", headers)
    assert_status(response, 200)
    assert all(seen.header(name) == value for name, value in headers)


def test_more_than_100_headers_gets_431():
    # Host plus 100 more: 101 fields.
    assert_rejected_before_backend(431, request_bytes("GET", "/", filler_headers(100)))


def test_exactly_100_headers_are_proxied():
    headers = filler_headers(99)  # plus Host: 100 fields
    response, seen = proxied("/", headers)
    assert_status(response, 200)
    assert all(seen.header(name) == value for name, value in headers)


# --------------------------------------------------------------------------- body and connections

BODY_LIMIT = {"max_request_body_bytes": 1000}


def test_declared_body_over_limit_gets_413_before_the_backend_sees_it():
    raw = request_bytes("POST", "/upload", [("Content-Length", "1001")]) + b"x" * 1001
    assert_rejected_before_backend(413, raw, limits=BODY_LIMIT)


def test_chunked_body_over_limit_gets_413_as_it_streams():
    chunks = b"".join(b"%x\r\n%s\r\n" % (300, b"y" * 300) for _ in range(5)) + b"0\r\n\r\n"
    raw = request_bytes("POST", "/upload", [("Transfer-Encoding", "chunked")]) + chunks
    with Backend(ok(), strict=False) as backend, \
            Sluice(proxy_config(backend, limits=BODY_LIMIT)) as proxy:
        with proxy.client() as client:
            client.send(raw, tolerate_close=True)
            assert_status(client.read_response_or_close(), 413)
            assert client.wait_closed(3.0), "connection still open 3 s after the 413"
    # The backend may have seen the first 1000 bytes, never the whole body.
    assert all(len(r.body or b"") <= 1000 for r in backend.requests)


def test_bodies_within_the_limit_pass_in_both_framings():
    with Backend(echo()) as backend, Sluice(proxy_config(backend, limits=BODY_LIMIT)) as proxy:
        with proxy.client() as client:
            client.request("POST", "/a", body=b"z" * 1000)
            response = client.read_response()
        assert_status(response, 200)
        assert response.body == b"z" * 1000
        with proxy.client() as client:
            client.send(request_bytes("POST", "/b", [("Transfer-Encoding", "chunked")]) +
                        b"3e8\r\n" + b"w" * 1000 + b"\r\n0\r\n\r\n")
            response = client.read_response()
        assert_status(response, 200)
        assert response.body == b"w" * 1000


def test_listener_at_max_connections_waits_until_one_closes():
    """With max_connections 2 (one worker), a third client is accepted by the kernel but not
    served while two connections are open, and served once one of them closes."""
    with Backend(ok()) as backend, \
            Sluice(proxy_config(backend, workers=1, limits={"max_connections": 2})) as proxy:
        first, second = proxy.client(), proxy.client()
        for c in (first, second):
            c.request("GET", "/")
            assert_status(c.read_response(), 200)
        third = proxy.client()
        third.request("GET", "/third")
        time.sleep(0.5)
        assert "/third" not in backend.targets(), "the third connection was served at the limit"
        first.close()
        third.sock.settimeout(5.0)
        assert_status(third.read_response(), 200)
        second.close()
        third.close()
