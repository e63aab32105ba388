"""A listener with a "tls" object terminates TLS: requests over it reach the backend as HTTPS,
SNI and the client's signature algorithms pick the certificate, ALPN says http/1.1, only TLS 1.2
and 1.3 are spoken, session tickets resume on any worker, client certificates are checked
against client_ca, OCSP responses are stapled, SIGHUP reloads the certificate files, and a large
response to a slow reader streams without piling up in memory. Checked from the outside with
curl, `openssl s_client` and Python's ssl module, against the throwaway PKI of tls_material."""

import os
import ssl
import time
import zlib

import pytest

import harness
from harness import Backend, MiB, assert_status, echo_target, ok, pattern_crc, proxy_config, \
    stream
from tls_client import SITE, TlsClient, TlsSluice, certificate, client_context, curl, \
    curl_status, listener_tls, s_client
from tls_material import SERIALS, make_leaf, make_material

SITE_NAMES = ["DNS:site.test", "DNS:*.site.test"]


def site_rsa(material, *, ocsp: bool = True) -> dict:
    return certificate(material.site_rsa_crt, material.site_rsa_key,
                       material.site_ocsp_der if ocsp else None)


def site_ecdsa(material) -> dict:
    return certificate(material.site_ecdsa_crt, material.site_ecdsa_key)


def other(material) -> dict:
    return certificate(material.other_crt, material.other_key)


def served_serial(port: int, *args: str) -> int:
    """The serial of the certificate a full handshake with `openssl s_client ARGS` gets."""
    result = s_client(port, *args)
    assert result.handshake_done, repr(result)
    serial = result.peer_serial()
    assert serial is not None, f"no server certificate in the output: {result!r}"
    return serial


def http_request(target: str) -> bytes:
    """A GET for s_client's stdin; the server closes after it, so `-ign_eof` runs end then."""
    return f"GET {target} HTTP/1.1\r\nHost: {SITE}\r\nConnection: close\r\n\r\n".encode()


# --------------------------------------------------------------------------- requests

def test_https_request_is_answered_with_the_backends_response():
    material = make_material()
    with Backend(ok(b"over tls")) as backend, \
            TlsSluice(proxy_config(backend), listener_tls(site_ecdsa(material))) as proxy:
        result = curl(proxy.port, material, "/hello")
        assert result.returncode == 0, result.stderr
        assert curl_status(result) == ("over tls", 200), result.stdout
        assert [r.target for r in backend.requests] == ["/hello"]


def test_backend_sees_x_forwarded_proto_https_whatever_the_client_sent():
    material = make_material()
    with Backend(ok()) as backend, \
            TlsSluice(proxy_config(backend), listener_tls(site_ecdsa(material))) as proxy:
        for extra in ([], ["-H", "X-Forwarded-Proto: http"]):
            result = curl(proxy.port, material, "/", *extra)
            assert result.returncode == 0 and curl_status(result)[1] == 200, \
                result.stdout + result.stderr
            seen = backend.requests[-1]
            assert seen.header_values("X-Forwarded-Proto") == ["https"], seen.describe()


def test_keep_alive_connection_over_tls_carries_several_requests():
    material = make_material()
    with Backend(echo_target()) as backend, \
            TlsSluice(proxy_config(backend), listener_tls(site_ecdsa(material))) as proxy, \
            TlsClient(proxy.port, client_context(material)) as client:
        for i in range(5):
            response = client.exchange("GET", f"/request-{i}")
            assert_status(response, 200)
            assert response.body == f"/request-{i}".encode()
        assert not client.wait_closed(0.2), "sluice closed the kept-alive TLS connection"
    assert [r.target for r in backend.requests] == [f"/request-{i}" for i in range(5)]


# --------------------------------------------------------------------------- certificates

def test_sni_picks_the_certificate_by_exact_name_and_by_wildcard():
    """site.test matches the site certificates' exact name, www.site.test (in any case) their
    *.site.test; other.test is the default here, so site names must not fall back to it."""
    material = make_material()
    tls = listener_tls(other(material), site_ecdsa(material), site_rsa(material))
    site = {SERIALS["site_ecdsa"], SERIALS["site_rsa"]}
    with Backend(ok()) as backend, TlsSluice(proxy_config(backend), tls) as proxy:
        for name in ("site.test", "www.site.test", "WWW.Site.Test"):
            serial = served_serial(proxy.port, "-servername", name)
            assert serial in site, f"SNI {name}: got serial {serial:#x}, not a site certificate"
        assert served_serial(proxy.port, "-servername", "other.test") == SERIALS["other"]


@pytest.mark.parametrize("first", ["site_ecdsa", "other"])
def test_sni_without_a_match_gets_the_first_certificate(first):
    """An unknown name, a name two labels under the wildcard (*.site.test covers one label)
    and no SNI at all get the first certificate listed, whichever it is."""
    material = make_material()
    entries = {"site_ecdsa": site_ecdsa(material), "other": other(material)}
    second = next(name for name in entries if name != first)
    tls = listener_tls(entries[first], entries[second])
    with Backend(ok()) as backend, TlsSluice(proxy_config(backend), tls) as proxy:
        for args in (["-servername", "unknown.test"], ["-servername", "a.b.site.test"],
                     ["-noservername"]):
            serial = served_serial(proxy.port, *args)
            assert serial == SERIALS[first], \
                f"{' '.join(args)}: got serial {serial:#x}, expected the first {first}"
        # The second one is still served by name.
        named = "other.test" if second == "other" else "site.test"
        assert served_serial(proxy.port, "-servername", named) == SERIALS[second]


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_client_signature_algorithms_choose_between_the_ecdsa_and_the_rsa_certificate(version):
    material = make_material()
    tls = listener_tls(site_rsa(material), site_ecdsa(material))
    with Backend(ok()) as backend, TlsSluice(proxy_config(backend), tls) as proxy:
        ecdsa = s_client(proxy.port, version, "-servername", SITE, "-sigalgs", "ECDSA+SHA256")
        assert ecdsa.handshake_done and ecdsa.peer_serial() == SERIALS["site_ecdsa"], repr(ecdsa)
        assert ecdsa.peer_signature_type == "ECDSA", repr(ecdsa)
        rsa = s_client(proxy.port, version, "-servername", SITE, "-sigalgs",
                       "RSA-PSS+SHA256:RSA+SHA256")
        assert rsa.handshake_done and rsa.peer_serial() == SERIALS["site_rsa"], repr(rsa)
        assert rsa.peer_signature_type in ("RSA-PSS", "RSA"), repr(rsa)


# --------------------------------------------------------------------------- ALPN and versions

def test_alpn_agrees_on_http11_when_the_client_offers_h2_and_http11():
    material = make_material()
    with Backend(ok()) as backend, \
            TlsSluice(proxy_config(backend), listener_tls(site_ecdsa(material))) as proxy:
        result = s_client(proxy.port, "-servername", SITE, "-alpn", "h2,http/1.1")
        assert result.handshake_done and result.alpn == "http/1.1", repr(result)
        without = s_client(proxy.port, "-servername", SITE)
        assert without.handshake_done and "No ALPN negotiated" in without.output, repr(without)


def test_alpn_with_only_h2_fails_the_handshake_with_no_application_protocol():
    material = make_material()
    with Backend(ok()) as backend, \
            TlsSluice(proxy_config(backend), listener_tls(site_ecdsa(material))) as proxy:
        result = s_client(proxy.port, "-servername", SITE, "-alpn", "h2")
        assert result.returncode != 0 and not result.handshake_done, repr(result)
        assert "alert no application protocol" in result.output, repr(result)
        assert "SSL alert number 120" in result.output, repr(result)
        assert result.peer_serial() is None, repr(result)
    assert not backend.requests


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_tls10_and_tls11_are_refused_with_a_protocol_version_alert(version):
    material = make_material()
    with Backend(ok()) as backend, \
            TlsSluice(proxy_config(backend), listener_tls(site_ecdsa(material))) as proxy:
        # SECLEVEL=0: the client itself would offer TLS 1.0 and 1.1 only at level 0.
        result = s_client(proxy.port, version, "-cipher", "DEFAULT@SECLEVEL=0",
                          "-servername", SITE)
        assert result.returncode != 0 and not result.handshake_done, repr(result)
        assert "alert protocol version" in result.output, repr(result)
        assert "SSL alert number 70" in result.output, repr(result)


@pytest.mark.parametrize("version,expected", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_tls12_and_tls13_are_accepted(version, expected):
    material = make_material()
    with Backend(ok(b"served")) as backend, \
            TlsSluice(proxy_config(backend), listener_tls(site_ecdsa(material))) as proxy:
        result = s_client(proxy.port, version, "-servername", SITE, "-ign_eof",
                          send=http_request("/version"))
        assert result.handshake_done and result.protocol == expected, repr(result)
        assert result.returncode == 0, repr(result)
        assert "HTTP/1.1 200 OK" in result.output and "served" in result.output, repr(result)


def test_min_version_13_refuses_tls12_and_accepts_tls13():
    material = make_material()
    tls = listener_tls(site_ecdsa(material), min_version="1.3")
    with Backend(ok()) as backend, TlsSluice(proxy_config(backend), tls) as proxy:
        refused = s_client(proxy.port, "-tls1_2", "-servername", SITE)
        assert refused.returncode != 0 and not refused.handshake_done, repr(refused)
        assert "alert protocol version" in refused.output, repr(refused)
        accepted = s_client(proxy.port, "-tls1_3", "-servername", SITE)
        assert accepted.handshake_done and accepted.protocol == "TLSv1.3", repr(accepted)


# --------------------------------------------------------------------------- session resumption

@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_session_ticket_resumes_on_either_worker(version):
    """A session from one connection resumes on 8 more, and on both workers: the ticket keys
    are one set for the whole process.

    With 2 workers, each worker has its own listening socket on the port (SO_REUSEPORT) and
    the kernel hands each new connection to one of them by a hash of the client's address and
    port; every s_client run connects from a new port, so each resumed connection has an even
    chance of landing on the worker that did not issue the ticket (all 8 on the same one: 1 in
    256; the test then goes on, up to 32 connections, until one has landed elsewhere). Which
    worker served a connection shows at the backend: each worker keeps its own pool of
    upstream connections and, with one request at a time, reuses its one idle connection, so
    a request arriving on another upstream connection than the first request's came through
    the other worker."""
    material = make_material()
    session = os.path.join(harness.workdir(), "session.pem")
    with Backend(echo_target()) as backend, \
            TlsSluice(proxy_config(backend, workers=2), listener_tls(site_ecdsa(material))) \
            as proxy:
        first = s_client(proxy.port, version, "-servername", SITE, "-sess_out", session,
                         "-ign_eof", send=http_request("/issued"))
        assert first.new and "HTTP/1.1 200 OK" in first.output, repr(first)
        assert os.path.getsize(session) > 0, f"no session written: {first!r}"
        issuer_connection = backend.requests[-1].connection
        other_worker = 0
        for i in range(32):
            resumed = s_client(proxy.port, version, "-servername", SITE, "-sess_in", session,
                               "-ign_eof", send=http_request(f"/resumed-{i}"))
            assert resumed.reused, f"connection {i + 1} after the first was not resumed: " \
                                   f"{resumed!r}"
            assert "HTTP/1.1 200 OK" in resumed.output, repr(resumed)
            request = backend.requests[-1]
            assert request.target == f"/resumed-{i}"
            other_worker += request.connection != issuer_connection
            if i >= 7 and other_worker:
                break
        assert other_worker, "32 resumed connections, none through the other worker " \
                             f"(upstream connections: {[r.connection for r in backend.requests]})"


@pytest.mark.parametrize("maximum", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3],
                         ids=["tls1_2", "tls1_3"])
def test_without_session_tickets_a_second_connection_is_new(maximum):
    material = make_material()
    tls = listener_tls(site_ecdsa(material), session_tickets=False)
    context = client_context(material, maximum=maximum)
    with Backend(ok()) as backend, TlsSluice(proxy_config(backend), tls) as proxy:
        with TlsClient(proxy.port, context) as client:
            assert_status(client.exchange("GET", "/first"), 200)  # a ticket would be here now
            session = client.session
            assert session is not None and not session.has_ticket
        for _ in range(3):
            with TlsClient(proxy.port, context, session=session) as client:
                assert not client.session_reused, "resumed although session_tickets is false"
                assert_status(client.exchange("GET", "/again"), 200)


# --------------------------------------------------------------------------- client certificates

MTLS_VERSIONS = [["--tls-max", "1.2"], ["--tlsv1.3"]]


@pytest.mark.parametrize("version", MTLS_VERSIONS, ids=["tls1_2", "tls1_3"])
def test_client_certificate_from_client_ca_is_accepted(version):
    material = make_material()
    tls = listener_tls(site_ecdsa(material), client_ca=material.client_ca_crt)
    with Backend(ok(b"welcome")) as backend, TlsSluice(proxy_config(backend), tls) as proxy:
        result = curl(proxy.port, material, "/", *version, "--cert", material.client_crt,
                      "--key", material.client_key)
        assert result.returncode == 0, result.stderr
        assert curl_status(result) == ("welcome", 200), result.stdout
    assert len(backend.requests) == 1


@pytest.mark.parametrize("version,alert", [(MTLS_VERSIONS[0], "alert handshake failure"),
                                           (MTLS_VERSIONS[1], "alert certificate required")],
                         ids=["tls1_2", "tls1_3"])
def test_client_without_a_certificate_is_refused(version, alert):
    material = make_material()
    tls = listener_tls(site_ecdsa(material), client_ca=material.client_ca_crt)
    with Backend(ok()) as backend, TlsSluice(proxy_config(backend), tls) as proxy:
        result = curl(proxy.port, material, "/", *version)
        assert result.returncode != 0, f"curl succeeded: {result.stdout!r}"
        assert curl_status(result)[1] == 0, result.stdout
        assert alert in result.stderr, result.stderr
        time.sleep(0.2)  # a request sluice wrongly forwarded would arrive by now
    assert not backend.requests, backend.requests[0].describe()


@pytest.mark.parametrize("version", MTLS_VERSIONS, ids=["tls1_2", "tls1_3"])
def test_client_certificate_from_another_ca_is_refused(version):
    material = make_material()
    tls = listener_tls(site_ecdsa(material), client_ca=material.client_ca_crt)
    with Backend(ok()) as backend, TlsSluice(proxy_config(backend), tls) as proxy:
        result = curl(proxy.port, material, "/", *version, "--cert", material.stranger_crt,
                      "--key", material.stranger_key)
        assert result.returncode != 0, f"curl succeeded: {result.stdout!r}"
        assert curl_status(result)[1] == 0, result.stdout
        assert "alert unknown ca" in result.stderr, result.stderr
        time.sleep(0.2)
    assert not backend.requests, backend.requests[0].describe()


# --------------------------------------------------------------------------- OCSP stapling

@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_ocsp_response_is_stapled_for_the_certificate_that_has_one(version):
    material = make_material()
    tls = listener_tls(site_rsa(material), site_ecdsa(material))
    with Backend(ok()) as backend, TlsSluice(proxy_config(backend), tls) as proxy:
        result = s_client(proxy.port, version, "-status", "-servername", SITE,
                          "-sigalgs", "RSA-PSS+SHA256")
        assert result.handshake_done and result.peer_serial() == SERIALS["site_rsa"], \
            repr(result)
        assert "OCSP Response Status: successful" in result.output, repr(result)
        assert "Cert Status: good" in result.output, repr(result)


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_certificate_without_an_ocsp_file_gets_no_staple(version):
    material = make_material()
    tls = listener_tls(site_rsa(material), site_ecdsa(material))
    with Backend(ok()) as backend, TlsSluice(proxy_config(backend), tls) as proxy:
        result = s_client(proxy.port, version, "-status", "-servername", SITE,
                          "-sigalgs", "ECDSA+SHA256")
        assert result.handshake_done and result.peer_serial() == SERIALS["site_ecdsa"], \
            repr(result)
        assert "OCSP response: no response sent" in result.output, repr(result)


# --------------------------------------------------------------------------- reload

def test_sighup_serves_the_new_certificate_to_new_connections_and_keeps_open_ones():
    material = make_material()
    context = client_context(material)
    with Backend(echo_target()) as backend, \
            TlsSluice(proxy_config(backend), listener_tls(site_ecdsa(material))) as proxy, \
            TlsClient(proxy.port, context) as old:
        assert_status(old.exchange("GET", "/before"), 200)
        assert old.peer_serial() == SERIALS["site_ecdsa"]
        crt, key = make_leaf(material.folder, "site_ecdsa", SITE_NAMES, serial=0x5E1F)
        assert (crt, key) == (material.site_ecdsa_crt, material.site_ecdsa_key)
        proxy.reload()
        with TlsClient(proxy.port, context) as new:
            assert new.peer_serial() == 0x5E1F, "a new connection still got the old certificate"
            assert new.exchange("GET", "/new").body == b"/new"
        response = old.exchange("GET", "/after")
        assert_status(response, 200)
        assert response.body == b"/after"
        assert old.peer_serial() == SERIALS["site_ecdsa"]


# --------------------------------------------------------------------------- streaming

BIG = 100 * MiB
GROWTH_LIMIT = 32 * MiB


@pytest.mark.timeout(120)
def test_large_response_to_a_slow_tls_reader_streams_in_bounded_memory():
    """The backend sends 100 MiB as fast as it can; the client takes 64 KiB at a time with a
    pause after each (about 10 s in all), through a small receive buffer, so sluice must stop
    reading the backend while the client lags instead of holding what it is sent."""
    material = make_material()
    big = stream(BIG)

    def handler(exchange):
        if exchange.request.target == "/big":
            return big(exchange)
        exchange.read_body()
        exchange.respond(200, b"small")

    with Backend(handler) as backend, \
            TlsSluice(proxy_config(backend), listener_tls(site_ecdsa(material))) as proxy, \
            TlsClient(proxy.port, client_context(material), timeout=10,
                      receive_buffer=64 * 1024) as client:
        assert_status(client.exchange("GET", "/warm-up"), 200)
        before = harness.rss_bytes(proxy.pid)
        client.request("GET", "/big")
        response = client.read_head()
        assert_status(response, 200)
        received, crc, peak, pending, reads = 0, 0, before, 0, 0
        started = time.monotonic()
        for data in client.body_pieces(response, 64 * 1024):
            received += len(data)
            crc = zlib.crc32(data, crc)
            pending += len(data)
            if pending >= 64 * 1024:
                pending = 0
                reads += 1
                time.sleep(0.005)
                if reads % 16 == 0:
                    peak = max(peak, harness.rss_bytes(proxy.pid))
        seconds = time.monotonic() - started
        peak = max(peak, harness.rss_bytes(proxy.pid))
    assert received == BIG, f"{received} of {BIG} bytes arrived"
    assert crc == pattern_crc(BIG), "the body arrived changed (CRC differs from the pattern's)"
    assert seconds > 5, f"the reader was not slow: {seconds:.1f} s"
    if harness.sanitized_binary():
        return  # ASan's allocator keeps what the proxy frees: RSS would measure the allocator
    assert peak - before < GROWTH_LIMIT, \
        f"RSS grew by {(peak - before) / MiB:.1f} MiB while 100 MiB streamed to a slow reader"
