"""A throwaway PKI for the TLS tests, made with the openssl command-line tool (OpenSSL 3.0):
CAs, server leaves (RSA and ECDSA), an expired and a soon-expiring leaf, client certificates
and a stapled OCSP response. EC P-256 keys except where RSA is the point, so that a whole set
takes a fraction of a second.

    material = make_material()              # in the running test's workdir, under tls/
    crt, key = make_leaf(material.folder, "site2", ["site.test"], serial=0x3001)

Every leaf is signed directly by its CA (no intermediates), so a leaf file is its own chain.
make_material caches per process: the first set is kept in a private folder, later calls copy
it into their folder (the workdir is deleted after every test), so only the first costs.
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime
import ipaddress
import os
import re
import secrets
import shutil
import subprocess
import tempfile

import harness

# The serial of each certificate make_material writes, to tell them apart on the wire.
SERIALS = {
    "ca": 0x0A01,
    "client_ca": 0x0A02,
    "other_ca": 0x0A03,
    "stranger_ca": 0x0A04,
    "site_rsa": 0x1001,
    "site_ecdsa": 0x1002,
    "other": 0x1003,
    "localhost": 0x1004,
    "expired": 0x1005,
    "soon": 0x1006,
    "client": 0x2001,
    "stranger": 0x2002,
}

CA_DAYS = 3650
LEAF_DAYS = 30
OCSP_DAYS = 7
_BACKDATE = datetime.timedelta(hours=1)  # notBefore of a fresh certificate: an hour ago

_REQ_CONFIG = "[req]\ndistinguished_name = req_dn\n[req_dn]\n"
_CA_CONFIG = """[ca]
default_ca = ca_default
[ca_default]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none
[policy_any]
commonName = optional
organizationName = optional
organizationalUnitName = optional
"""


@dataclasses.dataclass(frozen=True)
class Material:
    """Absolute paths of the files make_material wrote (PEM unless said otherwise)."""

    folder: str
    ca_crt: str  # the server CA, self-signed, CA:TRUE; signed every server leaf here
    ca_key: str
    site_rsa_crt: str  # RSA 2048, CN=site.test, DNS:site.test, DNS:*.site.test
    site_rsa_key: str
    site_ecdsa_crt: str  # P-256, same names, another serial
    site_ecdsa_key: str
    other_crt: str  # P-256, CN=other.test, DNS:other.test
    other_key: str
    localhost_crt: str  # P-256, CN=localhost, DNS:localhost, IP:127.0.0.1 (for backends)
    localhost_key: str
    expired_crt: str  # P-256, DNS:expired.test, notAfter 30 days ago
    expired_key: str
    soon_crt: str  # P-256, DNS:soon.test, valid now, notAfter in 3 days
    soon_key: str
    wrong_key: str  # a P-256 key that matches no certificate
    client_ca_crt: str  # the CA of client certificates
    client_ca_key: str
    client_crt: str  # CN=alice,O=Clients (RFC 2253; /O=Clients/CN=alice), clientAuth
    client_key: str
    stranger_ca_crt: str  # a self-signed CA that only signed stranger_crt
    stranger_ca_key: str
    stranger_crt: str  # CN=mallory,O=Strangers, clientAuth, signed by stranger_ca
    stranger_key: str
    other_ca_crt: str  # a CA that signed nothing
    other_ca_key: str
    site_ocsp_der: str  # DER OCSP response: site_rsa_crt is good, signed by ca, for 7 days


_cache: dict[str, Material] = {}
_master: dict[str, Material] = {}


def make_material(folder: str | None = None) -> Material:
    """The whole set in `folder` (made if missing; default: tls/ in the running test's
    workdir). Generated once per process, copied into each further folder; a second call for
    the same folder returns the same files untouched while they are still there."""
    folder = os.path.abspath(folder or os.path.join(harness.workdir(), "tls"))
    cached = _cache.get(folder)
    if cached is not None and all(os.path.exists(p) for p in dataclasses.astuple(cached)):
        return cached
    master = _master.get("set")
    if master is None or not os.path.exists(master.site_ocsp_der):
        private = tempfile.mkdtemp(prefix="sluice-tls-")
        atexit.register(shutil.rmtree, private, True)
        master = _master["set"] = _generate(private)
    os.makedirs(folder, exist_ok=True)
    paths = {f.name: os.path.join(folder, os.path.basename(getattr(master, f.name)))
             for f in dataclasses.fields(Material) if f.name != "folder"}
    for name, path in paths.items():
        shutil.copyfile(getattr(master, name), path)
    material = _cache[folder] = Material(folder=folder, **paths)
    return material


def make_leaf(folder: str, name: str, sans: list[str], key_type: str = "ec",
              days: int = LEAF_DAYS, ca: tuple[str, str] | None = None, *,
              serial: int | None = None, subject: str | None = None,
              eku: str = "serverAuth", not_before: datetime.datetime | None = None,
              not_after: datetime.datetime | None = None) -> tuple[str, str]:
    """Mints `folder`/`name`.crt and `name`.key and returns their absolute paths; existing
    files are replaced atomically (os.replace), so a reload sees the old pair or the new one.
    sans: "DNS:x" / "IP:x" entries, or bare names (an IP address, else a DNS name).
    key_type: "ec" (P-256) or "rsa" (2048). ca: (crt, key) of the signer, by default the CA of
    make_material(folder). serial: random (8 bytes) unless given. subject: in openssl's -subj
    form ("/O=y/CN=x"), by default CN= the first DNS name (else `name`). eku: the
    extendedKeyUsage ("serverAuth", "clientAuth", both comma-separated, or "" for none).
    Valid from an hour ago for `days` days, unless not_before / not_after (aware, or naive in
    UTC) say otherwise: they take any dates, past ones included."""
    folder = os.path.abspath(folder)
    os.makedirs(folder, exist_ok=True)
    if ca is None:
        material = make_material(folder)
        ca = (material.ca_crt, material.ca_key)
    names = [_san(s) for s in sans]
    if subject is None:
        dns = [n[4:] for n in names if n.startswith("DNS:")]
        subject = f"/CN={dns[0] if dns else name}"
    now = _utcnow()
    start = not_before or now - _BACKDATE
    end = not_after or now + datetime.timedelta(days=days)
    return _issue(folder, name, key_type, subject, ca,
                  serial if serial is not None else _random_serial(),
                  _leaf_extensions(key_type, names, eku), start, end)


def cert_serial(crt: str) -> int:
    """The serial number of the certificate in `crt`."""
    out = _openssl("x509", "-in", crt, "-noout", "-serial")
    return int(out.strip().split("=", 1)[1], 16)


def cert_subject(crt: str) -> str:
    """The subject of the certificate in `crt`, RFC 2253 style ("CN=alice,O=Clients")."""
    out = _openssl("x509", "-in", crt, "-noout", "-subject", "-nameopt", "RFC2253")
    return out.strip().split("=", 1)[1]


def cert_not_after(crt: str) -> datetime.datetime:
    """The notAfter of the certificate in `crt`, as an aware UTC datetime."""
    out = _openssl("x509", "-in", crt, "-noout", "-enddate").strip().split("=", 1)[1]
    return datetime.datetime.strptime(out, "%b %d %H:%M:%S %Y GMT").replace(
        tzinfo=datetime.timezone.utc)


# --------------------------------------------------------------------------- generation

def _generate(folder: str) -> Material:
    now = _utcnow()
    ca_start, ca_end = now - datetime.timedelta(days=365), now + datetime.timedelta(days=CA_DAYS)
    leaf_start, leaf_end = now - _BACKDATE, now + datetime.timedelta(days=LEAF_DAYS)

    def ca(name: str, cn: str) -> tuple[str, str]:
        return _issue(folder, name, "ec", f"/CN={cn}", None, SERIALS[name], _CA_EXTENSIONS,
                      ca_start, ca_end)

    def leaf(name: str, sans: list[str], signer: tuple[str, str], key_type: str = "ec",
             start=leaf_start, end=leaf_end, subject: str | None = None,
             eku: str = "serverAuth") -> tuple[str, str]:
        return make_leaf(folder, name, sans, key_type, ca=signer, serial=SERIALS[name],
                         subject=subject, eku=eku, not_before=start, not_after=end)

    server_ca = ca("ca", "Sluice Test CA")
    client_ca = ca("client_ca", "Sluice Test Client CA")
    other_ca = ca("other_ca", "Sluice Test Other CA")
    stranger_ca = ca("stranger_ca", "Sluice Test Stranger CA")
    site_names = ["DNS:site.test", "DNS:*.site.test"]
    site_rsa = leaf("site_rsa", site_names, server_ca, "rsa")
    site_ecdsa = leaf("site_ecdsa", site_names, server_ca)
    other = leaf("other", ["DNS:other.test"], server_ca)
    localhost = leaf("localhost", ["DNS:localhost", "IP:127.0.0.1"], server_ca)
    expired = leaf("expired", ["DNS:expired.test"], server_ca,
                   start=now - datetime.timedelta(days=60),
                   end=now - datetime.timedelta(days=30))
    soon = leaf("soon", ["DNS:soon.test"], server_ca, end=now + datetime.timedelta(days=3))
    client = leaf("client", [], client_ca, subject="/O=Clients/CN=alice", eku="clientAuth")
    stranger = leaf("stranger", [], stranger_ca, subject="/O=Strangers/CN=mallory",
                    eku="clientAuth")
    wrong_key = os.path.join(folder, "wrong.key")
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", wrong_key)
    ocsp = _ocsp_response(folder, server_ca, site_rsa[0], SERIALS["site_rsa"], leaf_end,
                          "/CN=site.test")
    return Material(
        folder=folder, ca_crt=server_ca[0], ca_key=server_ca[1],
        site_rsa_crt=site_rsa[0], site_rsa_key=site_rsa[1],
        site_ecdsa_crt=site_ecdsa[0], site_ecdsa_key=site_ecdsa[1],
        other_crt=other[0], other_key=other[1],
        localhost_crt=localhost[0], localhost_key=localhost[1],
        expired_crt=expired[0], expired_key=expired[1], soon_crt=soon[0], soon_key=soon[1],
        wrong_key=wrong_key, client_ca_crt=client_ca[0], client_ca_key=client_ca[1],
        client_crt=client[0], client_key=client[1],
        stranger_ca_crt=stranger_ca[0], stranger_ca_key=stranger_ca[1],
        stranger_crt=stranger[0], stranger_key=stranger[1],
        other_ca_crt=other_ca[0], other_ca_key=other_ca[1], site_ocsp_der=ocsp)


def _ocsp_response(folder: str, ca: tuple[str, str], crt: str, serial: int,
                   expiry: datetime.datetime, subject: str) -> str:
    """`folder`/site_ocsp.der: the CA's own answer that `crt` is good, for OCSP_DAYS days."""
    index = os.path.join(folder, "ocsp-index.txt")
    with open(index, "w") as f:
        f.write(f"V\t{expiry:%y%m%d%H%M%S}Z\t\t{serial:X}\tunknown\t{subject}\n")
    request = os.path.join(folder, "ocsp-request.der")
    response = os.path.join(folder, "site_ocsp.der")
    _openssl("ocsp", "-issuer", ca[0], "-cert", crt, "-no_nonce", "-reqout", request)
    _openssl("ocsp", "-index", index, "-rsigner", ca[0], "-rkey", ca[1], "-CA", ca[0],
             "-reqin", request, "-respout", response, "-ndays", str(OCSP_DAYS))
    os.remove(request)
    os.remove(index)
    text = _openssl("ocsp", "-respin", response, "-resp_text", "-noverify")
    if "Cert Status: good" not in text:
        raise RuntimeError(f"the OCSP response does not say good:\n{text}")
    return response


_CA_EXTENSIONS = """basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
"""


def _leaf_extensions(key_type: str, names: list[str], eku: str) -> str:
    usage = "digitalSignature, keyEncipherment" if key_type == "rsa" else "digitalSignature"
    lines = ["basicConstraints = critical, CA:FALSE", f"keyUsage = critical, {usage}",
             "subjectKeyIdentifier = hash", "authorityKeyIdentifier = keyid"]
    if eku:
        lines.append(f"extendedKeyUsage = {eku}")
    if names:
        lines.append(f"subjectAltName = {', '.join(names)}")
    return "\n".join(lines) + "\n"


def _issue(folder: str, name: str, key_type: str, subject: str, ca: tuple[str, str] | None,
           serial: int, extensions: str, start: datetime.datetime,
           end: datetime.datetime) -> tuple[str, str]:
    """A new key and a certificate for it, signed by `ca` (crt, key), or self-signed when ca
    is None, written as `folder`/`name`.crt and .key. `openssl ca` is used because it takes a
    notBefore and a notAfter (x509 -req in OpenSSL 3.0 takes only -days); each signing gets a
    scratch database, so serials never clash with earlier ones."""
    crt, key = os.path.join(folder, f"{name}.crt"), os.path.join(folder, f"{name}.key")
    with tempfile.TemporaryDirectory(prefix=f"{name}-", dir=folder) as scratch:
        req_config = _write(scratch, "req.cnf", _REQ_CONFIG)
        csr = os.path.join(scratch, "req.csr")
        new_key = (["-newkey", "rsa:2048"] if key_type == "rsa" else
                   ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"])
        new_key_path = os.path.join(scratch, "new.key")
        _openssl("req", "-config", req_config, "-new", *new_key, "-nodes", "-keyout",
                 new_key_path, "-subj", subject, "-out", csr)
        ca_config = _write(scratch, "ca.cnf", _CA_CONFIG.format(dir=scratch))
        _write(scratch, "index.txt", "")
        digits = f"{serial:X}"
        _write(scratch, "serial", "0" * (len(digits) % 2) + digits)  # an even count
        ext_file = _write(scratch, "ext.cnf", extensions)
        signer = (["-selfsign", "-keyfile", new_key_path] if ca is None else
                  ["-cert", ca[0], "-keyfile", ca[1]])
        new_crt = os.path.join(scratch, "new.crt")
        _openssl("ca", "-batch", "-notext", "-preserveDN", "-config", ca_config, *signer,
                 "-in", csr, "-out", new_crt, "-extfile", ext_file, "-startdate", _asn1_time(start),
                 "-enddate", _asn1_time(end))
        os.replace(new_key_path, key)  # same filesystem: the scratch folder is in `folder`
        os.replace(new_crt, crt)
    return crt, key


def _san(entry: str) -> str:
    if re.match(r"^(DNS|IP|URI|email):", entry):
        return entry
    try:
        ipaddress.ip_address(entry)
        return f"IP:{entry}"
    except ValueError:
        return f"DNS:{entry}"


def _asn1_time(moment: datetime.datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc)
    return f"{moment:%Y%m%d%H%M%S}Z"


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _random_serial() -> int:
    return secrets.randbits(63) | (1 << 62)  # positive, always 8 bytes, never a fixed one


def _write(folder: str, name: str, text: str) -> str:
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def _openssl(*args: str) -> str:
    result = subprocess.run(["openssl", *args], stdin=subprocess.DEVNULL, capture_output=True,
                            text=True)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed ({result.returncode}):\n"
                           f"{result.stderr.strip()}")
    return result.stdout
