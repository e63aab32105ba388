"""Strict request framing: ambiguous or malformed heads get 400, the connection closes, and
nothing reaches a backend."""

import time

from harness import Backend, Sluice, assert_rejected_before_backend, assert_status, proxy_config


def head(*lines: str, body: bytes = b"") -> bytes:
    """A request head from raw lines (nothing added), then `body`."""
    return "".join(f"{line}\r\n" for line in lines).encode("latin-1") + b"\r\n" + body


def rejected(*requests: bytes) -> None:
    assert_rejected_before_backend(400, *requests)


def test_content_length_with_transfer_encoding_is_rejected():
    rejected(head("POST / HTTP/1.1", "Host: t", "Content-Length: 5", "Transfer-Encoding: chunked",
                  body=b"0\r\n\r\n"))


def test_two_different_content_lengths_are_rejected():
    rejected(head("POST / HTTP/1.1", "Host: t", "Content-Length: 5", "Content-Length: 6",
                  body=b"hello!"))


def test_comma_separated_content_length_is_rejected():
    rejected(head("POST / HTTP/1.1", "Host: t", "Content-Length: 1,2", body=b"ab"))


def test_non_numeric_content_length_is_rejected():
    rejected(head("POST / HTTP/1.1", "Host: t", "Content-Length: abc", body=b"abc"))


def test_negative_content_length_is_rejected():
    rejected(head("POST / HTTP/1.1", "Host: t", "Content-Length: -1", body=b"x"))


def test_transfer_encoding_without_chunked_is_rejected():
    rejected(head("POST / HTTP/1.1", "Host: t", "Transfer-Encoding: gzip", body=b"abc"))


def test_transfer_encoding_with_chunked_not_last_is_rejected():
    rejected(head("POST / HTTP/1.1", "Host: t", "Transfer-Encoding: chunked, gzip",
                  body=b"0\r\n\r\n"))


def test_obfuscated_transfer_encoding_is_rejected():
    rejected(head("POST / HTTP/1.1", "Host: t", "Transfer-Encoding: xchunked", body=b"0\r\n\r\n"))


def test_bare_cr_in_a_header_value_is_rejected():
    rejected(head("GET / HTTP/1.1", "Host: t", "X-Test: a\rb"))


def test_nul_in_a_header_value_is_rejected():
    rejected(head("GET / HTTP/1.1", "Host: t", "X-Test: a\0b"))


def test_obs_fold_header_line_is_rejected():
    rejected(head("GET / HTTP/1.1", "Host: t", "X-Test: first", " folded"))


def test_whitespace_before_header_colon_is_rejected():
    rejected(head("GET / HTTP/1.1", "Host : t"),
             head("GET / HTTP/1.1", "Host: t", "X-Test : value"))


def test_http11_request_without_host_is_rejected():
    rejected(head("GET / HTTP/1.1", "Accept: */*"))


def test_two_host_headers_are_rejected():
    rejected(head("GET / HTTP/1.1", "Host: a.test", "Host: b.test"))


def test_bad_chunk_size_never_delivers_a_complete_body():
    def echo_body(ex):
        ex.respond(200, ex.read_body())  # raises when the body is broken

    with Backend(echo_body, strict=False) as backend, Sluice(proxy_config(backend)) as proxy, \
            proxy.client() as client:
        client.send(head("POST / HTTP/1.1", "Host: t", "Transfer-Encoding: chunked",
                         body=b"zz\r\nhello\r\n0\r\n\r\n"), tolerate_close=True)
        response = client.read_response_or_close()
        if response is not None:
            assert_status(response, 400)
        assert client.wait_closed(3.0), "connection still open after a bad chunk size"
        time.sleep(0.3)
    complete = [r for r in backend.requests if r.body_complete]
    assert not complete, f"backend received a complete body:\n{complete[0].describe()}"
