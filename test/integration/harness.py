"""Harness for the Sluice integration tests (Python standard library only).

Sluice   the proxy under test, started from a config dict; a context manager.
Backend  a threaded raw-socket HTTP/1.1 server that hands each request to a handler, which can
         answer properly or misbehave precisely; it records every request head it receives.
Client   a raw-socket HTTP/1.1 client: sends exact bytes, parses responses strictly.
Plus config builders, handler factories, RSS from /proc and small polling helpers.

Everything listens and connects on 127.0.0.1 only, on ports the kernel picks.
"""

from __future__ import annotations

import copy
import http
import itertools
import json
import os
import re
import resource
import select
import selectors
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import traceback
import zlib
from contextlib import contextmanager

HOST = "127.0.0.1"
HOST_HEADER = "sluice.test"  # what Client puts in Host unless told otherwise
READY_TIMEOUT_S = 5.0
MiB = 1 << 20

DEFAULT_TIMEOUTS = {
    "client_header_ms": 5000,
    "client_idle_ms": 10000,
    "upstream_connect_ms": 2000,
    "upstream_response_ms": 10000,
    "drain_ms": 1000,  # short, so stopping sluice at the end of a test is quick
}
DEFAULT_LIMITS = {"request_line_bytes": 8192, "header_bytes": 32768, "header_count": 100}


# --------------------------------------------------------------------------- session state

_session = {"binary": None, "workdir": None}
_proxies: list[Sluice] = []
_backends: list[Backend] = []
_file_numbers = itertools.count(1)


def configure(binary: str) -> None:
    """Sets the sluice binary every test runs (run.py calls this)."""
    _session["binary"] = os.path.abspath(binary)


def sluice_binary() -> str:
    binary = _session["binary"] or os.environ.get("SLUICE_BIN")
    if not binary:
        raise RuntimeError("no sluice binary configured: run through run.py --sluice PATH")
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise RuntimeError(f"sluice binary missing or not executable: {binary}")
    return binary


def created_workdir() -> str | None:
    """The temporary folder, if one was made (run.py removes it at the end)."""
    return _session["workdir"]


def workdir() -> str:
    """A temporary folder for this process's configs and logs."""
    if _session["workdir"] is None:
        _session["workdir"] = tempfile.mkdtemp(prefix="sluice-it-")
    return _session["workdir"]


def write_file(name: str, text: str) -> str:
    path = os.path.join(workdir(), name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def cleanup() -> None:
    """Kills every sluice and stops every backend this process started."""
    for proxy in list(_proxies):
        proxy.kill()
    for backend in list(_backends):
        backend.stop()


def forget() -> None:
    """Drops the records of finished proxies and backends (between tests in one process)."""
    _proxies.clear()
    _backends.clear()


def failure_report(lines: int = 40) -> str:
    """The tail of every sluice log and every backend handler error, for a failed test."""
    parts = []
    for proxy in _proxies:
        status = describe_status(proxy.proc.returncode) if proxy.proc else "not started"
        parts.append(f"--- sluice log {proxy.log_path} ({status}), last {lines} lines ---")
        parts.append(proxy.log_tail(lines) or "(empty)")
    for backend in _backends:
        for error in backend.errors[:3]:
            parts.append(f"--- backend {backend.address} handler error ---\n{error}")
    return "\n".join(parts)


def describe_status(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit status {returncode}"


# --------------------------------------------------------------------------- config

def proxy_config(*backends, workers=2, upstream=None, timeouts=None, limits=None,
                 upstreams=None, routes=None) -> dict:
    """A complete config: `backends` form upstream "app" with one catch-all route, unless
    `upstreams` ({name: [backends]}) and `routes` are given. Sluice fills in the listener."""
    pools = upstreams if upstreams is not None else {"app": list(backends)}
    settings = {"keepalive": 64, "keepalive_timeout_ms": 60000, "retries": 1, **(upstream or {})}
    return {
        "workers": workers,
        "listeners": [{"address": f"{HOST}:0"}],
        "upstreams": {name: {"backends": [backend_entry(b) for b in members], **settings}
                      for name, members in pools.items()},
        "routes": routes if routes is not None else [{"upstream": next(iter(pools))}],
        "timeouts": {**DEFAULT_TIMEOUTS, **(timeouts or {})},
        "limits": {**DEFAULT_LIMITS, **(limits or {})},
    }


def backend_entry(backend) -> dict:
    """A config backend entry from a Backend, a ClosedPort, an address string or a dict."""
    if isinstance(backend, dict):
        return backend
    if isinstance(backend, str):
        return {"address": backend}
    return {"address": backend.address}


# --------------------------------------------------------------------------- ports

def free_port() -> int:
    """A port that was free a moment ago (bound to port 0, then released)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


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


# --------------------------------------------------------------------------- the proxy

class Sluice:
    """The proxy under test, running in the foreground with `config` and a listener on a free
    port. On exit it gets SIGTERM; if it had died on its own, the test fails."""

    def __init__(self, config: dict, *, config_flag: str = "-c"):
        self.config = copy.deepcopy(config)
        self.config_flag = config_flag
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log_path = ""
        self.config_path = ""
        self._stopping = False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        problem = self.stop()
        if problem and exc_type is None:
            raise AssertionError(problem)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def start(self) -> Sluice:
        """Launches sluice and waits until it accepts; retries if the port was taken."""
        for attempt in range(3):
            self._launch()
            if self._wait_ready():
                return self
            log = self.log_tail(30)
            self.kill()
            if attempt == 2 or "in use" not in log.lower():
                raise RuntimeError(f"sluice did not accept on {self.address} within "
                                   f"{READY_TIMEOUT_S:.0f} s ({describe_status(self.proc.returncode)})"
                                   f"; log:\n{log}")
        return self

    def _launch(self) -> None:
        number = next(_file_numbers)
        self.port = free_port()
        self.config["listeners"] = [{"address": self.address}]
        self.config_path = write_file(f"sluice-{number}.json", json.dumps(self.config, indent=2))
        self.log_path = os.path.join(workdir(), f"sluice-{number}.log")
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sluice_binary(), self.config_flag, self.config_path],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self._stopping = False
        if self not in _proxies:
            _proxies.append(self)

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.02)
        return False

    def stop(self) -> str | None:
        """SIGTERM and wait. Returns a description of the problem if sluice had already died."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None and not self._stopping:
            self._stopping = True
            return f"sluice died during the test ({describe_status(self.proc.returncode)})"
        self.terminate()
        return None

    def send_signal(self, signum: int) -> None:
        self._stopping = self._stopping or signum in (signal.SIGTERM, signal.SIGINT)
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None if sluice is still running after `timeout` seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def terminate(self) -> int:
        """SIGTERM (drain), wait drain_ms + 5 s, then SIGKILL. Returns the exit status."""
        if self.proc.poll() is None:
            self.send_signal(signal.SIGTERM)
            drain_s = self.config.get("timeouts", {}).get("drain_ms", 30000) / 1000
            if self.wait(drain_s + 5) is None:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._stopping = True
            self.proc.kill()
            self.proc.wait()

    def client(self, timeout: float = 5.0) -> Client:
        return Client(self.port, timeout)

    def get(self, target: str = "/", headers=(), *, timeout: float = 5.0, **kw) -> Response:
        """One GET on a fresh connection (closed afterwards)."""
        with self.client(timeout) as client:
            return client.exchange("GET", target, headers, **kw)

    def rss_bytes(self) -> int:
        return rss_bytes(self.pid)

    def log_text(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


class CliResult:
    def __init__(self, returncode: int, output: str):
        self.returncode = returncode
        self.output = output

    def __repr__(self):
        return f"exit status {self.returncode}, output:\n{self.output}"


def run_cli(*args: str, timeout: float = 10.0) -> CliResult:
    """Runs `sluice ARGS` to completion; stdout and stderr together in .output."""
    try:
        done = subprocess.run([sluice_binary(), *args], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"`sluice {' '.join(args)}` still running after {timeout} s; "
                             f"output: {e.output!r}") from None
    return CliResult(done.returncode, done.stdout.decode("utf-8", "replace"))


# --------------------------------------------------------------------------- HTTP messages

class ProtocolError(Exception):
    """Bytes that are not valid HTTP/1.1 where valid HTTP/1.1 was required."""


class ConnectionClosed(ConnectionError):
    """The peer closed before a complete message (or length) arrived; .partial has what came."""

    def __init__(self, what: str, partial: bytes = b""):
        super().__init__(f"connection closed {what}" + (f" (had {partial[:120]!r})" if partial else ""))
        self.partial = partial


class Incomplete(Exception):
    """A BufferReader ran out of bytes: parse again once more have arrived."""


class Message:
    """A request or response head: start line and headers (names as received), plus body."""

    def __init__(self, start_line: str, headers: list[tuple[str, str]]):
        self.start_line = start_line
        self.headers = headers
        self.body: bytes | None = None

    def header_values(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def header(self, name: str, default: str | None = None) -> str | None:
        values = self.header_values(name)
        return values[0] if values else default

    def has(self, name: str) -> bool:
        return bool(self.header_values(name))

    def joined(self, name: str) -> str | None:
        """All values of `name` joined with ", " (how repeated fields combine), or None."""
        values = self.header_values(name)
        return ", ".join(values) if values else None

    def tokens(self, name: str) -> list[str]:
        """The lowercased comma-separated elements of every `name` field."""
        return [t.strip().lower() for v in self.header_values(name) for t in v.split(",") if t.strip()]

    def describe(self) -> str:
        lines = [self.start_line] + [f"{n}: {v}" for n, v in self.headers]
        body = "" if self.body is None else f"\n<body {len(self.body)} bytes: {self.body[:200]!r}>"
        return "\n".join(lines) + body

    def __repr__(self):
        return f"<{type(self).__name__} {self.start_line!r}>"


class Request(Message):
    """A request head as a Backend received it, with where and when it arrived."""

    def __init__(self, start_line, headers):
        super().__init__(start_line, headers)
        parts = start_line.split(" ")
        if len(parts) != 3:
            raise ProtocolError(f"bad request line {start_line!r}")
        self.method, self.target, self.version = parts
        self.connection = 0  # which accepted connection (1-based) it came on
        self.index = 0  # position on that connection (0 = first request)
        self.body_complete: bool | None = None  # None until the body was read

    def wants_close(self) -> bool:
        connection = self.tokens("connection")
        return "close" in connection or (self.version == "HTTP/1.0" and "keep-alive" not in connection)


class Response(Message):
    """A response head as a Client received it; .framing says how its body is delimited."""

    def __init__(self, start_line, headers):
        super().__init__(start_line, headers)
        match = re.fullmatch(r"(HTTP/\d\.\d) (\d{3})(?: (.*))?", start_line)
        if not match:
            raise ProtocolError(f"bad status line {start_line!r}")
        self.version, self.status, self.reason = match[1], int(match[2]), match[3] or ""
        self.framing = ("none", 0)


def parse_head(data: bytes, kind: type[Message]) -> Message:
    """Parses a head ending in CRLFCRLF, refusing obs-fold and lines without a colon."""
    lines = data[:-4].split(b"\r\n")
    headers = []
    for raw in lines[1:]:
        if raw[:1] in (b" ", b"\t"):
            raise ProtocolError(f"obs-fold line {raw!r}")
        name, colon, value = raw.partition(b":")
        if not colon or not name:
            raise ProtocolError(f"header line without a name and colon: {raw!r}")
        headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return kind(lines[0].decode("latin-1"), headers)


def content_length(values: list[str]) -> int:
    parts = [p.strip() for v in values for p in v.split(",")]
    if not all(re.fullmatch(r"[0-9]+", p) for p in parts) or len({int(p) for p in parts}) != 1:
        raise ProtocolError(f"bad Content-Length {values!r}")
    return int(parts[0])


def request_framing(request: Request) -> tuple[str, int]:
    """("chunked"|"length"|"none", length) of a request body, refusing ambiguous framing."""
    codings, lengths = request.tokens("transfer-encoding"), request.header_values("content-length")
    if codings:
        if lengths or codings[-1] != "chunked":
            raise ProtocolError(f"bad request framing: TE {codings!r}, CL {lengths!r}")
        return ("chunked", 0)
    return ("length", content_length(lengths)) if lengths else ("none", 0)


def response_framing(response: Response, head_request: bool = False) -> tuple[str, int]:
    """("none"|"chunked"|"length"|"close", length) of a response body (RFC 9112 section 6.3)."""
    if head_request or response.status < 200 or response.status in (204, 304):
        return ("none", 0)
    codings, lengths = response.tokens("transfer-encoding"), response.header_values("content-length")
    if codings and lengths:
        raise ProtocolError("response has both Transfer-Encoding and Content-Length")
    if codings:
        return ("chunked", 0) if codings[-1] == "chunked" else ("close", 0)
    return ("length", content_length(lengths)) if lengths else ("close", 0)


def request_bytes(method="GET", target="/", headers=(), body: bytes | None = None, *,
                  version="HTTP/1.1", host: str | None = HOST_HEADER) -> bytes:
    """A request as bytes: Host first (unless host is None), then `headers`, then
    Content-Length when there is a body and no framing header was given."""
    headers = list(headers.items() if isinstance(headers, dict) else headers)
    lines = [f"{method} {target} {version}"] + ([f"Host: {host}"] if host is not None else [])
    lines += [f"{name}: {value}" for name, value in headers]
    named = {name.lower() for name, _ in headers}
    if body is not None and not named & {"content-length", "transfer-encoding"}:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def chunked(*pieces: bytes, extension: str = "") -> bytes:
    """`pieces` in chunked coding (each with `extension`), ending with the last-chunk."""
    out = b"".join(b"%x%s\r\n%s\r\n" % (len(p), extension.encode(), p) for p in pieces if p)
    return out + b"0\r\n\r\n"


# --------------------------------------------------------------------------- reading

class SocketReader:
    """Buffered reads from a socket: heads, lines, exact lengths, or whatever arrives.
    A reset counts as end of stream (.reset tells which)."""

    def __init__(self, sock: socket.socket | None):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False
        self.reset = False

    def _fill(self, size: int = 65536) -> bool:
        if self.eof:
            return False
        try:
            data = self.sock.recv(size)
        except ConnectionResetError:
            self.eof = self.reset = True
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _take(self, n: int) -> bytes:
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def head(self, limit: int = MiB) -> bytes | None:
        """A message head up to and including CRLFCRLF; None on EOF before any byte."""
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            if len(self.buf) > limit:
                raise ProtocolError(f"no end of head within {limit} bytes")
            if not self._fill():
                if not self.buf:
                    return None
                raise ConnectionClosed("in the middle of a head", self._take(len(self.buf)))
        return self._take(end + 4)

    def line(self, limit: int = 65536) -> bytes:
        """One CRLF-terminated line, without the CRLF."""
        while (end := self.buf.find(b"\r\n")) < 0:
            if len(self.buf) > limit:
                raise ProtocolError(f"no end of line within {limit} bytes")
            if not self._fill():
                raise ConnectionClosed("in the middle of a line", self._take(len(self.buf)))
        return self._take(end + 2)[:-2]

    def exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill(max(65536, n - len(self.buf))):
                raise ConnectionClosed(f"after {len(self.buf)} of {n} bytes", self._take(len(self.buf)))
        return self._take(n)

    def some(self, n: int = 65536) -> bytes:
        """Up to n bytes: buffered ones first, else one receive; b"" at end of stream."""
        if not self.buf:
            self._fill(n)
        return self._take(min(n, len(self.buf)))


class BufferReader(SocketReader):
    """A SocketReader over bytes already received; raises Incomplete when they run out."""

    def __init__(self, data: bytes):
        super().__init__(None)
        self.buf = bytearray(data)

    def _fill(self, size: int = 0) -> bool:
        raise Incomplete()


def iter_body(reader: SocketReader, framing: tuple[str, int], piece: int = 65536):
    """Yields a body's bytes as they arrive, decoding chunked coding."""
    kind, length = framing
    if kind == "length":
        remaining = length
        while remaining:
            data = reader.some(min(piece, remaining))
            if not data:
                raise ConnectionClosed(f"after {length - remaining} of {length} body bytes")
            remaining -= len(data)
            yield data
    elif kind == "chunked":
        yield from iter_chunks(reader, piece)
    elif kind == "close":
        while data := reader.some(piece):
            yield data


def iter_chunks(reader: SocketReader, piece: int):
    while True:
        line = reader.line()
        size = line.split(b";", 1)[0].strip(b" \t")
        if not re.fullmatch(rb"[0-9a-fA-F]{1,15}", size):
            raise ProtocolError(f"bad chunk size line {line!r}")
        remaining = int(size, 16)
        if remaining == 0:
            while reader.line():  # trailer fields, then the empty line
                pass
            return
        while remaining:
            data = reader.some(min(piece, remaining))
            if not data:
                raise ConnectionClosed(f"with {remaining} bytes of a chunk missing")
            remaining -= len(data)
            yield data
        if reader.exact(2) != b"\r\n":
            raise ProtocolError("chunk data not followed by CRLF")


def try_parse_response(data: bytes, head_request: bool = False):
    """(Response with body, bytes consumed) if `data` starts with a complete response, else None."""
    reader = BufferReader(data)
    try:
        head = reader.head()
        response = parse_head(head, Response)
        response.framing = response_framing(response, head_request)
        response.body = b"".join(iter_body(reader, response.framing))
    except Incomplete:
        return None
    return response, len(data) - len(reader.buf)


# --------------------------------------------------------------------------- client

@contextmanager
def _deadline(what: str, seconds: float, reader: SocketReader):
    try:
        yield
    except TimeoutError:
        raise AssertionError(f"no {what} within {seconds} s (unparsed bytes: "
                             f"{bytes(reader.buf[:200])!r})") from None


class Client:
    """One raw connection to 127.0.0.1:port; every read gives up after `timeout` seconds."""

    def __init__(self, port: int, timeout: float = 5.0):
        self.timeout = timeout
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = SocketReader(self.sock)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes, *, tolerate_close: bool = False) -> None:
        """Sends all of `data`; with tolerate_close, a peer that already closed is no error."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            if not tolerate_close:
                raise

    def request(self, method="GET", target="/", headers=(), body=None, **kw) -> None:
        self.send(request_bytes(method, target, headers, body, **kw))

    def read_head(self, *, head_request: bool = False) -> Response:
        """The next response head; its body is left to read (see body_pieces)."""
        with _deadline("response head", self.timeout, self.reader):
            head = self.reader.head()
        if head is None:
            raise ConnectionClosed("before any response byte")
        response = parse_head(head, Response)
        response.framing = response_framing(response, head_request)
        return response

    def body_pieces(self, response: Response, piece: int = 65536):
        return iter_body(self.reader, response.framing, piece)

    def read_response(self, *, head_request: bool = False) -> Response:
        """The next response, 1xx included, with its whole body."""
        response = self.read_head(head_request=head_request)
        with _deadline("complete response body", self.timeout, self.reader):
            response.body = b"".join(self.body_pieces(response))
        return response

    def read_final_response(self, *, head_request: bool = False) -> Response:
        """The next response that is not an interim 1xx (101 counts as final)."""
        while True:
            response = self.read_response(head_request=head_request)
            if response.status >= 200 or response.status == 101:
                return response

    def read_response_or_close(self) -> Response | None:
        """The next final response, or None if the server closed without sending a byte."""
        try:
            return self.read_final_response()
        except ConnectionClosed as closed:
            if closed.partial:
                raise
            return None

    def exchange(self, method="GET", target="/", headers=(), body=None, **kw) -> Response:
        """Sends one request and returns its final response."""
        self.request(method, target, headers, body, **kw)
        return self.read_final_response(head_request=method == "HEAD")

    def recv_exact(self, n: int) -> bytes:
        with _deadline(f"{n} bytes", self.timeout, self.reader):
            return self.reader.exact(n)

    def recv_some(self, n: int = 65536) -> bytes:
        with _deadline("bytes", self.timeout, self.reader):
            return self.reader.some(n)

    def wait_closed(self, timeout: float = 3.0) -> bool:
        """True once the server closes (FIN or reset) within `timeout`; bytes that arrive
        meanwhile are dropped."""
        self.reader.buf.clear()
        deadline = time.monotonic() + timeout
        try:
            while not self.reader.eof and (left := deadline - time.monotonic()) > 0:
                self.sock.settimeout(left)
                try:
                    self.reader._fill()
                except TimeoutError:
                    break
                self.reader.buf.clear()
        finally:
            self.sock.settimeout(self.timeout)
        return self.reader.eof


# --------------------------------------------------------------------------- backend

class Backend:
    """A raw-socket HTTP/1.1 server on 127.0.0.1 that passes each request to handler(exchange),
    one thread per connection, keep-alive until a side closes.

    .requests    every request head received, in arrival order (Request objects)
    .connections how many connections were accepted
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


def count_upload():
    """Reads the body without keeping it; answers JSON {"bytes": n, "crc32": c}."""
    def handler(ex: Exchange):
        count, crc = 0, 0
        for data in ex.body_pieces(MiB):
            count += len(data)
            crc = zlib.crc32(data, crc)
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


# --------------------------------------------------------------------------- processes

def rss_bytes(pid: int) -> int:
    """Resident memory (VmRSS) of pid plus its child processes."""
    return sum(_vmrss(p) for p in [pid, *_child_pids(pid)])


def _vmrss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _child_pids(pid: int) -> list[int]:
    children = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                children += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return children


def raise_fd_limit(needed: int) -> int:
    """Raises this process's RLIMIT_NOFILE soft limit to the hard limit (children inherit it);
    fails the test if even that is below `needed`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if target < needed:
        raise AssertionError(f"needs {needed} file descriptors; hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


# --------------------------------------------------------------------------- assertions

def assert_status(response: Response, expected: int) -> None:
    assert response is not None, f"expected status {expected}, the connection closed instead"
    assert response.status == expected, \
        f"expected status {expected}, got {response.status}:\n{response.describe()}"


def assert_rejected_before_backend(status: int, *raw_requests: bytes, **config) -> None:
    """Each raw request, on its own connection, gets `status`, then the connection closes;
    the backend never receives a request."""
    with Backend(ok(), strict=False) as backend, Sluice(proxy_config(backend, **config)) as proxy:
        for raw in raw_requests:
            with proxy.client() as client:
                client.send(raw, tolerate_close=True)
                assert_status(client.read_response_or_close(), status)
                assert client.wait_closed(3.0), f"connection still open 3 s after the {status}"
        time.sleep(0.2)  # a request sluice wrongly forwarded would arrive by now
    assert not backend.requests, f"backend received a request:\n{backend.requests[0].describe()}"


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
    """A Backend listening on a chosen host and port: 127.0.0.x (all loopback on Linux), and
    port 0 for one the kernel picks or the port of a stopped Backend to take its place."""

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
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._bind(host, port)
        self._listener.listen(1024)
        self._listener.settimeout(0.1)
        self.host = host
        self.port = self._listener.getsockname()[1]
        self.address = f"{host}:{self.port}"
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


def wait_for_log(proxy: Sluice, pattern: str, timeout: float, *, count: int = 1,
                 start: int = 0) -> list[re.Match] | None:
    """Waits until the log (from character `start` on) has `count` matches of the regular
    expression `pattern`; returns the matches, or None after `timeout` seconds."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        matches = list(regex.finditer(proxy.log_text(), start))
        if len(matches) >= count:
            return matches
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)


class LoadClients:
    """`clients` threads each sending keep-alive GETs through the proxy, one after another,
    until stop(). A connection the proxy closes is replaced. .results holds (start time,
    status or None, body or error text) per request; a request that fails (error, closed
    connection, timeout) is recorded with status None."""

    def __init__(self, port: int, clients: int = 4, *, timeout: float = 5.0, pause: float = 0.0):
        self.port = port
        self.timeout = timeout
        self.pause = pause
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
        while not self._stop.is_set():
            started = time.monotonic()
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
                self._record(started, None, repr(error))
                if client is not None:
                    client.close()
                client = None
            if self.pause:
                time.sleep(self.pause)
        if client is not None:
            client.close()

    def snapshot(self) -> list[tuple[float, int | None, str]]:
        with self._lock:
            return list(self.results)

    def failures(self) -> list[tuple[float, int | None, str]]:
        return [r for r in self.snapshot() if r[1] != 200]


class SourceClient(Client):
    """A Client whose connection comes from a chosen local address (any 127.0.0.x)."""

    def __init__(self, port: int, source: str, timeout: float = 5.0):
        self.timeout = timeout
        self.sock = socket.create_connection((HOST, port), timeout=timeout,
                                             source_address=(source, 0))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = SocketReader(self.sock)
