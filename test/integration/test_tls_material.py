"""The throwaway PKI of tls_material is what it claims, and nginx_tls_backend answers over TLS:
checked with the openssl and curl command-line tools (no sluice involved)."""

import datetime
import subprocess

from nginx_tls import nginx_tls_backend
from tls_material import SERIALS, cert_not_after, cert_serial, cert_subject, make_leaf, \
    make_material


def openssl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30)


def curl(*args: str) -> subprocess.CompletedProcess:
    """curl's exit status, and the status code then the body on stdout."""
    return subprocess.run(["curl", "-sS", "--max-time", "10", "-w", " %{http_code}", *args],
                          capture_output=True, text=True, timeout=30)


def test_leaves_verify_against_their_ca_and_carry_their_names():
    material = make_material()
    now = datetime.datetime.now(datetime.timezone.utc)
    for crt in (material.site_rsa_crt, material.site_ecdsa_crt, material.other_crt,
                material.localhost_crt, material.soon_crt):
        result = openssl("verify", "-CAfile", material.ca_crt, crt)
        assert result.returncode == 0, result.stdout + result.stderr
        assert openssl("verify", "-CAfile", material.other_ca_crt, crt).returncode != 0
    for crt in (material.site_rsa_crt, material.site_ecdsa_crt):
        text = openssl("x509", "-in", crt, "-noout", "-text").stdout
        assert "DNS:site.test, DNS:*.site.test" in text
        assert cert_subject(crt) == "CN=site.test"
    assert "Public-Key: (2048 bit)" in openssl("x509", "-in", material.site_rsa_crt, "-noout",
                                               "-text").stdout
    assert "ASN1 OID: prime256v1" in openssl("x509", "-in", material.site_ecdsa_crt, "-noout",
                                             "-text").stdout
    assert cert_serial(material.site_rsa_crt) == SERIALS["site_rsa"]
    assert cert_serial(material.site_ecdsa_crt) == SERIALS["site_ecdsa"]
    assert now + datetime.timedelta(days=2) < cert_not_after(material.soon_crt) \
        < now + datetime.timedelta(days=4)
    # Each key belongs to its certificate; wrong_key to none.
    public = {openssl("pkey", "-in", key, "-pubout").stdout
              for key in (material.site_rsa_key, material.site_ecdsa_key, material.other_key)}
    assert openssl("x509", "-in", material.site_rsa_crt, "-noout", "-pubkey").stdout in public
    assert openssl("pkey", "-in", material.wrong_key, "-pubout").stdout not in public
    # A minted leaf replaces one on disk and is told apart by its serial.
    crt, _ = make_leaf(material.folder, "site_ecdsa", ["site.test"], serial=0x7777)
    assert crt == material.site_ecdsa_crt and cert_serial(crt) == 0x7777
    assert openssl("verify", "-CAfile", material.ca_crt, crt).returncode == 0


def test_expired_leaf_and_client_certificates():
    material = make_material()
    result = openssl("verify", "-CAfile", material.ca_crt, material.expired_crt)
    assert result.returncode != 0 and "certificate has expired" in result.stdout + result.stderr
    assert cert_not_after(material.expired_crt) < datetime.datetime.now(datetime.timezone.utc)
    assert openssl("verify", "-CAfile", material.client_ca_crt,
                   material.client_crt).returncode == 0
    assert openssl("verify", "-CAfile", material.client_ca_crt,
                   material.stranger_crt).returncode != 0
    assert openssl("verify", "-CAfile", material.stranger_ca_crt,
                   material.stranger_crt).returncode == 0
    assert cert_subject(material.client_crt) == "CN=alice,O=Clients"
    assert "TLS Web Client Authentication" in openssl(
        "x509", "-in", material.client_crt, "-noout", "-ext", "extendedKeyUsage").stdout


def test_ocsp_response_says_the_rsa_leaf_is_good():
    material = make_material()
    result = openssl("ocsp", "-respin", material.site_ocsp_der, "-CAfile", material.ca_crt,
                     "-issuer", material.ca_crt, "-cert", material.site_rsa_crt)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{material.site_rsa_crt}: good" in result.stdout
    assert "Response verify OK" in result.stderr


def test_nginx_tls_backend_answers_with_a_verifiable_certificate():
    material = make_material()
    with nginx_tls_backend(material, ports=2) as ports:
        for port in ports:
            result = curl("--cacert", material.ca_crt, f"https://127.0.0.1:{port}/")
            assert (result.returncode, result.stdout) == (0, "tls-ok 200"), result.stderr
        result = curl("--cacert", material.other_ca_crt, f"https://localhost:{ports[0]}/")
        assert result.returncode == 60, result.stderr  # peer certificate cannot be verified
    with nginx_tls_backend(material, location="return 200 $ssl_client_s_dn;",
                           client_ca=material.client_ca_crt) as (port,):
        url = f"https://127.0.0.1:{port}/"
        result = curl("--cacert", material.ca_crt, "--cert", material.client_crt,
                      "--key", material.client_key, url)
        assert result.stdout == "CN=alice,O=Clients 200", result.stderr
        assert curl("--cacert", material.ca_crt, url).stdout.endswith(" 400")
        result = curl("--cacert", material.ca_crt, "--cert", material.stranger_crt,
                      "--key", material.stranger_key, url)
        assert result.stdout.endswith(" 400")
