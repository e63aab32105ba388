"""Debian's nginx as a backend for the tests that need a fast, real HTTP server."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time

import harness
from harness import HOST


@contextlib.contextmanager
def nginx_backend(location: str, server: str = "", ports: int = 1, listen: str = ""):
    """Debian's nginx on `ports` free ports of 127.0.0.1, one worker: `location` is the body of
    its `location /` block, `server` more directives for its server block, `listen` options for
    each listen line ("ssl"). Yields the ports."""
    prefix = os.path.join(harness.workdir(), f"nginx-{os.getpid()}-{time.monotonic_ns()}")
    os.makedirs(os.path.join(prefix, "logs"))
    port_list = [harness.free_port() for _ in range(ports)]
    listens = "\n".join(f"    listen {HOST}:{p} {listen};" for p in port_list)
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
{listens}
    {server}
    location / {{ {location} }}
  }}
}}
""")
    error_log = os.path.join(prefix, "error.log")
    proc = subprocess.Popen([shutil.which("nginx"), "-p", prefix, "-c", conf, "-e",
                             error_log, "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                for port in port_list:
                    socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() >= deadline:
                    raise RuntimeError(f"nginx did not start:\n{_tail(error_log)}") from None
                time.sleep(0.05)
        yield port_list
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


def _tail(path: str, size: int = 4000) -> str:
    try:
        with open(path, errors="replace") as f:
            return f.read()[-size:]
    except OSError:
        return "(no error log)"
