"""Client side of the TLS listener tests: a Sluice whose listener terminates TLS, the openssl
s_client and curl tools run with a time limit and their output read, and a keep-alive
HTTP/1.1 client over Python's ssl module.

    material = make_material()
    tls = listener_tls(certificate(material.site_ecdsa_crt, material.site_ecdsa_key))
    with Backend(ok()) as backend, TlsSluice(proxy_config(backend), tls) as proxy:
        assert s_client(proxy.port, "-servername", "site.test").peer_serial() == 0x1002
        with TlsClient(proxy.port, client_context(material)) as client:
            assert client.exchange("GET", "/").status == 200
"""

from __future__ import annotations

import re
import signal
import socket
import ssl
import subprocess
import time

from harness import HOST, Client, SocketReader, Sluice, wait_for_log
from tls_material import Material

TOOL_TIMEOUT_S = 15.0  # the most any one openssl or curl run may take
SITE = "site.test"


# --------------------------------------------------------------------------- config

def certificate(crt: str, key: str, ocsp: str | None = None) -> dict:
    """One entry of a TLS listener's "certificates"."""
    entry = {"cert": crt, "key": key}
    if ocsp is not None:
        entry["ocsp"] = ocsp
    return entry


def listener_tls(*certificates: dict, **settings) -> dict:
    """A listener's "tls" object: the certificates (the first is the default) and any other
    settings (min_version, alpn, session_tickets, client_ca, handshake_timeout_ms, ...)."""
    return {"certificates": list(certificates), **settings}


class TlsSluice(Sluice):
    """A Sluice (see proxy.Sluice) whose listener carries the `tls` object."""

    def __init__(self, config: dict, tls: dict, **kwargs):
        super().__init__(config, **kwargs)
        self.config["listeners"] = [{"address": f"{HOST}:0", "tls": tls}]
        self.reloads = 0

    @property
    def tls(self) -> dict:
        return self.config["listeners"][0]["tls"]

    def reload(self, timeout: float = 5.0) -> None:
        """SIGHUP; returns once the log says the config was reloaded (fails otherwise)."""
        self.reloads += 1
        generation = self.reloads + 1
        self.send_signal(signal.SIGHUP)
        assert wait_for_log(self, rf"config reloaded \(generation {generation}\)", timeout), \
            f"no \"config reloaded (generation {generation})\" within {timeout} s:\n" \
            f"{self.log_tail()}"


# --------------------------------------------------------------------------- certificates

def der_serial(der: bytes) -> int:
    """The serial number of a DER certificate."""
    result = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-serial"],
                            input=der, capture_output=True, timeout=TOOL_TIMEOUT_S)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return int(result.stdout.decode().strip().split("=", 1)[1], 16)


def pem_serial(pem: str) -> int:
    """The serial number of a PEM certificate."""
    result = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem,
                            capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    return int(result.stdout.strip().split("=", 1)[1], 16)


# --------------------------------------------------------------------------- openssl s_client

class SClientResult:
    """What one `openssl s_client` run printed (stdout and stderr together) and its exit status."""

    def __init__(self, args: list[str], returncode: int, output: str, seconds: float):
        self.args = args
        self.returncode = returncode
        self.output = output
        self.seconds = seconds

    def __repr__(self):
        return (f"`{' '.join(self.args)}`: exit status {self.returncode} after "
                f"{self.seconds:.1f} s, output:\n{self.output}")

    @property
    def handshake_done(self) -> bool:
        """Whether a cipher was agreed (s_client prints "Cipher is (NONE)" otherwise)."""
        match = re.search(r"^(?:New|Reused), .*Cipher is (\S+)", self.output, re.MULTILINE)
        return bool(match) and match.group(1) != "(NONE)"

    @property
    def reused(self) -> bool:
        return bool(re.search(r"^Reused, ", self.output, re.MULTILINE))

    @property
    def new(self) -> bool:
        return bool(re.search(r"^New, ", self.output, re.MULTILINE))

    @property
    def protocol(self) -> str | None:
        """"TLSv1.2" or "TLSv1.3" as the session reports it, or None."""
        match = re.search(r"^(?:New|Reused), (TLSv[\d.]+), Cipher is", self.output, re.MULTILINE)
        return match.group(1) if match else None

    @property
    def alpn(self) -> str | None:
        """The protocol ALPN agreed, or None when s_client says none was."""
        match = re.search(r"^ALPN protocol: (\S+)", self.output, re.MULTILINE)
        return match.group(1) if match else None

    @property
    def peer_signature_type(self) -> str | None:
        match = re.search(r"^Peer signature type: (\S+)", self.output, re.MULTILINE)
        return match.group(1) if match else None

    def peer_serial(self) -> int | None:
        """The serial of the certificate the server sent, or None if it sent none."""
        # Only the PEM under "Server certificate": with -status, the OCSP response printed
        # before it may hold its signer's certificate.
        match = re.search(r"^Server certificate\n(-----BEGIN CERTIFICATE-----\n.*?"
                          r"-----END CERTIFICATE-----\n)", self.output, re.DOTALL | re.MULTILINE)
        return pem_serial(match.group(1)) if match else None


def s_client(port: int, *args: str, send: bytes = b"", after: float = 0.0,
             timeout: float = TOOL_TIMEOUT_S) -> SClientResult:
    """Runs `openssl s_client -connect 127.0.0.1:PORT ARGS`: waits `after` seconds, writes
    `send` to its stdin, closes stdin, and waits for it to end (at most `timeout` s, or the test
    fails). Without -ign_eof, the end of stdin makes s_client close the connection; `after`
    leaves time for what the server sends after the handshake (TLS 1.3 session tickets)."""
    command = ["openssl", "s_client", "-connect", f"{HOST}:{port}", *args]
    started = time.monotonic()
    proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        if after:
            time.sleep(after)
        try:
            proc.stdin.write(send)
            proc.stdin.flush()
        except BrokenPipeError:  # it ended already (a failed handshake)
            pass
        output, _ = proc.communicate(timeout=timeout)  # closes stdin first
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        raise AssertionError(f"`{' '.join(command)}` still running after {timeout} s; "
                             f"output:\n{output.decode(errors='replace')}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return SClientResult(command, proc.returncode, output.decode(errors="replace"),
                         time.monotonic() - started)


# --------------------------------------------------------------------------- curl

def curl(port: int, material: Material, path: str = "/", *args: str, host: str = SITE,
         timeout: float = TOOL_TIMEOUT_S) -> subprocess.CompletedProcess:
    """`curl https://HOST:PORT/PATH ARGS` with the test CA, HOST resolved to 127.0.0.1. stdout
    holds the body, then a space and the status code (000 when there was no response)."""
    command = ["curl", "-sS", "--max-time", str(int(timeout) - 2), "--cacert", material.ca_crt,
               "--resolve", f"{host}:{port}:{HOST}", "-w", " %{http_code}",
               f"https://{host}:{port}{path}", *args]
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"`{' '.join(command)}` still running after {timeout} s") from None


def curl_status(result: subprocess.CompletedProcess) -> tuple[str, int]:
    """(body, status code) from what curl() printed."""
    body, _, code = result.stdout.rpartition(" ")
    return body, int(code)


# --------------------------------------------------------------------------- Python ssl

def client_context(material: Material, *, cert: str | None = None, key: str | None = None,
                   minimum: ssl.TLSVersion | None = None,
                   maximum: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A client context that trusts the test CA and checks the host name; with `cert` and
    `key`, it shows that client certificate."""
    context = ssl.create_default_context(cafile=material.ca_crt)
    if cert is not None:
        context.load_cert_chain(cert, key)
    if minimum is not None:
        context.minimum_version = minimum
    if maximum is not None:
        context.maximum_version = maximum
    return context


class TlsClient(Client):
    """wire.Client over TLS: one connection to 127.0.0.1:port, handshake done on creation,
    with SNI and the name checked against `server_name`; every read gives up after `timeout`.
    `session` resumes a session of an earlier connection; `receive_buffer` sets SO_RCVBUF."""

    def __init__(self, port: int, context: ssl.SSLContext, server_name: str = SITE, *,
                 timeout: float = 5.0, session: ssl.SSLSession | None = None,
                 receive_buffer: int | None = None):
        self.timeout = timeout
        raw = socket.socket()
        try:
            if receive_buffer is not None:  # before connecting, so the window stays small
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            raw.settimeout(timeout)
            raw.connect((HOST, port))
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.sock = context.wrap_socket(raw, server_hostname=server_name, session=session)
        except BaseException:
            raw.close()
            raise
        self.reader = SocketReader(self.sock)

    @property
    def session(self) -> ssl.SSLSession | None:
        return self.sock.session

    @property
    def session_reused(self) -> bool:
        return self.sock.session_reused

    def peer_serial(self) -> int:
        return der_serial(self.sock.getpeercert(binary_form=True))


def client_hello(server_name: str = SITE) -> bytes:
    """The bytes of a real ClientHello record (TLS 1.2 and 1.3 offered), as Python's ssl
    would send them first on a connection to `server_name`."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    assert hello[:1] == b"\x16" and len(hello) > 100, hello[:40]
    return hello


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, bool, float]:
    """Reads what arrives on `sock` until the peer closes (FIN or reset) or `timeout` passes.
    Returns (the bytes, whether it closed, seconds until it closed or gave up)."""
    started = time.monotonic()
    deadline = started + timeout
    data = b""
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            piece = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return data, True, time.monotonic() - started
        if not piece:
            return data, True, time.monotonic() - started
        data += piece
    return data, False, time.monotonic() - started
