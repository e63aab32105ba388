"""SIGHUP reloads the config file: a valid one takes effect for new requests, a broken one is
refused with its error logged and the running config keeps serving."""

import json
import os
import signal
import subprocess
import time

from harness import (HOST, Backend, Sluice, assert_status, free_port, ok, proxy_config,
                     sluice_binary, wait_for_log, workdir, write_file)


def rewrite_config(proxy: Sluice, config: dict) -> None:
    config = dict(config, listeners=[{"address": proxy.address}])
    with open(proxy.config_path, "w") as f:
        json.dump(config, f)


def test_reload_sends_new_requests_to_the_new_upstream():
    with Backend(ok(b"old")) as old, Backend(ok(b"new")) as new, \
            Sluice(proxy_config(old)) as proxy, proxy.client() as client:
        assert client.exchange("GET", "/").body == b"old"
        rewrite_config(proxy, proxy_config(new))
        proxy.send_signal(signal.SIGHUP)
        assert wait_for_log(proxy, r"config reloaded \(generation 2\)", 5), proxy.log_tail()
        # The kept-alive connection picks the new snapshot up for its next request.
        assert client.exchange("GET", "/").body == b"new"
        assert proxy.get("/").body == b"new"


def test_broken_config_on_reload_is_refused_and_the_old_one_keeps_serving():
    with Backend(ok(b"running")) as backend, Sluice(proxy_config(backend)) as proxy:
        with open(proxy.config_path, "w") as f:
            f.write('{ "workers": 1,\n  "listeners": [ { "address": "127.0.0.1:1" } ],\n  oops }\n')
        proxy.send_signal(signal.SIGHUP)
        assert wait_for_log(proxy, r"reload of .* failed; keeping the running config", 5), \
            proxy.log_tail()
        assert wait_for_log(proxy, r"line 3, column 3: invalid JSON", 1), proxy.log_tail()
        response = proxy.get("/")
        assert_status(response, 200)
        assert response.body == b"running"


def test_reload_keeps_a_backends_health_when_its_address_stays():
    with Backend(ok(b"a")) as a, Backend(ok(b"b")) as b:
        config = proxy_config(a, b, workers=1,
                              upstream={"passive": {"failures": 1, "ejection_ms": 60000}})
        with Sluice(config) as proxy:
            b.stop()  # b refuses connections: one failure ejects it for a minute
            for _ in range(4):
                assert_status(proxy.get("/"), 200)
            assert wait_for_log(proxy, r"backend .* ejected", 5), proxy.log_tail()
            rewrite_config(proxy, config)
            proxy.send_signal(signal.SIGHUP)
            assert wait_for_log(proxy, r"config reloaded", 5), proxy.log_tail()
            served_by_a = len(a.requests)
            for _ in range(6):
                assert_status(proxy.get("/"), 200)
            assert len(a.requests) == served_by_a + 6
            # Still ejected after the reload: b was not tried again, so it was not ejected again.
            assert proxy.log_text().count(" ejected for ") == 1, proxy.log_tail()


def signal_held(pid: int, signum: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            blocked = next(line for line in f if line.startswith("SigBlk:"))
    except (OSError, StopIteration):
        return False
    return bool(int(blocked.split()[1], 16) & (1 << (signum - 1)))


def slow_starting_sluice(name: str) -> tuple[subprocess.Popen, str]:
    """A sluice whose start-up is long enough to land a signal inside it: 300 Maglev-hashed
    upstreams. Returns the process and the path of its log."""
    upstreams = {f"u{i}": [f"{HOST}:{9000 + i}"] for i in range(300)}
    config = proxy_config(upstreams=upstreams, routes=[{"upstream": "u0"}],
                          upstream={"balance": "hash"})
    config["listeners"] = [{"address": f"{HOST}:{free_port()}"}]
    path = write_file(f"{name}.json", json.dumps(config))
    log_path = os.path.join(workdir(), f"{name}.log")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sluice_binary(), "-c", path], stdout=log, stderr=log)
    return proc, log_path


def send_once_held(proc: subprocess.Popen, signum: int) -> None:
    """No process can guard the instant before its first instruction, so the signal goes once
    /proc shows it held."""
    deadline = time.monotonic() + 5
    while not signal_held(proc.pid, signum):
        assert time.monotonic() < deadline and proc.poll() is None, f"signal {signum} never held"
        time.sleep(0.0005)
    proc.send_signal(signum)


def log_once_alive(proc: subprocess.Popen, log_path: str, line: str, signal_name: str) -> str:
    """Waits (5 s at most) until the log has `line`, failing if the process dies meanwhile;
    returns the log."""
    deadline = time.monotonic() + 5
    text = ""
    while time.monotonic() < deadline and line not in text:
        assert proc.poll() is None, f"sluice died on an early {signal_name} ({proc.returncode})"
        time.sleep(0.05)
        with open(log_path, errors="replace") as f:
            text = f.read()
    return text


def test_sighup_during_start_up_is_applied_once_start_up_is_done():
    """A reload sent while the process starts (its first act is to hold the signals it handles;
    loading the config and starting workers follow) neither kills it nor is lost: it runs as
    soon as start-up is done."""
    proc, log_path = slow_starting_sluice("hup-at-start")
    try:
        send_once_held(proc, signal.SIGHUP)
        text = log_once_alive(proc, log_path, "config reloaded", "SIGHUP")
        assert "config reloaded (generation 2)" in text, text
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sigusr1_during_start_up_does_not_kill_the_process():
    """SIGUSR1 (reopen the access log, sent by logrotate at any moment) is held from the first
    instruction on like the stop and reload signals; its default action would end the process."""
    proc, log_path = slow_starting_sluice("usr1-at-start")
    try:
        send_once_held(proc, signal.SIGUSR1)
        text = log_once_alive(proc, log_path, "sluice started", "SIGUSR1")
        assert "sluice started" in text, text
        time.sleep(0.2)
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)
