"""HTTP/1.1 on the wire: message heads, strict framing, buffered readers, request bytes and
the raw-socket Client."""

from __future__ import annotations

import re
import socket
import time
import zlib
from contextlib import contextmanager

HOST = "127.0.0.1"
HOST_HEADER = "sluice.test"  # what Client puts in Host unless told otherwise
MiB = 1 << 20


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

    def recv_crc(self, total: int, *, slow_for: float = 0.0, slow_piece: int = 16 * 1024,
                 pause: float = 0.0, each=None) -> int:
        """Reads `total` body bytes and returns their CRC-32: for the first `slow_for` seconds in
        pieces of at most `slow_piece` bytes with `pause` s after each, then up to 1 MiB at a
        time. Calls `each()` after every piece; fails if the connection closes early."""
        started, remaining, crc = time.monotonic(), total, 0
        while remaining:
            slow = time.monotonic() - started < slow_for
            data = self.recv_some(min(remaining, slow_piece if slow else 1 << 20))
            assert data, f"connection closed with {remaining} of {total} bytes to go"
            remaining -= len(data)
            crc = zlib.crc32(data, crc)
            if each:
                each()
            if slow and pause:
                time.sleep(pause)
        return crc

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
