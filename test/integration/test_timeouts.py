"""Timeouts: a silent or unreachable backend gets 504, a slow or idle client is cut off, others
still served."""

import itertools
import socket
import json
import time
import zlib

from harness import (Backend, MiB, Sluice, UnansweredPort, assert_status, count_upload, hang, ok,
                     pattern_crc, pattern_stream, proxy_config, request_bytes, stream)


def test_backend_that_never_responds_gives_504():
    with Backend(hang()) as backend, \
            Sluice(proxy_config(backend, timeouts={"upstream_response_ms": 1000})) as proxy:
        started = time.monotonic()
        response = proxy.get("/", timeout=6)
        elapsed = time.monotonic() - started
    assert_status(response, 504)
    assert 0.8 <= elapsed < 3, f"504 after {elapsed:.1f} s with upstream_response_ms 1000"


def test_backend_still_taking_the_request_body_gets_no_504_from_upstream_response_ms():
    # 3 s of steady reading, three times upstream_response_ms. The backend keeps a small receive
    # buffer, as a busy one does, so the body waits in Sluice, where its progress shows, rather
    # than in kernel buffers, where no proxy can see it being read.
    total, rate = 6 * MiB, 2 * MiB
    reader = count_upload(rate=rate, piece=64 * 1024)

    def slow_reader(ex):
        ex.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        reader(ex)

    with Backend(slow_reader) as backend, \
            Sluice(proxy_config(backend, timeouts={"upstream_response_ms": 1000})) as proxy, \
            proxy.client(timeout=10) as client:
        started = time.monotonic()
        client.send(request_bytes("POST", "/upload", [("Content-Length", str(total))]))
        crc = 0
        for data in pattern_stream(total, 256 * 1024):
            client.send(data, tolerate_close=True)
            crc = zlib.crc32(data, crc)
        response = client.read_final_response()
        elapsed = time.monotonic() - started
    assert response.status != 504, \
        f"504 after {elapsed:.1f} s while the backend was still reading the body at 2 MiB/s"
    assert_status(response, 200)
    assert json.loads(response.body) == {"bytes": total, "crc32": crc}


def test_backend_that_never_completes_the_handshake_gives_504_after_upstream_connect_ms():
    with UnansweredPort() as silent, \
            Sluice(proxy_config(silent, timeouts={"upstream_connect_ms": 500},
                                upstream={"retries": 0})) as proxy:
        started = time.monotonic()
        response = proxy.get("/", timeout=6)
        elapsed = time.monotonic() - started
    assert_status(response, 504)
    assert 0.4 <= elapsed < 1.5, f"504 after {elapsed:.2f} s with upstream_connect_ms 500"


def test_slowloris_client_is_cut_off_while_others_are_served():
    partial_head = b"GET / HTTP/1.1\r\nHost: sluice.test\r\nX-Slow: "
    with Backend(ok(b"served")) as backend, \
            Sluice(proxy_config(backend, timeouts={"client_header_ms": 1000})) as proxy, \
            proxy.client() as slow:
        started = time.monotonic()
        served, cut_off_after = None, None
        for byte in itertools.chain(partial_head, itertools.repeat(ord("a"))):
            slow.send(bytes([byte]), tolerate_close=True)
            if served is None and time.monotonic() - started > 0.3:
                served = proxy.get("/")
            if slow.wait_closed(0.1):
                cut_off_after = time.monotonic() - started
                break
            if time.monotonic() - started > 5:
                break
    assert_status(served, 200)
    assert served.body == b"served"
    assert cut_off_after is not None, "slow client still connected after 5 s"
    assert cut_off_after < 3, f"slow client cut off only after {cut_off_after:.1f} s"
    assert len(backend.requests) == 1, "the slow client's partial request reached the backend"


def test_idle_keepalive_client_is_closed_after_client_idle_ms():
    with Backend(ok()) as backend, \
            Sluice(proxy_config(backend, timeouts={"client_idle_ms": 1000})) as proxy, \
            proxy.client() as client:
        assert_status(client.exchange("GET", "/"), 200)
        idle_since = time.monotonic()
        closed = client.wait_closed(4.0)
        idle = time.monotonic() - idle_since
    assert closed, "idle keep-alive connection still open after 4 s (client_idle_ms 1000)"
    assert 0.5 <= idle < 3, f"closed after {idle:.1f} s idle with client_idle_ms 1000"


def test_client_pausing_longer_than_upstream_response_ms_still_gets_the_whole_response():
    # While a slow client holds the backend's reads stopped, the backend is not silent: the
    # backend's timeout must not run, the client's own (client_send_ms) does instead.
    total = 32 * MiB
    timeouts = {"upstream_response_ms": 500, "client_send_ms": 5000}
    with Backend(stream(total)) as backend, \
            Sluice(proxy_config(backend, timeouts=timeouts)) as proxy, \
            proxy.client(timeout=10) as client:
        client.request("GET", "/big")
        assert_status(client.read_head(), 200)
        time.sleep(1.5)  # three times upstream_response_ms without reading
        crc = client.recv_crc(total)
    assert crc == pattern_crc(total), "body corrupted on the way"


def test_client_that_stops_reading_is_disconnected_after_client_send_ms():
    total = 64 * MiB
    with Backend(stream(total)) as backend, \
            Sluice(proxy_config(backend, timeouts={"client_send_ms": 1000})) as proxy, \
            proxy.client(timeout=10) as client:
        client.request("GET", "/big")
        assert_status(client.read_head(), 200)
        deadline = time.monotonic() + 8
        while "took no response bytes in time" not in proxy.log_text():
            assert time.monotonic() < deadline, \
                f"no disconnect 8 s after the client stopped reading:\n{proxy.log_tail()}"
            time.sleep(0.1)
        assert client.wait_closed(5), "the connection stayed open after the disconnect was logged"
    assert backend.wait_event(("peer_closed", "send_failed"), 5), \
        "the backend went on sending after the client was disconnected"


def test_client_whose_request_body_stops_arriving_gets_408():
    with Backend(count_upload()) as backend, \
            Sluice(proxy_config(backend, timeouts={"upstream_response_ms": 500})) as proxy, \
            proxy.client(timeout=5) as client:
        started = time.monotonic()
        client.send(request_bytes("POST", "/upload", [("Content-Length", "1000")]) + b"x" * 10)
        response = client.read_final_response()
        elapsed = time.monotonic() - started
    assert_status(response, 408)
    assert 0.4 <= elapsed < 2, f"408 after {elapsed:.2f} s with upstream_response_ms 500"
    assert "the request body stopped arriving" in proxy.log_text()
    # The error log's lines only: an access log line's random request ID may hold "504".
    error_log = [line for line in proxy.log_text().splitlines() if not line.startswith("{")]
    assert not any("504" in line for line in error_log), \
        "the client's silence was blamed on the backend"


def test_client_reading_slowly_but_steadily_is_not_cut_off_by_client_send_ms():
    # client_send_ms bounds a client's silence, not how long a slow client takes to drain what
    # is queued for it (here many times client_send_ms).
    total = 24 * MiB
    with Backend(stream(total)) as backend, \
            Sluice(proxy_config(backend, timeouts={"client_send_ms": 1500})) as proxy, \
            proxy.client(timeout=10) as client:
        client.request("GET", "/big")
        assert_status(client.read_head(), 200)
        # 320 KB/s for 4 s: far slower than the backend.
        crc = client.recv_crc(total, slow_for=4.0, slow_piece=32 * 1024, pause=0.1)
    assert crc == pattern_crc(total), "body corrupted on the way"
    assert "took no response bytes in time" not in proxy.log_text()
