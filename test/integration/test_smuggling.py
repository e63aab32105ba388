"""Request smuggling and misdirection: chunk framing is checked on every byte sluice forwards,
in both directions; a Host outside RFC 3986 gets 400; an absolute-form target reaches the
backend in origin-form with Host from its authority; an h2c upgrade is served as HTTP/1.1."""

import select
import socket
import time

from harness import (Backend, Sluice, assert_rejected_before_backend, assert_status, ok,
                     proxy_config)

CHUNK_LINE_BOUND = 4096  # ChunkFraming::kMaxLineBytes


def head(*lines: str, body: bytes = b"") -> bytes:
    """A request head from raw lines (nothing added), then `body`."""
    return "".join(f"{line}\r\n" for line in lines).encode("latin-1") + b"\r\n" + body


CHUNKED_POST = ("POST /upload HTTP/1.1", "Host: t", "Transfer-Encoding: chunked")


def raw_counter():
    """Counts every byte after the request head until sluice closes; notes ("raw", count)."""
    def handler(ex):
        total = 0
        try:
            while data := ex.recv():
                total += len(data)
        except OSError:
            pass
        ex.note("raw", total)
        ex.close()
    return handler


def test_chunk_data_without_crlf_is_rejected_and_the_request_behind_it_never_arrives():
    def echo_body(ex):
        ex.respond(200, ex.read_body())  # raises when the body is broken

    smuggled = head("GET /smuggled HTTP/1.1", "Host: t")
    with Backend(echo_body, strict=False) as backend, Sluice(proxy_config(backend)) as proxy, \
            proxy.client() as client:
        client.send(head(*CHUNKED_POST, body=b"5\r\nhelloXX0\r\n\r\n" + smuggled),
                    tolerate_close=True)
        assert_status(client.read_response_or_close(), 400)
        assert client.wait_closed(3.0), "connection still open after a broken chunk"
        time.sleep(0.3)  # a request sluice wrongly forwarded would arrive by now
    assert "/smuggled" not in backend.targets(), backend.targets()
    complete = [r for r in backend.requests if r.body_complete]
    assert not complete, f"backend received a complete body:\n{complete[0].describe()}"


def test_chunk_data_without_crlf_is_rejected_when_it_arrives_byte_by_byte():
    with Backend(raw_counter(), strict=False) as backend, \
            Sluice(proxy_config(backend)) as proxy, proxy.client() as client:
        client.send(head(*CHUNKED_POST))
        assert backend.wait_for(lambda b: b.requests, 3.0), "the head never reached the backend"
        for byte in b"5\r\nhelloXX0\r\n\r\n":
            client.send(bytes([byte]), tolerate_close=True)
            time.sleep(0.005)
        assert_status(client.read_response_or_close(), 400)
        assert client.wait_closed(3.0), "connection still open after a broken chunk"
        event = backend.wait_event(("raw",), 3.0)
    # The eight valid bytes "5\r\nhello" went on; nothing after them did.
    assert event is not None, "the backend connection was never closed"
    assert event[2] == 8, f"backend got {event[2]} body bytes"


def test_an_endless_chunk_extension_is_cut_off_with_400():
    with Backend(raw_counter(), strict=False) as backend, \
            Sluice(proxy_config(backend)) as proxy, proxy.client() as client:
        client.send(head(*CHUNKED_POST, body=b"1;"))
        # Once the backend has the head, every byte sluice lets through reaches it.
        assert backend.wait_for(lambda b: b.requests, 3.0), "the head never reached the backend"
        piece, sent, deadline = b"x" * 16384, 0, time.monotonic() + 5.0
        while time.monotonic() < deadline and sent < 64 * 1024 * 1024:
            if select.select([client.sock], [], [], 0)[0]:
                break  # sluice answered or closed
            try:
                client.sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError, socket.timeout):
                break
            sent += len(piece)
        assert time.monotonic() < deadline, "sluice still took the extension after 5 s"
        assert_status(client.read_response_or_close(), 400)
        event = backend.wait_event(("raw",), 3.0)
    assert event is not None, "the backend connection was never closed"
    forwarded = event[2]
    assert forwarded <= CHUNK_LINE_BOUND, f"{forwarded} bytes of the line reached the backend"


def test_a_valid_chunked_request_with_extensions_and_trailers_is_forwarded_unchanged():
    body = b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 1\r\n\r\n"

    def raw_echo(ex):
        """Answers with the raw bytes after the head, chunk framing and all."""
        raw = b""
        while len(raw) < len(body) and (data := ex.recv()):
            raw += data
        ex.respond(200, raw, [("Connection", "close")])  # it closes: it says so
        ex.close()

    with Backend(raw_echo) as backend, Sluice(proxy_config(backend)) as proxy, \
            proxy.client() as client:
        for step in (len(body), 1):
            client.send(head(*CHUNKED_POST))
            for at in range(0, len(body), step):
                client.send(body[at:at + step])
                time.sleep(0.002 if step == 1 else 0)
            response = client.read_response()
            assert_status(response, 200)
            assert response.body == body, response.body


def send_broken_chunks(ex):
    ex.read_body()
    ex.send_head(200, [("Transfer-Encoding", "chunked")])
    time.sleep(0.2)  # the head goes out to the client first
    ex.send(b"5\r\nhelloXXHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    ex.wait_closed(3.0)
    ex.close()


def test_a_backend_whose_chunk_framing_breaks_gets_the_client_connection_closed():
    with Backend(send_broken_chunks, strict=False) as backend, \
            Sluice(proxy_config(backend)) as proxy, proxy.client() as client:
        client.request("GET", "/")
        response = client.read_head()
        assert_status(response, 200)
        assert client.wait_closed(3.0), "client held open after the backend broke chunk framing"


def test_a_backend_whose_chunk_framing_breaks_with_the_head_gets_a_502_instead():
    def broken_at_once(ex):
        ex.read_body()
        ex.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\nX")
        ex.wait_closed(3.0)
        ex.close()

    with Backend(broken_at_once, strict=False) as backend, \
            Sluice(proxy_config(backend)) as proxy, proxy.client() as client:
        client.request("GET", "/")
        # No byte of the broken response had left: the client gets a clean 502 in its place.
        assert_status(client.read_final_response(), 502)


def test_a_backend_that_never_ends_a_chunk_size_line_does_not_hold_the_client():
    def endless_line(ex):
        ex.read_body()
        ex.send_head(200, [("Transfer-Encoding", "chunked")])
        sent, deadline = 0, time.monotonic() + 10.0
        ex.send(b"1;")
        try:
            while time.monotonic() < deadline:
                ex.send(b"x" * 4096)
                sent += 4096
                time.sleep(0.001)
        except OSError:
            ex.note("cut_off", sent)
        ex.close()

    with Backend(endless_line, strict=False) as backend, \
            Sluice(proxy_config(backend)) as proxy, proxy.client() as client:
        client.request("GET", "/")
        started = time.monotonic()
        try:
            head = client.read_head()
        except ConnectionError:
            head = None  # the head may be dropped with the connection
        if head is None or head.status != 502:  # a 502 when the line broke in the head's read
            if head is not None:
                assert_status(head, 200)
            assert client.wait_closed(3.0), "client held on a 200 while the size line went on"
        assert time.monotonic() - started < 3.0
        event = backend.wait_event(("cut_off",), 5.0)
    assert event is not None, "sluice kept reading the backend's endless line"


def test_absolute_form_reaches_the_backend_in_origin_form_with_host_from_the_authority():
    with Backend(ok()) as backend, Sluice(proxy_config(backend)) as proxy, \
            proxy.client() as client:
        client.send(head("GET http://other.example:8080/x?y=1 HTTP/1.1", "Host: site.example"))
        assert_status(client.read_response(), 200)
        client.send(head("GET http://other.example HTTP/1.1", "Host: site.example"))
        assert_status(client.read_response(), 200)
    first, second = backend.requests
    assert first.start_line == "GET /x?y=1 HTTP/1.1", first.describe()
    assert first.header_values("Host") == ["other.example:8080"], first.describe()
    assert second.start_line == "GET / HTTP/1.1", second.describe()
    assert second.header_values("Host") == ["other.example"], second.describe()


def test_absolute_form_with_another_scheme_or_userinfo_is_rejected():
    assert_rejected_before_backend(
        400,
        head("GET ftp://other.example/x HTTP/1.1", "Host: other.example"),
        head("GET http://user:pw@other.example/x HTTP/1.1", "Host: other.example"))


def test_a_host_outside_rfc_3986_is_rejected():
    assert_rejected_before_backend(
        400,
        head("GET / HTTP/1.1", "Host: bad host/x"),
        head("GET / HTTP/1.1", "Host: a@b"),
        head("GET / HTTP/1.1", "Host: [::1"))


def test_an_h2c_upgrade_is_served_as_plain_http11():
    with Backend(ok(b"plain")) as backend, Sluice(proxy_config(backend)) as proxy, \
            proxy.client() as client:
        client.send(head("GET /h2 HTTP/1.1", "Host: t", "Connection: Upgrade, HTTP2-Settings",
                         "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA"))
        response = client.read_response()
        assert_status(response, 200)
        assert response.body == b"plain"
        # The connection stays HTTP/1.1: the next request is an ordinary one.
        client.send(head("GET /next HTTP/1.1", "Host: t"))
        assert_status(client.read_response(), 200)
    seen = backend.requests[0]
    for name in ("Upgrade", "HTTP2-Settings"):
        assert not seen.has(name), f"{name} was forwarded:\n{seen.describe()}"
    assert "upgrade" not in seen.tokens("connection"), seen.describe()
    assert backend.targets() == ["/h2", "/next"]
