"""A full file-descriptor table pauses accepting instead of spinning, and serving resumes."""

import resource
import socket
import time

from harness import HOST, Backend, Sluice, assert_status, ok, proxy_config


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in clock ticks


def test_full_descriptor_table_pauses_accepting_without_spinning_then_recovers():
    with Backend(ok(b"served")) as backend, Sluice(proxy_config(backend, workers=1)) as proxy:
        assert_status(proxy.get("/"), 200)
        resource.prlimit(proxy.pid, resource.RLIMIT_NOFILE, (64, 64))
        idle = []
        try:
            for _ in range(90):  # more than the proxy can hold open
                idle.append(socket.create_connection((HOST, proxy.port), timeout=2))
            deadline = time.monotonic() + 5
            while "pausing accepts" not in proxy.log_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert "pausing accepts" in proxy.log_text(), proxy.log_tail()
            before = cpu_seconds(proxy.pid)
            time.sleep(2)
            spent = cpu_seconds(proxy.pid) - before
            assert spent < 0.5, f"the proxy used {spent:.2f} s of CPU in 2 s while out of descriptors"
        finally:
            for s in idle:
                s.close()
        # The descriptors come back once the idle clients are gone; a new client is served.
        deadline = time.monotonic() + 5
        while True:
            try:
                response = proxy.get("/", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert_status(response, 200)
        assert response.body == b"served"
