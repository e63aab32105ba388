"""Process lifecycle: one listening socket per worker, error logs on stderr and the access log on
stdout, and SIGTERM drains in-flight requests and exits 0."""

import json
import os
import signal
import time

from harness import (Backend, ClosedPort, Sluice, assert_status, ok, proxy_config,
                     wait_for_log)

FAST_HEALTH = {"path": "/health", "interval_ms": 100, "timeout_ms": 100, "rise": 1, "fall": 1}


def listening_sockets(pid: int, port: int) -> int:
    """How many TCP sockets in LISTEN state on `port` the process `pid` holds open."""
    inodes = set()
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(path) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local_port, state = int(fields[1].rsplit(":", 1)[1], 16), fields[3]
                if local_port == port and state == "0A":  # 0A: TCP_LISTEN
                    inodes.add(fields[9])
    held = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            held.add(target[len("socket:["):-1])
    return len(inodes & held)


def test_three_workers_open_three_listening_sockets():
    with Backend(ok()) as backend, Sluice(proxy_config(backend, workers=3)) as proxy:
        assert_status(proxy.get("/"), 200)
        count = listening_sockets(proxy.pid, proxy.port)
        log = proxy.log_tail(5)
    assert count == 3, f"{count} listening sockets on port {proxy.port} with workers 3; log:\n{log}"


def test_workers_omitted_means_one_per_cpu():
    # std::thread::hardware_concurrency() counts the online CPUs, as os.cpu_count() does.
    with Backend(ok()) as backend:
        config = proxy_config(backend)
        del config["workers"]
        with Sluice(config) as proxy:
            assert_status(proxy.get("/"), 200)
            count = listening_sockets(proxy.pid, proxy.port)
            log = proxy.log_tail(5)
    assert count == os.cpu_count(), \
        f"{count} listening sockets with workers omitted on {os.cpu_count()} CPUs; log:\n{log}"


def test_logs_go_to_stderr_and_stdout_holds_only_the_access_log():
    # A backend going down and a reload add log lines beyond those of start and stop.
    with Backend(ok(b"served")) as backend, ClosedPort() as dead, \
            Sluice(proxy_config(backend, dead, upstream={"health": FAST_HEALTH}),
                   separate_stdout=True) as proxy:
        for _ in range(5):
            assert_status(proxy.get("/"), 200)
        assert wait_for_log(proxy, "is down", 3.0), \
            f"no 'is down' line on stderr within 3 s; stdout:\n{proxy.stdout_text()[:2000]}"
        proxy.send_signal(signal.SIGHUP)
        assert wait_for_log(proxy, "config reloaded", 3.0), \
            f"no 'config reloaded' line on stderr; stdout:\n{proxy.stdout_text()[:2000]}"
        status = proxy.terminate()
    assert status == 0, f"exit status {status}\n{proxy.log_tail()}"
    stderr, stdout = proxy.log_text(), proxy.stdout_text()
    assert "sluice started" in stderr and "sluice stopped" in stderr, f"stderr:\n{stderr}"
    # One access-log line per request (health checks are not exchanges), nothing else.
    lines = stdout.splitlines()
    assert len(lines) == 5, f"stdout:\n{stdout[:2000]}"
    assert all(json.loads(line)["outcome"] == "ok" for line in lines), f"stdout:\n{stdout[:2000]}"


def test_sigterm_exits_zero():
    with Backend(ok()) as backend:
        proxy = Sluice(proxy_config(backend)).start()
        assert_status(proxy.get("/"), 200)
        status = proxy.terminate()
    assert status == 0, f"exit status {status} after SIGTERM\n{proxy.log_tail()}"


def test_sigterm_lets_an_in_flight_request_finish():
    def slow(ex):
        ex.read_body()
        time.sleep(1.0)
        ex.respond(200, b"finished")

    with Backend(slow) as backend:
        proxy = Sluice(proxy_config(backend, timeouts={"drain_ms": 5000})).start()
        with proxy.client() as client:
            client.request("GET", "/slow")
            assert backend.wait_for(lambda b: b.requests, 3), "request never reached the backend"
            proxy.send_signal(signal.SIGTERM)
            response = client.read_final_response()
        status = proxy.wait(8)
    assert_status(response, 200)
    assert response.body == b"finished"
    assert status == 0, f"exit status {status} after draining\n{proxy.log_tail()}"
