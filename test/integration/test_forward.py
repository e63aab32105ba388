"""The forward proxy ("mode": "forward"), driven by curl -x as a client would use it:
absolute-form requests to origins the suite owns on 127.0.0.1, CONNECT to a local TLS server,
the allow list (outside it: 403; none at all: nothing passes), names resolved through the
suite's DNS server (a private answer refused unless allow_private; a failed lookup: 502 naming
the host; answers kept for their TTL), Proxy-Authorization users with hashes from
`sluice hash-password` (407 without, 200 with), and a CONNECT tunnel carrying 100 MiB each way
with the proxy's memory staying bounded."""

import hashlib
import os
import socket
import ssl
import subprocess
import threading
import time

import pytest

from harness import HOST, Backend, Client, Sluice, assert_status, echo, ok, sluice_binary
from test_dns import DnsServer
from tls_material import make_material

pytestmark = pytest.mark.timeout(120)


def forward_config(forward: dict | None, *, workers: int = 2, **extra) -> dict:
    listener = {"address": f"{HOST}:0", "mode": "forward"}
    if forward is not None:
        listener["forward"] = forward
    return {"workers": workers, "listeners": [listener], **extra}


def curl(proxy: Sluice, url: str, *args: str, timeout: float = 20) -> tuple[int, str]:
    """curl through the proxy: (HTTP status, body)."""
    result = subprocess.run(
        ["curl", "-s", "-S", "--max-time", str(timeout), "-x", f"http://{proxy.address}",
         "-o", "-", "-w", "\n%{http_code}", *args, url],
        capture_output=True, text=True, timeout=timeout + 5)
    body, _, status = result.stdout.rpartition("\n")
    return int(status or 0), body


def hash_password(password: str) -> str:
    out = subprocess.run([sluice_binary(), "hash-password"], input=password + "\n",
                         capture_output=True, text=True, timeout=10, check=True)
    return out.stdout.strip()


# --------------------------------------------------------------------------- absolute-form

def test_an_absolute_form_get_reaches_the_origin_in_origin_form():
    with Backend(ok(b"from origin")) as origin, \
            Sluice(forward_config({"allow": [f"127.0.0.1:{origin.port}"]})) as proxy:
        status, body = curl(proxy, f"http://127.0.0.1:{origin.port}/a/b?c=d")
        assert (status, body) == (200, "from origin")
    request = origin.requests[-1]
    assert request.target == "/a/b?c=d"
    assert request.header("Host") == f"127.0.0.1:{origin.port}"


def test_requests_to_one_origin_share_a_pooled_connection():
    with Backend(ok()) as origin, \
            Sluice(forward_config({"allow": ["127.0.0.1:*"]}, workers=1)) as proxy:
        with Client(proxy.port) as client:
            for i in range(5):
                client.request("GET", f"http://127.0.0.1:{origin.port}/r{i}",
                               host=f"127.0.0.1:{origin.port}")
                assert_status(client.read_response(), 200)
        with Client(proxy.port) as other:  # another client, the same origin
            other.request("GET", f"http://127.0.0.1:{origin.port}/other",
                          host=f"127.0.0.1:{origin.port}")
            assert_status(other.read_response(), 200)
    assert len(origin.requests) == 6
    assert origin.connections == 1


@pytest.mark.parametrize("level,via,xff", [
    ("transparent", True, True), ("anonymous", True, False), ("elite", False, False)])
def test_the_listener_anonymity_level_decides_what_the_origin_learns(level, via, xff):
    with Backend(ok()) as origin, \
            Sluice(forward_config({"allow": ["127.0.0.1:*"], "forwarded": level})) as proxy:
        status, _ = curl(proxy, f"http://127.0.0.1:{origin.port}/",
                         "-H", "X-Forwarded-For: 203.0.113.9")
        assert status == 200
    request = origin.requests[-1]
    assert (request.header("Via") is not None) == via
    forwarded_for = request.header("X-Forwarded-For")
    if xff:
        assert forwarded_for == "203.0.113.9, 127.0.0.1"
    else:
        assert forwarded_for is None


def test_an_origin_form_request_is_refused_with_400():
    with Sluice(forward_config({"allow": ["*:*"]})) as proxy:
        response = proxy.get("/")
    assert_status(response, 400)
    assert b"absolute-form" in response.body


def test_an_https_absolute_form_target_is_told_to_use_connect():
    with Backend(ok()) as origin, Sluice(forward_config({"allow": ["127.0.0.1:*"]})) as proxy:
        with Client(proxy.port) as client:
            client.request("GET", f"https://127.0.0.1:{origin.port}/",
                           host=f"127.0.0.1:{origin.port}")
            response = client.read_response()
    assert_status(response, 400)
    assert b"CONNECT" in response.body
    assert origin.requests == []


# --------------------------------------------------------------------------- allow list

def test_a_destination_outside_the_allow_list_gets_403_and_no_connection():
    with Backend(ok()) as origin, \
            Sluice(forward_config({"allow": ["127.0.0.1:1"]})) as proxy:
        status, body = curl(proxy, f"http://127.0.0.1:{origin.port}/")
        connect_status, _ = curl(proxy, f"https://127.0.0.1:{origin.port}/", "-k")
    assert status == 403 and f"127.0.0.1:{origin.port}" in body
    assert connect_status == 0  # curl reports the refused CONNECT as a failure: no 200
    assert origin.connections == 0


def test_a_forward_listener_without_an_allow_list_lets_nothing_through():
    with Backend(ok()) as origin, Sluice(forward_config(None)) as proxy:
        status, _ = curl(proxy, f"http://127.0.0.1:{origin.port}/")
    assert status == 403
    assert origin.connections == 0


def test_ports_default_to_80_and_443_when_a_pattern_names_none():
    with Backend(ok()) as origin, Sluice(forward_config({"allow": ["127.0.0.1"]})) as proxy:
        status, _ = curl(proxy, f"http://127.0.0.1:{origin.port}/")
    assert status == 403


# --------------------------------------------------------------------------- names

def dns_forward(dns: DnsServer, forward: dict, workers: int = 2) -> dict:
    return forward_config(forward, workers=workers,
                          resolver={"nameservers": [dns.address], "timeout_ms": 500})


def test_a_name_resolving_to_a_private_address_is_refused_unless_allowed():
    with DnsServer({"origin.test": ["127.0.0.1"]}) as dns, Backend(ok()) as origin:
        refused = dns_forward(dns, {"allow": ["origin.test:*"]})
        with Sluice(refused) as proxy:
            status, body = curl(proxy, f"http://origin.test:{origin.port}/")
        assert status == 403 and "private address" in body
        assert origin.connections == 0
        allowed = dns_forward(dns, {"allow": ["*.test:*"], "allow_private": True})
        with Sluice(allowed) as proxy:
            status, _ = curl(proxy, f"http://Origin.Test:{origin.port}/named")
        assert status == 200
    assert origin.requests[-1].header("Host") == f"Origin.Test:{origin.port}"


def test_an_ip_literal_on_the_list_is_allowed_as_written_even_when_private():
    with Backend(ok()) as origin, Sluice(forward_config({"allow": ["127.0.0.1:*"]})) as proxy:
        status, _ = curl(proxy, f"http://127.0.0.1:{origin.port}/")
    assert status == 200


def test_an_ip_literal_allowed_only_by_a_wildcard_is_refused_when_private():
    with Backend(ok()) as origin, Sluice(forward_config({"allow": ["*:*"]})) as proxy:
        status, body = curl(proxy, f"http://127.0.0.1:{origin.port}/")
    assert status == 403 and "private address" in body


def test_a_name_that_does_not_resolve_gets_502_naming_the_host():
    with DnsServer({}) as dns, Sluice(dns_forward(dns, {"allow": ["*.test:*"]})) as proxy:
        status, body = curl(proxy, "http://missing.test:8080/")
    assert status == 502
    assert "cannot resolve missing.test" in body


def test_a_request_body_sent_while_the_name_resolves_reaches_the_origin_whole():
    """The body that comes with the head waits while the proxy looks the name up."""
    body = b"payload " * 1000
    with DnsServer({"origin.test": ["127.0.0.1"]}) as dns, Backend(echo()) as origin:
        config = dns_forward(dns, {"allow": ["origin.test:*"], "allow_private": True}, workers=1)
        with Sluice(config) as proxy, Client(proxy.port) as client:
            for i in range(2):  # the first waits for DNS, the second finds the answer cached
                client.request("POST", f"http://origin.test:{origin.port}/up{i}", body=body,
                               host=f"origin.test:{origin.port}")
                response = client.read_response()
                assert_status(response, 200)
                assert response.body == body


def test_a_name_is_resolved_once_while_its_answer_is_fresh():
    with DnsServer({"origin.test": ["127.0.0.1"]}) as dns, Backend(ok()) as origin:
        config = dns_forward(dns, {"allow": ["origin.test:*"], "allow_private": True}, workers=1)
        with Sluice(config) as proxy:
            since = time.monotonic()
            with Client(proxy.port) as client:  # three requests well inside the 1 s TTL
                for i in range(3):
                    client.request("GET", f"http://origin.test:{origin.port}/{i}",
                                   host=f"origin.test:{origin.port}")
                    assert_status(client.read_response(), 200)
            assert len(dns.queries_since(since)) == 1
            time.sleep(1.2)  # past the TTL: asked again
            status, _ = curl(proxy, f"http://origin.test:{origin.port}/later")
            assert status == 200
            assert len(dns.queries_since(since)) == 2


# --------------------------------------------------------------------------- users

def test_without_credentials_the_proxy_answers_407_with_a_challenge():
    users = {"alice": hash_password("s3cret")}
    with Backend(ok()) as origin, \
            Sluice(forward_config({"allow": ["127.0.0.1:*"], "users": users})) as proxy:
        with Client(proxy.port) as client:
            client.request("GET", f"http://127.0.0.1:{origin.port}/",
                           host=f"127.0.0.1:{origin.port}")
            response = client.read_response()
        assert_status(response, 407)
        assert response.header("Proxy-Authenticate") == 'Basic realm="sluice"'
        wrong, _ = curl(proxy, f"http://127.0.0.1:{origin.port}/", "-U", "alice:wrong")
        stranger, _ = curl(proxy, f"http://127.0.0.1:{origin.port}/", "-U", "bob:s3cret")
        right, _ = curl(proxy, f"http://127.0.0.1:{origin.port}/in", "-U", "alice:s3cret")
    assert (wrong, stranger, right) == (407, 407, 200)
    assert [r.target for r in origin.requests] == ["/in"]
    assert origin.requests[0].header("Proxy-Authorization") is None  # the proxy's, not passed on


def test_connect_needs_credentials_too():
    users = {"alice": hash_password("s3cret")}
    with Backend(ok()) as origin, \
            Sluice(forward_config({"allow": ["127.0.0.1:*"], "users": users})) as proxy:
        with Client(proxy.port) as client:
            client.sock.sendall(f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1\r\n"
                                f"Host: 127.0.0.1:{origin.port}\r\n\r\n".encode())
            response = client.read_response()
    assert_status(response, 407)
    assert origin.connections == 0


def test_hash_password_prints_a_salted_scrypt_hash():
    first, second = hash_password("pw"), hash_password("pw")
    assert first.startswith("scrypt$16384$8$1$")
    assert first != second  # a fresh salt each time


# --------------------------------------------------------------------------- CONNECT

class TlsOrigin:
    """An HTTPS server on 127.0.0.1 with the suite's localhost certificate: one response per
    connection, naming the path it was asked for."""

    def __init__(self):
        material = make_material()
        self.ca = material.ca_crt
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(material.localhost_crt, material.localhost_key)
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            try:
                conn.settimeout(5)
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    head = b""
                    while b"\r\n\r\n" not in head:
                        head += tls.recv(4096)
                    path = head.split(b" ")[1]
                    body = b"secure " + path
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close"
                                b"\r\n\r\n%s" % (len(body), body))
            except (OSError, ssl.SSLError):
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(2)
        self.sock.close()


def test_connect_tunnels_tls_to_a_local_https_server():
    with TlsOrigin() as origin, Sluice(forward_config({"allow": ["127.0.0.1:*"]})) as proxy:
        status, body = curl(proxy, f"https://127.0.0.1:{origin.port}/tunnelled",
                            "--cacert", origin.ca)
    assert (status, body) == (200, "secure /tunnelled")


def test_connect_on_a_reverse_listener_is_still_refused_with_405():
    with Backend(ok()) as backend:
        config = {"workers": 1, "listeners": [{"address": f"{HOST}:0"}],
                  "upstreams": {"app": {"backends": [{"address": backend.address}]}},
                  "routes": [{"upstream": "app"}]}
        with Sluice(config) as proxy, Client(proxy.port) as client:
            client.sock.sendall(f"CONNECT {backend.address} HTTP/1.1\r\n"
                                f"Host: {backend.address}\r\n\r\n".encode())
            assert_status(client.read_response(), 405)


MIB = 1024 * 1024


def peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def test_a_tunnel_streams_100_mib_each_way_with_bounded_memory():
    """The origin sends 100 MiB while it reads the client's 100 MiB; both sides check a
    digest, and the proxy's peak memory grows by far less than what passed through it."""
    size = 100 * MIB
    block = os.urandom(MIB)
    origin = socket.socket()
    origin.bind((HOST, 0))
    origin.listen(1)
    received = {}

    def serve():
        conn, _ = origin.accept()
        with conn:
            digest = hashlib.sha256()
            sender = threading.Thread(target=lambda: [conn.sendall(block) for _ in range(100)])
            sender.start()
            got = 0
            while got < size:
                piece = conn.recv(256 * 1024)
                if not piece:
                    break
                digest.update(piece)
                got += len(piece)
            sender.join()
            received["origin"] = (got, digest.hexdigest())

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    port = origin.getsockname()[1]
    with Sluice(forward_config({"allow": ["127.0.0.1:*"]}, workers=1)) as proxy:
        before = peak_rss_kib(proxy.pid)
        client = socket.create_connection((HOST, proxy.port), timeout=30)
        client.sendall(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
                       .encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(1)
        assert head.startswith(b"HTTP/1.1 200")
        sender = threading.Thread(target=lambda: [client.sendall(block) for _ in range(100)])
        sender.start()
        digest, got = hashlib.sha256(), 0
        while got < size:
            piece = client.recv(256 * 1024)
            if not piece:
                break
            digest.update(piece)
            got += len(piece)
        sender.join()
        client.close()
        server.join(30)
        growth_mib = (peak_rss_kib(proxy.pid) - before) / 1024
    origin.close()
    expected = hashlib.sha256(block * 100).hexdigest()
    assert got == size and digest.hexdigest() == expected
    assert received["origin"] == (size, expected)
    assert growth_mib < 32, f"peak memory grew by {growth_mib:.0f} MiB for a 200 MiB tunnel"
