"""What a TLS listener does with clients that do not speak TLS properly, and with certificate
files that are wrong: plain HTTP gets a readable 400, other bytes and cut-short or stalled
handshakes are closed, renegotiation is refused, and bad certificate files are refused at start
(`sluice --check`, `sluice -c`) and on reload, where the running certificates keep serving."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from harness import HOST, Backend, Client, assert_status, free_port, ok, proxy_config, \
    run_cli, wait_for_log, write_file
from tls_client import SITE, TlsClient, TlsSluice, certificate, client_context, client_hello, \
    curl, curl_status, listener_tls, read_until_closed, s_client
from tls_material import SERIALS, make_material


def site_ecdsa(material) -> dict:
    return certificate(material.site_ecdsa_crt, material.site_ecdsa_key)


def assert_serves(proxy, material, path: str = "/") -> None:
    """A fresh HTTPS request (curl) is answered 200."""
    result = curl(proxy.port, material, path)
    assert result.returncode == 0 and curl_status(result)[1] == 200, \
        f"curl exit status {result.returncode}: {result.stdout} {result.stderr}"


# --------------------------------------------------------------------------- not TLS

def test_plain_http_gets_a_plain_400_then_the_connection_closes():
    material = make_material()
    with Backend(ok()) as backend, \
            TlsSluice(proxy_config(backend), listener_tls(site_ecdsa(material))) as proxy:
        with Client(proxy.port) as plain:
            plain.request("GET", "/plain", [("Host", SITE)])
            response = plain.read_response_or_close()
            assert_status(response, 400)
            assert response.start_line == "HTTP/1.1 400 Bad Request", response.describe()
            assert plain.wait_closed(3.0), "connection still open 3 s after the 400"
        with TlsClient(proxy.port, client_context(material)) as client:
            assert_status(client.exchange("GET", "/tls"), 200)
    assert [r.target for r in backend.requests] == ["/tls"]


def test_garbage_bytes_close_the_connection_and_disturb_nothing_else():
    material = make_material()
    with Backend(ok()) as backend, \
            TlsSluice(proxy_config(backend), listener_tls(site_ecdsa(material))) as proxy, \
            TlsClient(proxy.port, client_context(material)) as already_open:
        assert_status(already_open.exchange("GET", "/before"), 200)
        with socket.create_connection((HOST, proxy.port), timeout=5) as sock:
            sock.sendall(b"\x00\x01\x02\x03 neither tls nor http \xff\xfe\r\n\r\n")
            data, closed, seconds = read_until_closed(sock, 3.0)
        assert closed, "connection still open 3 s after the garbage"
        assert data == b"", f"sluice answered garbage with {data[:200]!r}"
        assert_status(already_open.exchange("GET", "/after"), 200)
        assert_serves(proxy, material, "/fresh")
    assert [r.target for r in backend.requests] == ["/before", "/after", "/fresh"]


def test_truncated_client_hello_then_close_leaves_sluice_serving_others():
    material = make_material()
    hello = client_hello()
    with Backend(ok()) as backend, \
            TlsSluice(proxy_config(backend), listener_tls(site_ecdsa(material))) as proxy, \
            TlsClient(proxy.port, client_context(material)) as already_open:
        for cut in (20, 1, 5, len(hello) // 2, len(hello) - 1):
            with socket.create_connection((HOST, proxy.port), timeout=5) as sock:
                sock.sendall(hello[:cut])
            assert_serves(proxy, material, f"/after-{cut}")
        assert_status(already_open.exchange("GET", "/still-open"), 200)
        assert proxy.proc.poll() is None, "sluice exited"


@pytest.mark.parametrize("sent", ["nothing", "partial_client_hello"])
def test_stalled_handshake_is_closed_after_handshake_timeout(sent):
    material = make_material()
    tls = listener_tls(site_ecdsa(material), handshake_timeout_ms=500)
    with Backend(ok()) as backend, TlsSluice(proxy_config(backend), tls) as proxy:
        with socket.create_connection((HOST, proxy.port), timeout=5) as sock:
            if sent == "partial_client_hello":
                sock.sendall(client_hello()[:20])
            data, closed, seconds = read_until_closed(sock, 5.0)
        assert closed, "a stalled handshake was still open after 5 s (timeout 500 ms)"
        assert 0.3 <= seconds <= 3.0, f"closed after {seconds:.2f} s (timeout 500 ms)"
        assert data == b"", f"sluice sent {data[:200]!r}"
        assert_serves(proxy, material)


def test_renegotiation_is_refused_with_a_no_renegotiation_alert():
    """s_client reads "R" on its own line as: renegotiate (TLS 1.2 only). Sluice, with
    SSL_OP_NO_RENEGOTIATION, answers the new ClientHello with a warning no_renegotiation
    alert; OpenSSL 3.0's s_client then gives up on the connection with a fatal
    handshake_failure alert and exits 1 ("no renegotiation")."""
    material = make_material()
    with Backend(ok()) as backend, \
            TlsSluice(proxy_config(backend), listener_tls(site_ecdsa(material))) as proxy:
        result = s_client(proxy.port, "-tls1_2", "-servername", SITE, "-msg", send=b"R\n",
                          after=0.5)
        assert result.handshake_done and result.protocol == "TLSv1.2", repr(result)
        assert "RENEGOTIATING" in result.output, repr(result)
        assert "<<< TLS 1.2, Alert [length 0002], warning no_renegotiation" in result.output, \
            repr(result)
        assert ">>> TLS 1.2, Alert [length 0002], fatal handshake_failure" in result.output, \
            repr(result)
        assert "no renegotiation" in result.output and result.returncode == 1, repr(result)
        # No second handshake took place: the only ServerHello is the first one.
        assert len(re.findall(r"^<<< .*, ServerHello$", result.output, re.MULTILINE)) == 1, \
            repr(result)
        assert_serves(proxy, material)


# --------------------------------------------------------------------------- files at start

def tls_config_file(material, *certificates: dict) -> str:
    """A config file whose listener serves `certificates` (backend 127.0.0.1:9, never used)."""
    config = proxy_config(f"{HOST}:9")
    config["listeners"] = [{"address": f"{HOST}:{free_port()}",
                            "tls": listener_tls(*certificates)}]
    return write_file(f"tls-{time.monotonic_ns()}.json", json.dumps(config, indent=2))


@pytest.mark.parametrize("command", ["--check", "-c"])
def test_missing_certificate_file_is_an_error_naming_it(command):
    material = make_material()
    missing = os.path.join(material.folder, "missing.crt")
    path = tls_config_file(material, certificate(missing, material.site_ecdsa_key))
    result = run_cli(command, path)
    assert result.returncode == 1, repr(result)
    assert missing in result.output, repr(result)


def test_key_that_does_not_match_the_certificate_is_an_error():
    material = make_material()
    path = tls_config_file(material, certificate(material.site_ecdsa_crt, material.wrong_key))
    result = run_cli("--check", path)
    assert result.returncode == 1, repr(result)
    assert "does not match" in result.output, repr(result)
    assert material.wrong_key in result.output and material.site_ecdsa_crt in result.output, \
        repr(result)


def test_expired_certificate_is_an_error():
    material = make_material()
    path = tls_config_file(material, site_ecdsa(material),
                           certificate(material.expired_crt, material.expired_key))
    result = run_cli("--check", path)
    assert result.returncode == 1, repr(result)
    assert "expired" in result.output and material.expired_crt in result.output, repr(result)


def test_encrypted_key_is_an_error_without_asking_for_a_passphrase():
    material = make_material()
    encrypted = os.path.join(material.folder, "encrypted.key")
    subprocess.run(["openssl", "pkey", "-in", material.site_ecdsa_key, "-aes256", "-passout",
                    "pass:secret", "-out", encrypted], check=True, timeout=10)
    path = tls_config_file(material, certificate(material.site_ecdsa_crt, encrypted))
    result = run_cli("--check", path)  # stdin is not a terminal: a prompt would hang or fail
    assert result.returncode == 1, repr(result)
    assert "encrypted" in result.output and encrypted in result.output, repr(result)


def test_ocsp_response_for_another_certificate_is_an_error():
    material = make_material()
    path = tls_config_file(material, certificate(material.site_ecdsa_crt, material.site_ecdsa_key,
                                                 material.site_ocsp_der))
    result = run_cli("--check", path)
    assert result.returncode == 1, repr(result)
    assert "is not about" in result.output and material.site_ocsp_der in result.output, \
        repr(result)


def test_two_certificates_with_the_same_names_and_key_type_are_an_error():
    material = make_material()
    path = tls_config_file(material, site_ecdsa(material), site_ecdsa(material))
    result = run_cli("--check", path)
    assert result.returncode == 1, repr(result)
    assert "/certificates/1" in result.output and "only one of them" in result.output, \
        repr(result)


def test_unknown_cipher_list_is_an_error_at_its_key():
    material = make_material()
    config = proxy_config(f"{HOST}:9")
    config["listeners"] = [{"address": f"{HOST}:{free_port()}",
                            "tls": listener_tls(site_ecdsa(material), ciphers="NO-SUCH-CIPHER")}]
    path = write_file(f"tls-{time.monotonic_ns()}.json", json.dumps(config, indent=2))
    result = run_cli("--check", path)
    assert result.returncode == 1, repr(result)
    assert result.output.count("/listeners/0/tls/ciphers") == 1, repr(result)


def test_certificate_expiring_within_14_days_is_a_warning_naming_it():
    material = make_material()
    path = tls_config_file(material, site_ecdsa(material),
                           certificate(material.soon_crt, material.soon_key))
    result = run_cli("--check", path)
    assert result.returncode == 0, repr(result)
    warnings = [line for line in result.output.splitlines() if "warning" in line]
    assert any(material.soon_crt in line for line in warnings), repr(result)
    assert not any(material.site_ecdsa_crt in line for line in warnings), repr(result)


# --------------------------------------------------------------------------- files on reload

@pytest.mark.parametrize("broken", ["garbage_certificate", "key_that_does_not_match"])
def test_reload_with_a_broken_certificate_logs_it_and_keeps_the_old_one(broken):
    material = make_material()
    with Backend(ok()) as backend, \
            TlsSluice(proxy_config(backend), listener_tls(site_ecdsa(material))) as proxy:
        if broken == "garbage_certificate":
            named = material.site_ecdsa_crt
            with open(named, "w") as f:
                f.write("this is not a certificate\n")
        else:
            named = material.site_ecdsa_key
            shutil.copyfile(material.wrong_key, named)
        proxy.send_signal(signal.SIGHUP)
        assert wait_for_log(proxy, r"reload of .* failed; keeping the running config", 5), \
            proxy.log_tail()
        assert wait_for_log(proxy, r"error .*" + named.replace(".", r"\."), 1), proxy.log_tail()
        assert "config reloaded" not in proxy.log_text(), proxy.log_tail()
        with TlsClient(proxy.port, client_context(material)) as client:
            assert client.peer_serial() == SERIALS["site_ecdsa"]
            assert_status(client.exchange("GET", "/"), 200)
