"""A client that pipelines requests and never reads the answers holds no more than its own read
block and its write queue's high-water mark; what it held goes back when it leaves."""

import contextlib
import os
import select
import shutil
import signal
import socket
import subprocess
import time

import harness
from harness import HOST, MiB, Sluice, assert_status, proxy_config

CLIENTS = 20
PIPELINE_S = 4.0
GROWTH_LIMIT = 16 * MiB


@contextlib.contextmanager
def nginx_backend():
    """Debian's nginx on a free port of 127.0.0.1, answering every request with 100 bytes at
    once: a backend fast enough that answers pile up in front of a client that never reads."""
    prefix = os.path.join(harness.workdir(), f"nginx-{os.getpid()}-{time.monotonic_ns()}")
    os.makedirs(os.path.join(prefix, "logs"))
    port = harness.free_port()
    conf = os.path.join(prefix, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {prefix}; proxy_temp_path {prefix}; fastcgi_temp_path {prefix};
  uwsgi_temp_path {prefix}; scgi_temp_path {prefix};
  keepalive_requests 1000000;
  server {{
    listen {HOST}:{port};
    location / {{ return 200 "{'x' * 99}\\n"; }}
  }}
}}
""")
    proc = subprocess.Popen([shutil.which("nginx"), "-p", prefix, "-c", conf, "-e",
                             os.path.join(prefix, "error.log"), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def pipeline_without_reading(port: int, seconds: float) -> list:
    """Opens CLIENTS connections with a 4 KiB receive buffer and sends `GET /` on each as fast
    as the proxy takes them, reading nothing, for `seconds`. Returns the open sockets."""
    request = f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode() * 64
    socks = []
    for _ in range(CLIENTS):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((HOST, port))
        s.setblocking(False)
        socks.append(s)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        _, writable, _ = select.select([], socks, [], 0.05)
        for s in writable:
            try:
                s.send(request)
            except (BlockingIOError, ConnectionError):
                pass
    return socks


def test_pipelining_clients_that_never_read_keep_memory_bounded():
    with nginx_backend() as port, Sluice(proxy_config(f"{HOST}:{port}")) as proxy:
        assert_status(proxy.get("/warm-up"), 200)
        before = harness.rss_bytes(proxy.pid)
        socks = pipeline_without_reading(proxy.port, PIPELINE_S)
        during = harness.rss_bytes(proxy.pid)
        for s in socks:
            s.close()
        time.sleep(1.0)
        assert_status(proxy.get("/after"), 200)
        after = harness.rss_bytes(proxy.pid)
    print(f"rss before {before / MiB:.1f} during {during / MiB:.1f} after {after / MiB:.1f} MiB")
    assert during - before < GROWTH_LIMIT, \
        f"RSS grew by {(during - before) / MiB:.1f} MiB for {CLIENTS} clients that never read"
    assert after - before < GROWTH_LIMIT, \
        f"RSS stayed {(after - before) / MiB:.1f} MiB above its start after the clients left"
