"""What sluice forwards to: the raw-socket Backend server and its Exchange, handler factories
that answer or misbehave on cue, pattern payloads, health-aware services, ClosedPort and
UnansweredPort."""

from __future__ import annotations

import http
import itertools
import json
import select
import socket
import struct
import threading
import time
import traceback
import zlib

from wire import HOST, MiB, ProtocolError, Request, SocketReader, iter_body, parse_head, request_framing

_backends: list[Backend] = []  # every Backend this process started (see proxy.cleanup)


# --------------------------------------------------------------------------- backend

class Backend:
    """A raw-socket HTTP/1.1 server on 127.0.0.1 that passes each request to handler(exchange),
    one thread per connection, keep-alive until a side closes.

    .requests    every request head received, in arrival order (Request objects)
    .connections how many connections were accepted (open_connections(): not closed yet)
    .events      (monotonic time, kind, detail) notes from handlers and the server
    .errors      tracebacks of handlers that raised something other than OSError;
                 when strict, the first one fails the test on exit
    """

    def __init__(self, handler=None, *, strict: bool = True, io_timeout: float = 30.0):
        self.handler = handler or ok()
        self.strict = strict
        self.io_timeout = io_timeout
        self.requests: list[Request] = []
        self.connections = 0
        self.events: list[tuple[float, str, object]] = []
        self.errors: list[str] = []
        self._cond = threading.Condition()
        self._socks: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, 0))
        self._listener.listen(1024)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.address = f"{HOST}:{self.port}"
        self._accepter = threading.Thread(target=self._accept_loop, daemon=True,
                                          name=f"backend-{self.port}")
        self._accepter.start()
        _backends.append(self)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stop()
        if self.strict and self.errors and exc_type is None:
            raise AssertionError(f"backend {self.address} handler failed:\n{self.errors[0]}")

    def stop(self) -> None:
        """Stops accepting, shuts every open connection and waits briefly for the threads."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._accepter.join(2)
        self._listener.close()
        with self._cond:
            socks = list(self._socks)
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + 2
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def note(self, kind: str, detail=None) -> None:
        with self._cond:
            self.events.append((time.monotonic(), kind, detail))
            self._cond.notify_all()

    def wait_for(self, predicate, timeout: float) -> bool:
        """Waits until predicate(backend) holds (checked on every request and event)."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    def wait_event(self, kinds: tuple[str, ...], timeout: float):
        """The first (time, kind, detail) event of one of `kinds`, waiting up to `timeout`."""
        def found(_):
            return next((e for e in self.events if e[1] in kinds), None)
        self.wait_for(found, timeout)
        with self._cond:
            return found(self)

    def targets(self) -> list[str]:
        with self._cond:
            return [r.target for r in self.requests]

    def open_connections(self) -> int:
        """How many accepted connections are still open."""
        with self._cond:
            return len(self._socks)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._cond:
                self.connections += 1
                number = self.connections
                self._socks.add(sock)
                self._cond.notify_all()
            thread = threading.Thread(target=self._serve, args=(sock, number), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket, number: int) -> None:
        sock.settimeout(self.io_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Connection(sock)
        try:
            for index in itertools.count():
                head = conn.reader.head()
                if head is None:
                    break
                request = parse_head(head, Request)
                request.connection, request.index = number, index
                with self._cond:
                    self.requests.append(request)
                    self._cond.notify_all()
                exchange = Exchange(self, conn, request)
                self.handler(exchange)
                if conn.closed or not exchange.finish():
                    break
        except OSError as error:
            self.note("io_error", f"connection {number}: {error!r}")
        except Exception:
            with self._cond:
                self.errors.append(traceback.format_exc())
        finally:
            conn.close()
            with self._cond:
                self._socks.discard(sock)
            self.note("closed", number)


class _Connection:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.reader = SocketReader(sock)
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.sock.close()


class Exchange:
    """One request a Backend received, and the means to answer it or to misbehave."""

    def __init__(self, backend: Backend, conn: _Connection, request: Request):
        self.backend = backend
        self.request = request
        self.keep_alive = True  # False: close after this exchange, without saying so
        self._conn = conn
        self._body = None
        self._body_done = False

    @property
    def index(self) -> int:
        """Position of this request on its connection (0 = first)."""
        return self.request.index

    @property
    def sock(self) -> socket.socket:
        return self._conn.sock

    # --- the request body

    def body_pieces(self, piece: int = 65536):
        """Yields the request body as it arrives (not stored); marks it complete at the end."""
        try:
            if self._body is None:
                self._body = iter_body(self._conn.reader, request_framing(self.request), piece)
            yield from self._body
        except (ProtocolError, ConnectionError):
            self.request.body_complete = False
            raise
        self._body_done = True
        self.request.body_complete = True

    def read_body(self) -> bytes:
        """The whole request body, also stored in request.body."""
        self.request.body = b"".join(self.body_pieces())
        return self.request.body

    def finish(self) -> bool:
        """Drains an unread body; True when the connection should serve another request."""
        if not self._body_done:
            for _ in self.body_pieces():
                pass
        return self.keep_alive and not self.request.wants_close()

    # --- answering

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_head(self, status: int, headers=(), reason: str | None = None) -> None:
        reason = reason if reason is not None else http.HTTPStatus(status).phrase
        lines = [f"HTTP/1.1 {status} {reason}"] + [f"{n}: {v}" for n, v in headers]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def send_chunk(self, data: bytes) -> None:
        self.send(b"%x\r\n%s\r\n" % (len(data), data))

    def end_chunks(self) -> None:
        self.send(b"0\r\n\r\n")

    def respond(self, status: int = 200, body: bytes = b"", headers=(), *,
                framing: str = "length", reason: str | None = None) -> None:
        """Answers with `body` framed by "length", "chunked", "close" (then closes) or
        "none" (head only, as for HEAD, 204 and 304)."""
        headers = list(headers)
        if framing == "length":
            headers.append(("Content-Length", str(len(body))))
        elif framing == "chunked":
            headers.append(("Transfer-Encoding", "chunked"))
        self.send_head(status, headers, reason)
        if framing == "chunked":
            if body:
                self.send_chunk(body)
            self.end_chunks()
        elif framing in ("length", "close"):
            self.send(body)
        if framing == "close":
            self.close()

    # --- the raw connection

    def recv(self, n: int = 65536) -> bytes:
        """Raw bytes after the head (buffered ones first); b"" when the peer closed."""
        return self._conn.reader.some(n)

    def close(self) -> None:
        """Closes the connection (FIN)."""
        self._conn.close()

    def reset(self) -> None:
        """Closes the connection with a reset (SO_LINGER 0)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._conn.close()

    def peer_closed(self) -> bool:
        """Whether the peer has closed (FIN or reset), checked without blocking."""
        if self._conn.reader.eof:
            return True
        if not select.select([self.sock], [], [], 0)[0]:
            return False
        try:
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except ConnectionResetError:
            return True

    def wait_closed(self, timeout: float) -> bool:
        """Waits up to `timeout` for the peer to close, dropping what it sends meanwhile."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                if not self.recv():
                    return True
            except TimeoutError:
                return False
        return False

    def note(self, kind: str, detail=None) -> None:
        self.backend.note(kind, detail)


# --------------------------------------------------------------------------- handlers

def ok(body: bytes = b"ok", *, status: int = 200, headers=()):
    """Reads the request body, answers `status` with `body` (Content-Length)."""
    def handler(ex: Exchange):
        ex.read_body()
        ex.respond(status, body, headers)
    return handler


def echo():
    """Answers with the request body."""
    def handler(ex: Exchange):
        ex.respond(200, ex.read_body())
    return handler


def echo_target():
    """Answers with the request target as the body."""
    def handler(ex: Exchange):
        ex.read_body()
        ex.respond(200, ex.request.target.encode("latin-1"))
    return handler


def hang():
    """Never answers; returns once the peer gives up and closes."""
    def handler(ex: Exchange):
        ex.wait_closed(ex.backend.io_timeout)
        ex.close()
    return handler


def close_without_answer():
    def handler(ex: Exchange):
        ex.close()
    return handler


def reset_before_answer():
    def handler(ex: Exchange):
        ex.reset()
    return handler


def die_mid_response(content_length: int = 1_000_000, sent: int = 1000):
    """Promises `content_length` bytes, sends `sent` of them, then closes."""
    def handler(ex: Exchange):
        ex.read_body()
        ex.send_head(200, [("Content-Length", str(content_length))])
        ex.send(b"x" * sent)
        ex.close()
    return handler


def stream(total: int, *, piece: int = 256 * 1024, delay: float = 0.0):
    """Sends a `total`-byte pattern body (see pattern_stream), generated as it goes, pausing
    `delay` s between pieces. Notes "send_failed" or "peer_closed" if the peer goes away,
    "stream_done" when all was sent."""
    def handler(ex: Exchange):
        ex.read_body()
        ex.send_head(200, [("Content-Length", str(total)), ("Content-Type", "application/octet-stream")])
        sent = 0
        try:
            for data in pattern_stream(total, piece):
                ex.send(data)
                sent += len(data)
                if delay:
                    if ex.peer_closed():
                        ex.note("peer_closed", sent)
                        ex.close()
                        return
                    time.sleep(delay)
        except OSError as error:
            ex.note("send_failed", (sent, repr(error)))
            ex.close()
            return
        ex.note("stream_done", sent)
    return handler


def upgrade_echo(greeting: bytes = b""):
    """Answers 101 Switching Protocols, sends `greeting`, then echoes raw bytes until EOF."""
    def handler(ex: Exchange):
        ex.send_head(101, [("Upgrade", ex.request.header("upgrade", "websocket")),
                           ("Connection", "Upgrade")])
        if greeting:
            ex.send(greeting)
        while data := ex.recv():
            ex.send(data)
        ex.close()
    return handler


def count_upload(*, rate: float | None = None, piece: int = MiB):
    """Reads the body without keeping it, in reads of at most `piece` bytes and, with `rate`,
    at most `rate` bytes/s (sleeping between reads); answers JSON {"bytes": n, "crc32": c}."""
    def handler(ex: Exchange):
        count, crc = 0, 0
        started = time.monotonic()
        for data in ex.body_pieces(piece):
            count += len(data)
            crc = zlib.crc32(data, crc)
            if rate and (ahead := count / rate - (time.monotonic() - started)) > 0:
                time.sleep(ahead)
        ex.respond(200, json.dumps({"bytes": count, "crc32": crc}).encode(),
                   [("Content-Type", "application/json")])
    return handler


# --------------------------------------------------------------------------- payloads

_PATTERN_PERIOD = 251  # prime, so consecutive pieces start at different offsets


def pattern_stream(total: int, piece: int = 256 * 1024):
    """Deterministic bytes made on the fly, as memoryviews of at most `piece` bytes; piece k
    starts at offset 7k mod 251 of a repeating 0..250 ramp, so lost or reordered pieces
    change the CRC."""
    base = memoryview(bytes(range(_PATTERN_PERIOD)) * (piece // _PATTERN_PERIOD + 2))
    sent = 0
    for k in itertools.count():
        if sent >= total:
            return
        n = min(piece, total - sent)
        offset = 7 * k % _PATTERN_PERIOD
        yield base[offset:offset + n]
        sent += n


def pattern_crc(total: int, piece: int = 256 * 1024) -> int:
    crc = 0
    for data in pattern_stream(total, piece):
        crc = zlib.crc32(data, crc)
    return crc


# --------------------------------------------------------------------------- balancing and health

HEALTH_CHECK_AGENT = "sluice-health-check"  # the User-Agent of sluice's active health checks


def is_health_check(request: Request) -> bool:
    return request.header("user-agent") == HEALTH_CHECK_AGENT


def client_requests(backend: Backend) -> list[Request]:
    """The requests `backend` received, leaving out sluice's health checks."""
    with backend._cond:
        return [r for r in backend.requests if not is_health_check(r)]


def served(backend: Backend) -> int:
    """How many requests other than health checks `backend` received."""
    return len(client_requests(backend))


class HealthSwitch:
    """The status a service() handler answers its health path with; change .status any time."""

    def __init__(self, status: int = 200):
        self.status = status


def service(name: str, health: HealthSwitch | None = None, *, health_path: str = "/health",
            delay: float = 0.0):
    """Answers every request with `name` as the body (after `delay` s, health checks excepted);
    GET `health_path` answers health.status (200 without a switch). Each response leaves in
    one send, so a backend killed at any moment never leaves a response half sent."""
    def handler(ex: Exchange):
        ex.read_body()
        if ex.request.target == health_path:
            status, body = (health.status if health is not None else 200), b"health"
        else:
            if delay:
                time.sleep(delay)
            status, body = 200, name.encode()
        reason = http.HTTPStatus(status).phrase
        ex.send(f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n\r\n"
                .encode("latin-1") + body)
    return handler


class BoundBackend(Backend):
    """A Backend listening on a chosen host and port: 127.0.0.x (all loopback on Linux) or ::1,
    and port 0 for one the kernel picks or the port of a stopped Backend to take its place."""

    def __init__(self, handler=None, *, host: str = HOST, port: int = 0, strict: bool = True,
                 io_timeout: float = 30.0):
        self.handler = handler or ok()
        self.strict = strict
        self.io_timeout = io_timeout
        self.requests = []
        self.connections = 0
        self.events = []
        self.errors = []
        self._cond = threading.Condition()
        self._socks = set()
        self._threads = []
        self._stopping = threading.Event()
        self._listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._bind(host, port)
        self._listener.listen(1024)
        self._listener.settimeout(0.1)
        self.host = host
        self.port = self._listener.getsockname()[1]
        self.address = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        self._accepter = threading.Thread(target=self._accept_loop, daemon=True,
                                          name=f"backend-{host}-{self.port}")
        self._accepter.start()
        _backends.append(self)

    def _bind(self, host: str, port: int) -> None:
        # A port just given up can take a moment to be free again (sockets still closing).
        deadline = time.monotonic() + 3
        while True:
            try:
                self._listener.bind((host, port))
                return
            except OSError:
                if port == 0 or time.monotonic() > deadline:
                    self._listener.close()
                    raise
                time.sleep(0.05)

    def kill(self) -> None:
        """Stops like a crashed server: the listener closes and every open connection is reset."""
        with self._cond:
            socks = list(self._socks)
        for sock in socks:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.stop()


# --------------------------------------------------------------------------- ports

class ClosedPort:
    """A port held bound but never listening: connecting to it is refused, and no other
    program can take it while this is open."""

    def __init__(self):
        self._sock = socket.socket()
        self._sock.bind((HOST, 0))
        self.port = self._sock.getsockname()[1]
        self.address = f"{HOST}:{self.port}"

    def close(self):
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class UnansweredPort:
    """A port where a connect neither completes nor fails: it listens with a backlog of 0 and
    one connection that is never accepted fills the queue, so Linux drops further SYNs."""

    PROBE_S = 0.3

    def __init__(self):
        self._listener = socket.socket()
        self._listener.bind((HOST, 0))
        self._listener.listen(0)
        self.port = self._listener.getsockname()[1]
        self.address = f"{HOST}:{self.port}"
        self._fillers: list[socket.socket] = []
        for _ in range(4):
            filler = socket.socket()
            filler.settimeout(self.PROBE_S)
            self._fillers.append(filler)
            try:
                filler.connect((HOST, self.port))
            except TimeoutError:
                return  # the queue is full: this SYN went unanswered, and so will sluice's
        self.close()
        raise RuntimeError(f"connects to {self.address} kept completing: the kernel does not "
                           f"drop SYNs to a full listen queue here")

    def close(self):
        for sock in self._fillers:
            sock.close()
        self._listener.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
