"""The access log: one JSON line per exchange, on stdout unless log.access names a file or
"off". A line says exactly what the exchange was (the request as sent, bytes both ways, the
backend, the request ID the backend saw, the client's port); SIGUSR1 reopens a file that
logrotate moved; a reload switches the target; SIGTERM writes every line before exit; a sink
nobody reads never holds up traffic: lines are dropped and counted on stderr instead."""

import datetime
import fcntl
import json
import os
import signal
import socket
import threading
import time

from harness import HOST, Backend, Client, Sluice, assert_status, ok, proxy_config, \
    request_bytes, wait_for_log, write_file
from tls_client import SITE, TlsClient, TlsSluice, certificate, client_context, listener_tls
from tls_material import make_material

FIELDS = ["time", "client_ip", "client_port", "listener", "method", "target", "protocol",
          "status", "bytes_in", "bytes_out", "route", "route_match", "upstream", "backend",
          "attempts", "outcome", "cache", "request_id", "duration_ms", "upstream_first_byte_ms",
          "tls_version", "sni"]


def logged_config(*backends, access=None, level=None, **kwargs) -> dict:
    config = proxy_config(*backends, **kwargs)
    log = {}
    if access is not None:
        log["access"] = access
    if level is not None:
        log["level"] = level
    if log:
        config["log"] = log
    return config


def parse_lines(text: str) -> list[dict]:
    """Every line of `text` as JSON; each must be a whole access-log object."""
    lines = []
    for line in text.splitlines():
        entry = json.loads(line)
        assert list(entry) == FIELDS, f"fields {list(entry)} in {line}"
        lines.append(entry)
    return lines


def read_lines(path: str) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            return parse_lines(f.read())
    except FileNotFoundError:
        return []


def wait_for_lines(read, count: int, timeout: float = 5.0) -> list[dict]:
    """Polls read() (a list of lines) until it has `count` lines; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        lines = read()
        if len(lines) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert len(lines) == count, f"{len(lines)} access-log lines, expected {count}: {lines}"
    return lines


def stdout_lines(proxy: Sluice) -> list[dict]:
    return parse_lines(proxy.stdout_text())


def rewrite_config(proxy: Sluice, config: dict) -> None:
    config = dict(config, listeners=[{"address": proxy.address}])
    with open(proxy.config_path, "w") as f:
        json.dump(config, f)


def raw_exchange(port: int, request: bytes) -> tuple[bytes, int]:
    """Sends `request` (which asks to close) on a new connection; returns every byte that came
    back and the client's own port."""
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received, sock.getsockname()[1]


# --------------------------------------------------------------------------- what a line says

def test_a_line_says_exactly_what_was_sent_and_answered():
    target = '/items/a%20b?q="quoted"&path=C:\\dir&n=1'
    body = b"twelve bytes"
    with Backend(ok(b"the answer")) as backend, \
            Sluice(proxy_config(backend), separate_stdout=True) as proxy:
        before = datetime.datetime.now(datetime.timezone.utc)
        request = request_bytes("POST", target, {"Connection": "close"}, body)
        received, client_port = raw_exchange(proxy.port, request)
        after = datetime.datetime.now(datetime.timezone.utc)
        assert received.startswith(b"HTTP/1.1 200 "), received[:200]
        [line] = wait_for_lines(lambda: stdout_lines(proxy), 1)
    seen = backend.requests[0]
    assert seen.target == target
    assert line["method"] == "POST"
    assert line["target"] == target
    assert line["protocol"] == "HTTP/1.1"
    assert line["status"] == 200
    assert line["bytes_in"] == len(body)
    assert line["bytes_out"] == len(received)
    assert line["client_ip"] == HOST
    assert line["client_port"] == client_port
    assert line["listener"] == proxy.address
    assert line["route"] == 0
    assert line["route_match"] == "/"
    assert line["upstream"] == "app"
    assert line["backend"] == backend.address
    assert line["attempts"] == 1
    assert line["outcome"] == "ok"
    assert line["request_id"] == seen.header("X-Request-Id")
    assert line["request_id"]
    assert line["tls_version"] is None and line["sni"] is None
    assert isinstance(line["duration_ms"], int) and 0 <= line["duration_ms"] < 5000
    assert isinstance(line["upstream_first_byte_ms"], int)
    assert 0 <= line["upstream_first_byte_ms"] <= line["duration_ms"]
    started = datetime.datetime.strptime(line["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    slack = datetime.timedelta(milliseconds=50)  # the loop's cached clock, the offset's rounding
    assert before - slack <= started <= after + slack, (before, line["time"], after)


def test_a_request_with_no_route_has_a_null_route_and_a_local_reply():
    with Backend(ok()) as backend:
        config = proxy_config(backend, routes=[{"host": "app.test", "upstream": "app"}])
        with Sluice(config, separate_stdout=True) as proxy:
            assert_status(proxy.get("/missing"), 404)
            assert_status(proxy.get("/found", host="app.test"), 200)
            lines = wait_for_lines(lambda: stdout_lines(proxy), 2)
    # Two workers each batch their own lines, so the two may come out in either order.
    first, second = sorted(lines, key=lambda line: line["target"] != "/missing")
    assert first["status"] == 404
    assert first["route"] is None and first["route_match"] is None
    assert first["upstream"] is None and first["backend"] is None
    assert first["attempts"] == 0
    assert first["outcome"] == "local_reply"
    assert first["upstream_first_byte_ms"] is None
    assert first["target"] == "/missing"
    assert second["route"] == 0 and second["route_match"] == "app.test/"
    assert second["outcome"] == "ok"
    assert not backend.requests[1:], "the 404 reached the backend"


def test_a_tls_client_has_its_version_and_sni_in_the_line():
    material = make_material()
    tls = listener_tls(certificate(material.site_ecdsa_crt, material.site_ecdsa_key))
    with Backend(ok(b"over tls")) as backend, \
            TlsSluice(proxy_config(backend), tls, separate_stdout=True) as proxy:
        with TlsClient(proxy.port, client_context(material)) as client:
            assert_status(client.exchange("GET", "/secure"), 200)
            version = client.sock.version()
        [line] = wait_for_lines(lambda: stdout_lines(proxy), 1)
    assert line["tls_version"] == version
    assert line["sni"] == SITE
    assert line["target"] == "/secure"


def test_error_log_lines_and_access_lines_do_not_mix():
    with Backend(ok()) as backend, \
            Sluice(proxy_config(backend), separate_stdout=True) as proxy:
        for i in range(5):
            assert_status(proxy.get(f"/n{i}"), 200)
        wait_for_lines(lambda: stdout_lines(proxy), 5)
    stderr = proxy.log_text()
    assert "sluice started" in stderr
    assert '"outcome"' not in stderr, stderr


def test_level_warn_leaves_info_lines_out_of_stderr():
    with Backend(ok()) as backend, \
            Sluice(logged_config(backend, level="warn"), separate_stdout=True) as proxy:
        assert_status(proxy.get("/"), 200)
        proxy.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        status = proxy.terminate()
    assert status == 0
    stderr = proxy.log_text()
    assert "sluice started" not in stderr and "config reloaded" not in stderr, stderr
    assert len(stdout_lines(proxy)) == 1


# --------------------------------------------------------------------------- where lines go

def test_a_log_file_is_reopened_on_sigusr1_after_logrotate_moved_it():
    path = write_file("access.log", "")
    with Backend(ok()) as backend, \
            Sluice(logged_config(backend, access=path), separate_stdout=True) as proxy:
        assert_status(proxy.get("/before"), 200)
        wait_for_lines(lambda: read_lines(path), 1)
        os.rename(path, path + ".1")
        assert_status(proxy.get("/between"), 200)  # still the open file, now access.log.1
        wait_for_lines(lambda: read_lines(path + ".1"), 2)
        proxy.send_signal(signal.SIGUSR1)
        assert wait_for_log(proxy, r"access log: reopened", 5), proxy.log_tail()
        assert_status(proxy.get("/after"), 200)
        [after] = wait_for_lines(lambda: read_lines(path), 1)
        status = proxy.terminate()
    assert status == 0
    assert after["target"] == "/after"
    assert [line["target"] for line in read_lines(path + ".1")] == ["/before", "/between"]
    assert proxy.stdout_text() == ""


def test_off_writes_nothing():
    with Backend(ok()) as backend, \
            Sluice(logged_config(backend, access="off"), separate_stdout=True) as proxy:
        for i in range(5):
            assert_status(proxy.get(f"/n{i}"), 200)
        time.sleep(0.4)  # past the workers' hand-over time
        status = proxy.terminate()
    assert status == 0
    assert proxy.stdout_text() == ""


def test_a_reload_switches_the_log_from_stdout_to_a_file_and_off():
    path = os.path.join(os.path.dirname(write_file("placeholder", "")), "switched.log")
    with Backend(ok()) as backend:
        config = proxy_config(backend)
        with Sluice(config, separate_stdout=True) as proxy, proxy.client() as client:
            assert_status(client.exchange("GET", "/to-stdout"), 200)
            wait_for_lines(lambda: stdout_lines(proxy), 1)
            rewrite_config(proxy, logged_config(backend, access=path))
            proxy.send_signal(signal.SIGHUP)
            assert wait_for_log(proxy, r"config reloaded \(generation 2\)", 5), proxy.log_tail()
            # The kept-alive connection takes the new generation for its next request.
            assert_status(client.exchange("GET", "/to-file"), 200)
            [line] = wait_for_lines(lambda: read_lines(path), 1)
            assert line["target"] == "/to-file"
            rewrite_config(proxy, logged_config(backend, access="off"))
            proxy.send_signal(signal.SIGHUP)
            assert wait_for_log(proxy, r"config reloaded \(generation 3\)", 5), proxy.log_tail()
            assert_status(client.exchange("GET", "/nowhere"), 200)
            time.sleep(0.4)
    assert [line["target"] for line in stdout_lines(proxy)] == ["/to-stdout"]
    assert [line["target"] for line in read_lines(path)] == ["/to-file"]


def test_a_log_file_that_cannot_be_opened_stops_the_start_and_fails_a_reload():
    missing = os.path.join(os.path.dirname(write_file("placeholder", "")), "no", "access.log")
    with Backend(ok()) as backend:
        with Sluice(proxy_config(backend), separate_stdout=True) as proxy:
            rewrite_config(proxy, logged_config(backend, access=missing))
            proxy.send_signal(signal.SIGHUP)
            assert wait_for_log(proxy, r"reload of .* failed", 5), proxy.log_tail()
            assert wait_for_log(proxy, r"cannot open the access log .*no/access.log", 1)
            assert_status(proxy.get("/still-stdout"), 200)
            [line] = wait_for_lines(lambda: stdout_lines(proxy), 1)
            assert line["target"] == "/still-stdout"
        broken = Sluice(logged_config(backend, access=missing))
        try:
            broken.start()
            raise AssertionError("sluice started with an access log it cannot open")
        except RuntimeError:
            pass
        assert broken.wait(5) == 1
        assert "cannot open the access log" in broken.log_text()


def test_sigterm_writes_the_line_of_every_finished_exchange():
    with Backend(ok()) as backend:
        proxy = Sluice(proxy_config(backend, workers=2), separate_stdout=True).start()
        clients = [proxy.client() for _ in range(4)]
        for n in range(25):
            for i, client in enumerate(clients):
                assert_status(client.exchange("GET", f"/c{i}/r{n}"), 200)
        # At once: the workers' buffers are still waiting for their hand-over timer.
        status = proxy.terminate()
        for client in clients:
            client.close()
    assert status == 0, proxy.log_tail()
    lines = stdout_lines(proxy)
    assert len(lines) == 100
    assert sorted(line["target"] for line in lines) == \
        sorted(f"/c{i}/r{n}" for i in range(4) for n in range(25))


# --------------------------------------------------------------------------- a stuck sink

def test_a_sink_nobody_reads_drops_lines_and_never_holds_up_traffic():
    reader, writer = os.pipe()
    fcntl.fcntl(writer, fcntl.F_SETPIPE_SZ, 4096)
    long_tail = "x" * 7900  # lines of 8 KiB: 1,000 of them are twice the writer's 4 MiB bound
    try:
        with Backend(ok()) as backend:
            proxy = Sluice(proxy_config(backend), stdout_fd=writer).start()
            os.close(writer)
            writer = -1
            failures = []

            def drive(i: int) -> None:
                try:
                    with Client(proxy.port, timeout=5.0) as client:
                        for n in range(250):
                            response = client.exchange("GET", f"/c{i}/r{n}?{long_tail}")
                            if response.status != 200:
                                failures.append(f"client {i} request {n}: {response.status}")
                except Exception as error:  # noqa: BLE001 - reported below
                    failures.append(f"client {i}: {error!r}")

            started = time.monotonic()
            threads = [threading.Thread(target=drive, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            took = time.monotonic() - started
            assert not failures, failures[:5]
            assert took < 30, f"1,000 requests took {took:.1f} s"
            assert len(backend.requests) == 1000
            match = wait_for_log(proxy, r"access log: the sink is not keeping up .*; "
                                        r"dropping lines, (\d+) dropped so far", 5)
            assert match, proxy.log_tail()
            assert int(match[0][1]) > 0
            # Stopping does not wait forever for the stuck sink, and says what it lost.
            stopping = time.monotonic()
            status = proxy.terminate()
            assert status == 0, proxy.log_tail()
            assert time.monotonic() - stopping < 8
            total = wait_for_log(proxy, r"access log: (\d+) lines dropped in all", 1)
            assert total, proxy.log_tail()
            assert 400 <= int(total[0][1]) < 1000, proxy.log_tail()
    finally:
        os.close(reader)
        if writer >= 0:
            os.close(writer)
