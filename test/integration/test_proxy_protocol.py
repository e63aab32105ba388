"""PROXY protocol: a listener with "proxy_protocol" reads a v1 or v2 header before anything else
(TLS included) and takes its source address for the client's (X-Forwarded-For here); a
connection without a valid header in time, or from a peer outside "proxy_protocol_from", is
closed without a reply while sluice goes on serving. An upstream with "send_proxy_protocol"
opens each backend connection with a header naming the client, checked against Debian's nginx
listening with `proxy_protocol`, and never lends a connection that named one client to another.

The test client plays the L4 balancer: it writes the header itself, with made-up addresses."""

import ipaddress
import socket
import ssl
import struct
import time

import pytest

from harness import (HOST, Backend, Client, SocketReader, Sluice, assert_status, ok, proxy_config,
                     request_bytes)
from nginx import nginx_backend
from tls_client import SITE, certificate, client_context, listener_tls
from tls_material import make_material

pytestmark = pytest.mark.timeout(60)

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def default_destination(source: str) -> str:
    return "2001:db8::1" if ":" in source else "192.0.2.1"


def v1(source: str, destination: str | None = None, source_port: int = 40000,
       destination_port: int = 443) -> bytes:
    family = "TCP6" if ":" in source else "TCP4"
    destination = destination or default_destination(source)
    return f"PROXY {family} {source} {destination} {source_port} {destination_port}\r\n".encode()


def v2(source: str, destination: str | None = None, source_port: int = 40000,
       destination_port: int = 443, tlvs: bytes = b"") -> bytes:
    s = ipaddress.ip_address(source)
    d = ipaddress.ip_address(destination or default_destination(source))
    family = 0x21 if s.version == 6 else 0x11
    block = s.packed + d.packed + struct.pack("!HH", source_port, destination_port) + tlvs
    return V2_SIGNATURE + bytes([0x21, family]) + struct.pack("!H", len(block)) + block


V2_LOCAL = V2_SIGNATURE + bytes([0x20, 0x00, 0x00, 0x00])


def pp_config(*backends, listener=None, **kwargs) -> dict:
    """proxy_config with a listener that reads PROXY headers (the harness keeps its keys)."""
    config = proxy_config(*backends, **kwargs)
    config["listeners"] = [{"address": f"{HOST}:0", "proxy_protocol": True, **(listener or {})}]
    return config


class PrefixClient(Client):
    """wire.Client whose connection starts with `prefix` (a header), then TLS over `context`
    when one is given."""

    def __init__(self, port: int, prefix: bytes, context: ssl.SSLContext | None = None,
                 timeout: float = 5.0):
        self.timeout = timeout
        raw = socket.create_connection((HOST, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if prefix:
            raw.sendall(prefix)
        self.sock = context.wrap_socket(raw, server_hostname=SITE) if context else raw
        self.reader = SocketReader(self.sock)


def forwarded_for(backend: Backend) -> str | None:
    return backend.requests[-1].header("X-Forwarded-For")


def assert_closed_without_reply(client: Client, timeout: float = 3.0) -> None:
    """The connection closes within `timeout` and not one byte comes back."""
    client.sock.settimeout(timeout)
    data = b""
    try:
        while piece := client.sock.recv(4096):
            data += piece
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"connection still open after {timeout} s") from None
    assert data == b"", f"sluice replied: {data[:200]!r}"


def assert_still_serving(proxy: Sluice, backend: Backend) -> None:
    with PrefixClient(proxy.port, v1("203.0.113.99")) as client:
        assert_status(client.exchange("GET", "/still"), 200)
    assert forwarded_for(backend) == "203.0.113.99"


# --------------------------------------------------------------------------- listener side

def test_v1_header_source_reaches_the_backend_in_x_forwarded_for():
    with Backend(ok()) as backend, Sluice(pp_config(backend)) as proxy, \
            PrefixClient(proxy.port, v1("203.0.113.7")) as client:
        assert_status(client.exchange("GET", "/one"), 200)
        assert forwarded_for(backend) == "203.0.113.7"
        assert_status(client.exchange("GET", "/two"), 200)  # the whole connection is that client's
        assert forwarded_for(backend) == "203.0.113.7"


@pytest.mark.parametrize("source", ["198.51.100.23", "2001:db8::17"])
def test_v2_header_source_reaches_the_backend_in_x_forwarded_for(source):
    with Backend(ok()) as backend, Sluice(pp_config(backend)) as proxy, \
            PrefixClient(proxy.port, v2(source)) as client:
        assert_status(client.exchange("GET", "/"), 200)
    assert forwarded_for(backend) == source


def test_v2_header_with_tlvs_is_read_and_the_tlvs_skipped():
    tlvs = b"\x04\x00\x03\x00\x00\x00" + b"\xea\x00\x0a\x01vpce-1234"  # NOOP, an AWS-style TLV
    with Backend(ok()) as backend, Sluice(pp_config(backend)) as proxy, \
            PrefixClient(proxy.port, v2("198.51.100.5", tlvs=tlvs)) as client:
        assert_status(client.exchange("GET", "/"), 200)
    assert forwarded_for(backend) == "198.51.100.5"


@pytest.mark.parametrize("header", [V2_LOCAL, b"PROXY UNKNOWN\r\n"], ids=["v2-local", "v1-unknown"])
def test_local_and_unknown_keep_the_socket_address(header):
    with Backend(ok()) as backend, Sluice(pp_config(backend)) as proxy, \
            PrefixClient(proxy.port, header) as client:
        assert_status(client.exchange("GET", "/"), 200)
    assert forwarded_for(backend) == "127.0.0.1"


def test_header_and_request_in_one_write_and_header_in_pieces():
    with Backend(ok()) as backend, Sluice(pp_config(backend)) as proxy:
        with PrefixClient(proxy.port, b"") as client:  # header and request in one segment
            client.send(v2("198.51.100.1") + request_bytes("GET", "/together"))
            assert_status(client.read_response(), 200)
        assert forwarded_for(backend) == "198.51.100.1"
        for header in (v1("203.0.113.44"), v2("2001:db8::44")):
            with PrefixClient(proxy.port, b"") as client:  # trickled: the header waits whole
                for i in range(0, len(header), 7):
                    client.send(header[i:i + 7])
                    time.sleep(0.02)
                client.request("GET", "/trickled")
                assert_status(client.read_response(), 200)
            assert forwarded_for(backend) == ("2001:db8::44" if header[0] == 0x0D
                                              else "203.0.113.44")


def test_connection_without_a_header_is_closed_with_no_reply():
    with Backend(ok(), strict=False) as backend, Sluice(pp_config(backend)) as proxy:
        with proxy.client() as client:
            client.send(request_bytes("GET", "/"), tolerate_close=True)
            assert_closed_without_reply(client)
        assert_still_serving(proxy, backend)
    assert [r.target for r in backend.requests] == ["/still"]


BROKEN = {
    "v2-bad-signature": V2_SIGNATURE[:6] + b"X" + V2_SIGNATURE[7:] + v2("192.0.2.9")[12:],
    "v2-bad-version": V2_SIGNATURE + b"\x11\x11" + v2("192.0.2.9")[14:],
    "v2-tlv-overrun": v2("192.0.2.9", tlvs=b"\x04\x00\x05\x00"),
    "v1-no-crlf-in-107-bytes": b"PROXY UNKNOWN " + b"a" * 100,
    "v1-port-out-of-range": v1("192.0.2.9", source_port=65536),
    "v1-leading-zero": b"PROXY TCP4 192.0.2.09 192.0.2.1 1 2\r\n",
    "v1-bare-lf": b"PROXY TCP4 192.0.2.9 192.0.2.1 1 2\n",
    "tls-client-hello": b"\x16\x03\x01\x00\xf8\x01\x00\x00\xf4\x03\x03",
}


@pytest.mark.parametrize("header", BROKEN.values(), ids=BROKEN.keys())
def test_broken_header_is_closed_and_sluice_keeps_serving(header):
    with Backend(ok(), strict=False) as backend, Sluice(pp_config(backend)) as proxy:
        with PrefixClient(proxy.port, b"") as client:
            client.send(header + request_bytes("GET", "/smuggled"), tolerate_close=True)
            assert_closed_without_reply(client)
        assert_still_serving(proxy, backend)
    assert "/smuggled" not in [r.target for r in backend.requests]


@pytest.mark.parametrize("partial", [v2("192.0.2.9")[:20], b"PROXY TCP4 192.0.2.9 19"],
                         ids=["v2", "v1"])
def test_truncated_header_then_close_is_dropped(partial):
    with Backend(ok(), strict=False) as backend, Sluice(pp_config(backend)) as proxy:
        with PrefixClient(proxy.port, partial) as client:
            client.sock.shutdown(socket.SHUT_WR)
            assert_closed_without_reply(client)
        assert_still_serving(proxy, backend)
    assert [r.target for r in backend.requests] == ["/still"]


@pytest.mark.parametrize("partial", [b"", b"PROXY TCP4 192.0.2.9", v2("192.0.2.9")[:15]],
                         ids=["nothing", "v1-part", "v2-part"])
def test_header_that_stalls_is_closed_after_client_header_ms(partial):
    with Backend(ok(), strict=False) as backend, \
            Sluice(pp_config(backend, timeouts={"client_header_ms": 500})) as proxy:
        with PrefixClient(proxy.port, partial) as client:
            started = time.monotonic()
            assert_closed_without_reply(client, timeout=5)
            elapsed = time.monotonic() - started
        assert 0.4 <= elapsed < 3, f"closed after {elapsed:.2f} s with client_header_ms 500"
        assert_still_serving(proxy, backend)


def test_proxy_protocol_from_refuses_other_peers_at_once():
    with Backend(ok(), strict=False) as backend:
        config = pp_config(backend, listener={"proxy_protocol_from": ["192.0.2.0/24", "::1"]})
        with Sluice(config) as proxy, PrefixClient(proxy.port, v1("203.0.113.7")) as client:
            client.send(request_bytes("GET", "/"), tolerate_close=True)
            started = time.monotonic()
            assert_closed_without_reply(client)
            assert time.monotonic() - started < 1
        assert not backend.requests
        config = pp_config(backend, listener={"proxy_protocol_from": ["10.0.0.0/8", "127.0.0.0/8"]})
        with Sluice(config) as proxy:
            assert_still_serving(proxy, backend)


def test_header_before_tls_on_a_tls_listener():
    material = make_material()
    tls = listener_tls(certificate(material.site_ecdsa_crt, material.site_ecdsa_key))
    with Backend(ok()) as backend, Sluice(pp_config(backend, listener={"tls": tls})) as proxy:
        for header, source in ((v1("203.0.113.8"), "203.0.113.8"),
                               (v2("2001:db8::8"), "2001:db8::8")):
            with PrefixClient(proxy.port, header, client_context(material)) as client:
                assert client.sock.version() in ("TLSv1.2", "TLSv1.3")
                assert_status(client.exchange("GET", "/"), 200)
            assert forwarded_for(backend) == source
            assert backend.requests[-1].header("X-Forwarded-Proto") == "https"
        # TLS straight away, with no header, is refused like any other missing header.
        with PrefixClient(proxy.port, b"") as client:
            with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
                client_context(material).wrap_socket(client.sock, server_hostname=SITE)


def test_plain_listener_without_proxy_protocol_takes_a_header_as_a_bad_request():
    with Backend(ok(), strict=False) as backend, Sluice(proxy_config(backend)) as proxy, \
            proxy.client() as client:
        client.send(v1("203.0.113.7") + request_bytes("GET", "/"), tolerate_close=True)
        response = client.read_response_or_close()
        assert response is not None and response.status == 400
    assert not backend.requests


# --------------------------------------------------------------------------- upstream side

# nginx answers every request with what its PROXY header said and which connection carried it.
REPORT = ('return 200 "addr=$proxy_protocol_addr|port=$proxy_protocol_port'
          '|server_addr=$proxy_protocol_server_addr|server_port=$proxy_protocol_server_port'
          '|conn=$connection|xff=$http_x_forwarded_for";')


def report(response) -> dict[str, str]:
    assert_status(response, 200)
    return dict(item.split("=", 1) for item in response.body.decode().split("|"))


def sending_config(port: int, version: str, *, listener: bool = True, **upstream) -> dict:
    """One worker (one pool), upstream "app" on nginx's `port` sending `version` headers; with
    `listener`, sluice's own listener reads headers, so the test picks the client addresses."""
    config = proxy_config(f"{HOST}:{port}", workers=1,
                          upstream={"send_proxy_protocol": version, **upstream})
    if listener:
        config["listeners"] = [{"address": f"{HOST}:0", "proxy_protocol": True}]
    return config


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_send_proxy_protocol_names_the_client_to_the_backend(version):
    with nginx_backend(REPORT, listen="proxy_protocol") as (port,), \
            Sluice(sending_config(port, version)) as proxy:
        header = v1("203.0.113.50", "192.0.2.80", 41000, 8443)
        with PrefixClient(proxy.port, header) as client:
            seen = report(client.exchange("GET", "/"))
        assert seen["addr"] == "203.0.113.50"
        assert seen["port"] == "41000"
        assert (seen["server_addr"], seen["server_port"]) == ("192.0.2.80", "8443")
        assert seen["xff"] == "203.0.113.50"
        # Without a header from a balancer: sluice's own peer and listener addresses.
        with PrefixClient(proxy.port, V2_LOCAL) as client:
            seen = report(client.exchange("GET", "/"))
        assert seen["addr"] == "127.0.0.1"
        assert (seen["server_addr"], seen["server_port"]) == ("127.0.0.1", str(proxy.port))


def test_send_proxy_protocol_ipv6_client_on_an_ipv4_backend():
    with nginx_backend(REPORT, listen="proxy_protocol") as (port,), \
            Sluice(sending_config(port, "v2")) as proxy, \
            PrefixClient(proxy.port, v2("2001:db8::50", "2001:db8::1", 41000, 443)) as client:
        seen = report(client.exchange("GET", "/"))
    assert seen["addr"] == "2001:db8::50"
    assert seen["server_addr"] == "2001:db8::1"


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_clients_with_different_addresses_never_share_a_backend_connection(version):
    with nginx_backend(REPORT, listen="proxy_protocol") as (port,), \
            Sluice(sending_config(port, version)) as proxy:
        alice = PrefixClient(proxy.port, v1("203.0.113.1", source_port=1001))
        bob = PrefixClient(proxy.port, v1("203.0.113.2", source_port=2002))
        connections = {"203.0.113.1": set(), "203.0.113.2": set()}
        with alice, bob:
            for round_ in range(4):  # interleaved: each parks its connection between requests
                for name, client in (("203.0.113.1", alice), ("203.0.113.2", bob)):
                    seen = report(client.exchange("GET", f"/{round_}"))
                    assert seen["addr"] == name, f"{name}'s request arrived as {seen['addr']}'s"
                    connections[name].add(seen["conn"])
        assert not connections["203.0.113.1"] & connections["203.0.113.2"], connections
        assert len(connections["203.0.113.1"]) == 1  # each kept its own, pooled between requests
        # The same address again, on a new client connection: its pooled connection serves it.
        with PrefixClient(proxy.port, v1("203.0.113.1", source_port=1003)) as again:
            seen = report(again.exchange("GET", "/again"))
        assert seen["addr"] == "203.0.113.1"
        assert seen["conn"] in connections["203.0.113.1"]


def test_send_proxy_protocol_header_goes_before_tls_to_the_backend():
    material = make_material()
    tls = f"""ssl_certificate {material.localhost_crt};
    ssl_certificate_key {material.localhost_key};
    ssl_protocols TLSv1.2 TLSv1.3;"""
    with nginx_backend(REPORT, server=tls, listen="ssl proxy_protocol") as (port,), \
            Sluice(sending_config(port, "v1", tls={"ca": material.ca_crt})) as proxy, \
            PrefixClient(proxy.port, v1("203.0.113.60")) as client:
        first = report(client.exchange("GET", "/"))
        second = report(client.exchange("GET", "/"))
    assert first["addr"] == second["addr"] == "203.0.113.60"
    assert first["conn"] == second["conn"]


def test_health_checks_of_a_sending_upstream_pass():
    health = {"path": "/health", "interval_ms": 100, "timeout_ms": 100, "fall": 1, "rise": 1}
    with nginx_backend(REPORT, listen="proxy_protocol") as (port,):
        for version in ("v1", "v2"):
            with Sluice(sending_config(port, version, listener=False, health=health)) as proxy:
                time.sleep(0.6)  # several checks: one failure would have taken the backend down
                seen = report(proxy.get("/"))
                assert seen["addr"] == "127.0.0.1"
                assert "is down" not in proxy.log_text(), proxy.log_tail()
