"""Size limits on the request head (defaults: line 8 KiB -> 414, headers 32 KiB or more than
100 fields -> 431); requests just inside them pass."""

from harness import (Backend, Sluice, assert_rejected_before_backend, assert_status, ok,
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
