"""Client-side drivers: many keep-alive connections at once, background load through the proxy
(LoadClients) and clients bound to a chosen source address (SourceClient)."""

from __future__ import annotations

import selectors
import socket
import threading
import time

from wire import (HOST, Client, ConnectionClosed, ProtocolError, SocketReader, request_bytes,
                  try_parse_response)


# --------------------------------------------------------------------------- many clients

def run_keepalive_clients(port: int, clients: int, requests_each: int, timeout: float = 60.0):
    """Opens `clients` connections (all kept open until the end), then sends GET /c{i}/r{j}
    on each, one after another, `requests_each` times. Returns [[Response, ...], ...]."""
    socks = []
    try:
        for _ in range(clients):
            socks.append(socket.create_connection((HOST, port), timeout=10))
        return _drive_clients(socks, requests_each, timeout)
    finally:
        for sock in socks:
            sock.close()


def _drive_clients(socks, requests_each, timeout):
    selector = selectors.DefaultSelector()
    buffers = [b""] * len(socks)
    responses = [[] for _ in socks]
    for i, sock in enumerate(socks):
        sock.sendall(request_bytes("GET", f"/c{i}/r0"))
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, i)
    pending, deadline = len(socks), time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            i, sock = key.data, key.fileobj
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionError as error:
                raise AssertionError(f"client {i}: {error!r} after {len(responses[i])} responses")
            if not data:
                raise AssertionError(f"client {i}: connection closed after {len(responses[i])} responses")
            buffers[i] += data
            while parsed := try_parse_response(buffers[i]):
                responses[i].append(parsed[0])
                buffers[i] = buffers[i][parsed[1]:]
                if len(responses[i]) < requests_each:
                    sock.sendall(request_bytes("GET", f"/c{i}/r{len(responses[i])}"))
                else:
                    selector.unregister(sock)
                    pending -= 1
    selector.close()
    if pending:
        raise AssertionError(f"{pending} of {len(socks)} clients not fully answered after {timeout} s")
    return responses


# --------------------------------------------------------------------------- load and sources

class LoadClients:
    """`clients` threads each sending keep-alive GETs through the proxy, one after another,
    until stop(). A connection the proxy closes is replaced. .results holds (start time,
    status or None, body or error text) per request; a request that fails (error, closed
    connection, timeout) is recorded with status None.

    With retry_reused, a request on a reused connection that the proxy closed before sending a
    byte of the answer (it closed the idle connection as the request went out, as a draining
    worker does) is sent again on a fresh connection, once, as HTTP clients do for idempotent
    requests (RFC 9112, 9.3.1); .retried counts those, and only the retry's result is recorded."""

    def __init__(self, port: int, clients: int = 4, *, timeout: float = 5.0, pause: float = 0.0,
                 retry_reused: bool = False):
        self.port = port
        self.timeout = timeout
        self.pause = pause
        self.retry_reused = retry_reused
        self.retried = 0
        self.results: list[tuple[float, int | None, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(clients)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 2)

    def _record(self, started: float, status, detail: str) -> None:
        with self._lock:
            self.results.append((started, status, detail))

    def _run(self, number: int) -> None:
        client = None
        sent = 0
        retrying = False
        while not self._stop.is_set():
            started = time.monotonic()
            reused = client is not None
            try:
                if client is None:
                    client = Client(self.port, self.timeout)
                response = client.exchange("GET", f"/load/c{number}/r{sent}")
                sent += 1
                self._record(started, response.status,
                             (response.body or b"").decode("latin-1")[:200])
                if "close" in response.tokens("connection"):
                    client.close()
                    client = None
            except (OSError, AssertionError, ProtocolError) as error:
                if client is not None:
                    client.close()
                client = None
                if self.retry_reused and reused and not retrying and _unanswered(error):
                    with self._lock:
                        self.retried += 1
                    retrying = True
                    continue
                self._record(started, None, repr(error))
            retrying = False
            if self.pause:
                time.sleep(self.pause)
        if client is not None:
            client.close()

    def snapshot(self) -> list[tuple[float, int | None, str]]:
        with self._lock:
            return list(self.results)

    def failures(self) -> list[tuple[float, int | None, str]]:
        return [r for r in self.snapshot() if r[1] != 200]


def _unanswered(error: Exception) -> bool:
    """The connection closed (FIN or reset) before any byte of the response."""
    if isinstance(error, ConnectionClosed):
        return not error.partial
    return isinstance(error, (BrokenPipeError, ConnectionResetError))


class SourceClient(Client):
    """A Client whose connection comes from a chosen local address (any 127.0.0.x)."""

    def __init__(self, port: int, source: str, timeout: float = 5.0):
        self.timeout = timeout
        self.sock = socket.create_connection((HOST, port), timeout=timeout,
                                             source_address=(source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = SocketReader(self.sock)
