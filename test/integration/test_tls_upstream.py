"""TLS to upstream backends: sluice verifies the backend against the configured CA and name,
sends SNI only for names, presents a client certificate, pools and resumes TLS connections, runs
health checks over TLS, and keeps its upstream TLS context across a reload that changes nothing.
The backend is Debian's nginx serving the localhost certificate (nginx_tls.py), which reports
what it saw of each request in its body."""

import json
import os
import re
import shutil
import signal
import time

import pytest

from harness import (HEALTH_CHECK_AGENT, CliResult, Sluice, assert_status, proxy_config, run_cli,
                     wait_for_log, workdir, write_file)
from nginx_tls import nginx_tls_backend
from tls_material import make_material

pytestmark = pytest.mark.timeout(60)

# nginx answers every request with what it saw: "key=value" pairs joined by "|".
REPORT = ('return 200 "sni=$ssl_server_name|reused=$ssl_session_reused|conn=$connection'
          '|dn=$ssl_client_s_dn|proto=$http_x_forwarded_proto|version=$ssl_protocol";')

VERIFY_FAILED = r"TLS handshake with a backend failed: .*certificate verify failed"


def report(response) -> dict[str, str]:
    """The fields of a REPORT body."""
    assert_status(response, 200)
    return dict(item.split("=", 1) for item in response.body.decode().split("|"))


def tls_config(port: int, tls: dict, workers: int = 1, **upstream) -> dict:
    """One upstream "app" with the nginx on `port` as its backend, speaking TLS with `tls`."""
    return proxy_config(f"127.0.0.1:{port}", workers=workers,
                        upstream={"tls": tls, **upstream})


def rewrite_config(proxy: Sluice, config: dict) -> None:
    config = dict(config, listeners=[{"address": proxy.address}])
    with open(proxy.config_path, "w") as f:
        json.dump(config, f)


def check_config(name: str, tls: dict) -> CliResult:
    """`sluice --check` on an otherwise valid config whose upstream has `tls`."""
    config = dict(tls_config(9, tls), listeners=[{"address": "127.0.0.1:8080"}])
    return run_cli("--check", write_file(name, json.dumps(config)))


# --------------------------------------------------------------------------- verification

def test_backend_verified_against_the_configured_ca_answers_200_with_its_body():
    material = make_material()
    with nginx_tls_backend(material) as (port,), \
            Sluice(tls_config(port, {"verify": True, "ca": material.ca_crt})) as proxy:
        response = proxy.get("/")
    assert_status(response, 200)
    assert response.body == b"tls-ok"


def test_ca_path_relative_to_the_config_folder_verifies_the_backend():
    material = make_material()  # in tls/ beside the config files
    ca = os.path.relpath(material.ca_crt, workdir())  # the configs are written to workdir()
    with nginx_tls_backend(material) as (port,), \
            Sluice(tls_config(port, {"ca": ca})) as proxy:
        response = proxy.get("/")
    assert_status(response, 200)
    assert response.body == b"tls-ok"


def test_backend_not_signed_by_the_configured_ca_gets_502_and_a_verify_failure_logged():
    material = make_material()
    with nginx_tls_backend(material) as (port,), \
            Sluice(tls_config(port, {"ca": material.other_ca_crt})) as proxy:
        response = proxy.get("/")
        logged = wait_for_log(proxy, VERIFY_FAILED, 2.0)
        log = proxy.log_text()
    assert_status(response, 502)
    assert logged, f"no verify failure in the log:\n{log}"


def test_verify_false_accepts_a_backend_the_configured_ca_did_not_sign():
    material = make_material()
    tls = {"verify": False, "ca": material.other_ca_crt}
    with nginx_tls_backend(material) as (port,), Sluice(tls_config(port, tls)) as proxy:
        response = proxy.get("/")
        log = proxy.log_text()
    assert_status(response, 200)
    assert response.body == b"tls-ok"
    assert "TLS handshake with a backend failed" not in log, log


# --------------------------------------------------------------------------- names and SNI

def test_configured_sni_is_sent_and_verified_against_the_dns_name():
    material = make_material()
    tls = {"ca": material.ca_crt, "sni": "localhost"}
    with nginx_tls_backend(material, REPORT) as (port,), \
            Sluice(tls_config(port, tls)) as proxy:
        seen = report(proxy.get("/"))
    assert seen["sni"] == "localhost", seen


def test_sni_naming_a_host_not_in_the_certificate_gets_502():
    material = make_material()
    tls = {"ca": material.ca_crt, "sni": "wrong.test"}
    with nginx_tls_backend(material, REPORT) as (port,), \
            Sluice(tls_config(port, tls)) as proxy:
        response = proxy.get("/")
        logged = wait_for_log(proxy, VERIFY_FAILED, 2.0)
        log = proxy.log_text()
    assert_status(response, 502)
    assert logged, f"no verify failure in the log:\n{log}"


def test_without_sni_no_server_name_is_sent_and_the_ip_san_verifies():
    material = make_material()
    with nginx_tls_backend(material, REPORT) as (port,), \
            Sluice(tls_config(port, {"ca": material.ca_crt})) as proxy:
        seen = report(proxy.get("/"))
    assert seen["sni"] == "", f"a server name was sent for an IP address: {seen}"


# --------------------------------------------------------------------------- connections

def test_sequential_requests_reuse_one_pooled_tls_connection():
    material = make_material()
    with nginx_tls_backend(material, REPORT) as (port,), \
            Sluice(tls_config(port, {"ca": material.ca_crt})) as proxy:
        seen = [report(proxy.get(f"/{i}")) for i in range(6)]
    connections = [s["conn"] for s in seen]
    assert len(set(connections)) == 1, f"nginx connection serials: {connections}"


def test_new_connections_resume_the_last_tls_session():
    material = make_material()
    with nginx_tls_backend(material, REPORT) as (port,), \
            Sluice(tls_config(port, {"ca": material.ca_crt}, keepalive=0)) as proxy:
        seen = [report(proxy.get(f"/{i}")) for i in range(4)]
    connections = [s["conn"] for s in seen]
    reused = [s["reused"] for s in seen]
    assert len(set(connections)) == 4, f"keepalive 0 should mean a connection each: {connections}"
    assert reused[1:] == ["r"] * 3, \
        f"$ssl_session_reused per request: {reused} ({seen[0]['version']})"


def test_upstreams_with_different_tls_settings_never_share_a_connection():
    material = make_material()
    with nginx_tls_backend(material, REPORT) as (port,):
        address = f"127.0.0.1:{port}"
        config = proxy_config(upstreams={"named": [address], "bare": [address]},
                              routes=[{"path_prefix": "/named/", "upstream": "named"},
                                      {"upstream": "bare"}], workers=1)
        config["upstreams"]["named"]["tls"] = {"ca": material.ca_crt, "sni": "localhost"}
        config["upstreams"]["bare"]["tls"] = {"ca": material.ca_crt}
        with Sluice(config) as proxy:
            seen = [(which, report(proxy.get(f"/{which}/{i}")))
                    for i in range(4) for which in ("named", "bare")]
    names = [(which, s["sni"]) for which, s in seen]
    assert names == [("named", "localhost"), ("bare", "")] * 4, names
    named = {s["conn"] for which, s in seen if which == "named"}
    bare = {s["conn"] for which, s in seen if which == "bare"}
    assert not named & bare, f"connections shared between the upstreams: {seen}"
    assert len(named) == 1 and len(bare) == 1, \
        f"each upstream should keep its own pooled connection: named {named}, bare {bare}"


# --------------------------------------------------------------------------- client certificates

def test_client_certificate_is_presented_to_a_backend_that_requires_one():
    material = make_material()
    tls = {"ca": material.ca_crt, "client_cert": material.client_crt,
           "client_key": material.client_key}
    with nginx_tls_backend(material, REPORT, client_ca=material.client_ca_crt) as (port,), \
            Sluice(tls_config(port, tls)) as proxy:
        seen = report(proxy.get("/"))
    assert seen["dn"] == "CN=alice,O=Clients", seen


def test_without_a_client_certificate_a_backend_that_requires_one_answers_400():
    material = make_material()
    with nginx_tls_backend(material, REPORT, client_ca=material.client_ca_crt) as (port,), \
            Sluice(tls_config(port, {"ca": material.ca_crt})) as proxy:
        response = proxy.get("/")
    assert_status(response, 400)
    assert b"No required SSL certificate was sent" in response.body, response.describe()


# --------------------------------------------------------------------------- --check

def test_check_rejects_a_client_cert_without_its_key():
    material = make_material()
    both = check_config("both.json", {"ca": material.ca_crt, "client_cert": material.client_crt,
                                      "client_key": material.client_key})
    result = check_config("no-key.json", {"ca": material.ca_crt,
                                          "client_cert": material.client_crt})
    assert both.returncode == 0, f"the config with both is refused too: {both!r}"
    assert result.returncode == 1, repr(result)
    assert "client_key" in result.output, repr(result)


def test_check_rejects_a_missing_ca_file_naming_it():
    material = make_material()
    present = check_config("present-ca.json", {"ca": material.ca_crt})
    missing = os.path.join(material.folder, "no-such-ca.pem")
    result = check_config("missing-ca.json", {"ca": missing})
    assert present.returncode == 0, f"the config with the CA file is refused too: {present!r}"
    assert result.returncode == 1, repr(result)
    assert missing in result.output, repr(result)


# --------------------------------------------------------------------------- health checks

def health_location(log: str) -> str:
    return f"access_log {log}; return 200 'tls-ok';"


def test_health_checks_over_tls_keep_a_verified_backend_up():
    material = make_material()
    access_log = os.path.join(material.folder, "access.log")
    health = {"path": "/", "interval_ms": 200, "rise": 1, "fall": 1}
    with nginx_tls_backend(material, health_location(access_log)) as (port,), \
            Sluice(tls_config(port, {"ca": material.ca_crt}, health=health)) as proxy:
        time.sleep(1.2)  # about six checks
        statuses = [proxy.get(f"/{i}").status for i in range(5)]
        log = proxy.log_text()
    with open(access_log) as f:
        checks = [line for line in f if HEALTH_CHECK_AGENT in line]
    assert statuses == [200] * 5, statuses
    assert not re.search(r"is down", log), log
    assert len(checks) >= 3, f"nginx saw {len(checks)} health checks in 1.2 s"
    assert all('" 200 ' in line for line in checks), checks


def test_health_checks_over_tls_take_an_unverified_backend_down():
    material = make_material()
    health = {"path": "/", "interval_ms": 200, "rise": 1, "fall": 1}
    with nginx_tls_backend(material) as (port,), \
            Sluice(tls_config(port, {"ca": material.other_ca_crt}, health=health)) as proxy:
        down = wait_for_log(proxy, rf"backend 127\.0\.0\.1:{port} is down.*", 3.0)
        response = proxy.get("/")
        log = proxy.log_text()
    assert down, f"no 'is down' line within 3 s:\n{log}"
    assert_status(response, 503)
    assert b"app" in response.body, response.describe()


# --------------------------------------------------------------------------- reload

def test_reload_that_changes_nothing_keeps_the_pooled_tls_connection():
    material = make_material()
    with nginx_tls_backend(material, REPORT) as (port,):
        config = tls_config(port, {"ca": material.ca_crt, "sni": "localhost"})
        with Sluice(config) as proxy:
            before = report(proxy.get("/before"))
            rewrite_config(proxy, config)
            proxy.send_signal(signal.SIGHUP)
            reloaded = wait_for_log(proxy, r"config reloaded \(generation 2\)", 5.0)
            after = [report(proxy.get(f"/after/{i}")) for i in range(3)]
            log = proxy.log_tail()
    assert reloaded, log
    connections = [before["conn"]] + [s["conn"] for s in after]
    assert len(set(connections)) == 1, \
        f"nginx connection serials before and after the reload: {connections}"


def test_reload_after_the_ca_file_changed_verifies_with_the_new_file():
    material = make_material()
    ca = os.path.join(material.folder, "upstream-ca.pem")
    shutil.copyfile(material.other_ca_crt, ca)
    with nginx_tls_backend(material) as (port,):
        config = tls_config(port, {"ca": ca})
        with Sluice(config) as proxy:
            before = proxy.get("/")
            shutil.copyfile(material.ca_crt, ca)
            rewrite_config(proxy, config)
            proxy.send_signal(signal.SIGHUP)
            reloaded = wait_for_log(proxy, r"config reloaded \(generation 2\)", 5.0)
            after = proxy.get("/")
            log = proxy.log_tail()
    assert reloaded, log
    assert_status(before, 502)
    assert_status(after, 200)
    assert after.body == b"tls-ok"


# --------------------------------------------------------------------------- headers

def test_backend_sees_x_forwarded_proto_http_from_a_plain_listener():
    material = make_material()
    with nginx_tls_backend(material, REPORT) as (port,), \
            Sluice(tls_config(port, {"ca": material.ca_crt})) as proxy:
        seen = report(proxy.get("/"))
    assert seen["proto"] == "http", seen
