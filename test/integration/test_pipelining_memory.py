"""A client that pipelines requests and never reads the answers holds no more than its own read
block and its write queue's high-water mark; what it held goes back when it leaves."""

import select
import socket
import time

import harness
from harness import HOST, MiB, Sluice, assert_status, proxy_config
from nginx import nginx_backend

CLIENTS = 20
PIPELINE_S = 4.0
GROWTH_LIMIT = 16 * MiB


def pipeline_without_reading(port: int, seconds: float) -> list:
    """Opens CLIENTS connections with a 4 KiB receive buffer and sends `GET /` on each as fast
    as the proxy takes them, reading nothing, for `seconds`. Returns the open sockets."""
    request = f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode() * 64
    socks = []
    for _ in range(CLIENTS):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((HOST, port))
        s.setblocking(False)
        socks.append(s)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        _, writable, _ = select.select([], socks, [], 0.05)
        for s in writable:
            try:
                s.send(request)
            except (BlockingIOError, ConnectionError):
                pass
    return socks


def test_pipelining_clients_that_never_read_keep_memory_bounded():
    body = "x" * 99
    with nginx_backend(f'return 200 "{body}\\n";') as (port,), \
            Sluice(proxy_config(f"{HOST}:{port}")) as proxy:
        assert_status(proxy.get("/warm-up"), 200)
        before = harness.rss_bytes(proxy.pid)
        socks = pipeline_without_reading(proxy.port, PIPELINE_S)
        during = harness.rss_bytes(proxy.pid)
        for s in socks:
            s.close()
        time.sleep(1.0)
        assert_status(proxy.get("/after"), 200)
        after = harness.rss_bytes(proxy.pid)
    if harness.sanitized_binary():
        return  # ASan's allocator keeps what the proxy frees: RSS would measure the allocator
    assert during - before < GROWTH_LIMIT, \
        f"RSS grew by {(during - before) / MiB:.1f} MiB for {CLIENTS} clients that never read"
    assert after - before < GROWTH_LIMIT, \
        f"RSS stayed {(after - before) / MiB:.1f} MiB above its start after the clients left"
