"""A request that cannot be retried never goes on a pooled connection that the backend may be
closing at that moment: Sluice retires pooled connections before a backend's announced
Keep-Alive timeout, and sends such a request on a fresh connection once a pooled one has idled
longer than non_retriable_max_idle_ms.

The backend here makes the race certain instead of rare: a request that arrives on a connection
in the last RACE_S before its idle timeout is read and dropped, and the connection closed, as
a backend whose timer fired just as the request arrived does."""

import socket
import threading
import time

from harness import HOST, Sluice, proxy_config

CLIENTS = 20
POSTS_EACH = 10
RACE_S = 0.15


class ClosingBackend:
    """One listening socket per client on 127.0.0.1; each connection closes after `timeout_s`
    idle, and drops a request that arrives in the last RACE_S of that. `announce` adds
    `Keep-Alive: timeout=N` to every answer."""

    def __init__(self, count: int, timeout_s: float, announce: bool):
        self.timeout_s, self.announce = timeout_s, announce
        self.listeners = []
        for _ in range(count):
            s = socket.socket()
            s.bind((HOST, 0))
            s.listen(16)
            self.listeners.append(s)
        self.ports = [s.getsockname()[1] for s in self.listeners]
        self.dropped = 0
        self._stop = False
        self._threads = [threading.Thread(target=self._accept, args=(s,), daemon=True)
                         for s in self.listeners]

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop = True
        for s in self.listeners:
            s.close()

    def _accept(self, listener):
        while not self._stop:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            idle_since = time.monotonic()
            buffered = b""
            while not self._stop:
                conn.settimeout(max(0.001, self.timeout_s - (time.monotonic() - idle_since)))
                try:
                    data = conn.recv(65536)
                except (socket.timeout, OSError):
                    return  # idle timeout: close
                if not data:
                    return
                if not buffered and time.monotonic() - idle_since >= self.timeout_s - RACE_S:
                    self.dropped += 1
                    return  # the timer won: the request is lost with the connection
                buffered += data
                head_end = buffered.find(b"\r\n\r\n")
                if head_end < 0:
                    continue
                length = 0
                for line in buffered[:head_end].split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if len(buffered) < head_end + 4 + length:
                    continue
                buffered = buffered[head_end + 4 + length:]
                extra = f"Keep-Alive: timeout={int(self.timeout_s)}\r\n" if self.announce else ""
                conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n{extra}\r\nok\n".encode())
                idle_since = time.monotonic()


def spaced_posts(proxy, pause_s: float, failures: list, n: int) -> None:
    """POSTs with a body to /c{n}/ on one keep-alive client connection, `pause_s` apart;
    records every answer that is not 200."""
    with proxy.client(timeout=10) as client:
        for i in range(POSTS_EACH):
            time.sleep(pause_s)
            client.request("POST", f"/c{n}/", body=f"post {n}/{i}".encode())
            response = client.read_final_response()
            if response.status != 200:
                failures.append(f"POST {n}/{i}: {response.status} {response.body[:80]!r}")


def run_spaced_posts(backend: ClosingBackend, pause_s: float) -> list:
    """Each client gets its own route, upstream and backend port, so the only pooled
    connection its POST can meet is the one its own last POST left idle."""
    failures: list = []
    config = proxy_config(upstream={"retries": 0},
                          upstreams={f"u{n}": [f"{HOST}:{p}"] for n, p in enumerate(backend.ports)},
                          routes=[{"path_prefix": f"/c{n}/", "upstream": f"u{n}"}
                                  for n in range(len(backend.ports))])
    with Sluice(config) as proxy:
        threads = [threading.Thread(target=spaced_posts, args=(proxy, pause_s, failures, n))
                   for n in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "clients still running after 60 s"
    return failures


def test_posts_just_inside_an_announced_one_second_keepalive_timeout_all_succeed():
    with ClosingBackend(CLIENTS, 1.0, announce=True) as backend:
        failures = run_spaced_posts(backend, 1.0 - RACE_S / 2)
    assert not failures, f"{len(failures)} of {CLIENTS * POSTS_EACH} POSTs failed: {failures[:3]}"


def test_posts_just_inside_an_unannounced_two_second_keepalive_timeout_all_succeed():
    with ClosingBackend(CLIENTS, 2.0, announce=False) as backend:
        failures = run_spaced_posts(backend, 2.0 - RACE_S / 2)
    assert not failures, f"{len(failures)} of {CLIENTS * POSTS_EACH} POSTs failed: {failures[:3]}"
