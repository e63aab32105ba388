"""Debian's nginx as a TLS backend: like nginx_backend (nginx.py), with `ssl` listeners that
serve the localhost certificate of tls_material, optionally asking for client certificates.

    material = make_material()
    with nginx_tls_backend(material) as (port,):
        ...  # https://127.0.0.1:port/ answers 200 "tls-ok", verifiable with material.ca_crt
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time

import harness
from harness import HOST
from tls_material import Material

START_TIMEOUT_S = 10.0


@contextlib.contextmanager
def nginx_tls_backend(material: Material, location: str = "return 200 'tls-ok';",
                      server: str = "", ports: int = 1, client_ca: str | None = None):
    """nginx on `ports` free ports of 127.0.0.1 with TLS (1.2 and 1.3), one worker, serving
    material.localhost_crt (DNS:localhost, IP:127.0.0.1, signed by material.ca_crt).
    `location` is the body of its `location /` block, `server` more directives for its server
    block. With `client_ca` (a CA file, e.g. material.client_ca_crt) it requires a client
    certificate signed by it: a request without one, or with another, gets nginx's 400 (the
    handshake itself succeeds). Yields the ports."""
    prefix = os.path.join(harness.workdir(), f"nginx-tls-{os.getpid()}-{time.monotonic_ns()}")
    os.makedirs(os.path.join(prefix, "logs"))
    port_list = [harness.free_port() for _ in range(ports)]
    listens = "\n".join(f"    listen {HOST}:{p} ssl;" for p in port_list)
    verify = ""
    if client_ca is not None:
        verify = (f"ssl_verify_client on; ssl_client_certificate {os.path.abspath(client_ca)};"
                  " ssl_verify_depth 2;")
    conf = os.path.join(prefix, "nginx.conf")
    error_log = os.path.join(prefix, "error.log")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1;
pid {prefix}/nginx.pid;
error_log {error_log};
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {prefix}; proxy_temp_path {prefix}; fastcgi_temp_path {prefix};
  uwsgi_temp_path {prefix}; scgi_temp_path {prefix};
  keepalive_requests 1000000;
  server {{
{listens}
    ssl_certificate {material.localhost_crt};
    ssl_certificate_key {material.localhost_key};
    ssl_protocols TLSv1.2 TLSv1.3;
    {verify}
    {server}
    location / {{ {location} }}
  }}
}}
""")
    proc = subprocess.Popen([shutil.which("nginx"), "-p", prefix, "-c", conf, "-e", error_log,
                             "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
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
