"""The backend farm and the three proxies, each configured as much alike as their configs allow.

Common ground for every proxy: one worker, round-robin over the same 3 backends, upstream
keep-alive with up to 64 idle connections per backend, no access log, X-Forwarded-For and
X-Forwarded-Proto added, Host passed through unchanged (what Sluice does), and for TLS the same
certificate with session resumption disabled, so a new connection is always a full handshake.
With `cache` set (the cache-hit scenario), each keeps GET answers for CACHE_TTL_S seconds in its
own cache and marks the answers it gives from there (see cache_hit).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass

from . import procs
from .system import CpuLayout

SMALL_BODY = b"x" * 127 + b"\n"   # 128 bytes, served at /
LARGE_BYTES = 1 << 20             # served at /1m
POOL_PER_BACKEND = 64             # Sluice's default "keepalive"; the others are set to match
CACHE_TTL_S = 60                  # how long each proxy's cache keeps an answer without freshness
STATUS_PATH = "/backend-status"   # the farm's request count (nginx stub_status)


@dataclass
class TlsFiles:
    cert: str
    key: str
    combined: str   # cert + key in one file, as HAProxy wants it


def make_certificate(directory: str) -> TlsFiles:
    """A self-signed ECDSA P-256 certificate for 127.0.0.1, shared by every TLS listener."""
    os.makedirs(directory, exist_ok=True)
    files = TlsFiles(*(os.path.join(directory, n) for n in ("cert.pem", "key.pem", "both.pem")))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", files.key, "-out", files.cert],
                   check=True, capture_output=True)
    with open(files.combined, "wb") as out:
        for part in (files.cert, files.key):
            with open(part, "rb") as f:
                out.write(f.read())
    return files


def _write(path: str, text: str) -> str:
    with open(path, "w") as f:
        f.write(text)
    return path


# --------------------------------------------------------------------------- backends

class Backends:
    """One nginx process, one worker, listening on 3 ports: the 3 "backends" of the farm.
    One process rather than three so the farm costs one event loop on its shared CPU."""

    def __init__(self, workdir: str, layout: CpuLayout, fd_limit: int):
        self.dir = os.path.join(workdir, "backends")
        self.ports = procs.free_ports(3)
        self.layout = layout
        self.fd_limit = fd_limit
        self.child: procs.Child | None = None

    def start(self) -> None:
        os.makedirs(os.path.join(self.dir, "www"), exist_ok=True)
        with open(os.path.join(self.dir, "www", "1m"), "wb") as f:
            f.write(os.urandom(LARGE_BYTES))
        conf = _write(os.path.join(self.dir, "nginx.conf"), self._config())
        self.child = procs.spawn("backends", _nginx_argv(self.dir, conf),
                                 os.path.join(self.dir, "stderr.log"), cpus=self.layout.backends)
        for port in self.ports:
            procs.wait_ready(self.child, port)

    def requests_served(self) -> int:
        """Requests the farm has answered so far, on all 3 ports, this query included."""
        status, body = procs.http_get(self.ports[0], STATUS_PATH)
        match = re.search(rb"accepts handled requests\s+\d+\s+\d+\s+(\d+)", body)
        if status != 200 or not match:
            raise RuntimeError(f"backends: {STATUS_PATH} answered {status}: {body[:200]!r}")
        return int(match.group(1))

    def _config(self) -> str:
        listens = "\n".join(f"    listen 127.0.0.1:{p} backlog=4096;" for p in self.ports)
        return f"""
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
worker_rlimit_nofile {self.fd_limit};
events {{ worker_connections {self.fd_limit - 100}; }}
http {{
  access_log off;
  # Pooled proxy connections must not be recycled by the backend during a run.
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  sendfile on;
  default_type application/octet-stream;
  server {{
{listens}
    root {self.dir}/www;
    location = / {{ return 200 "{SMALL_BODY.decode().rstrip()}\\n"; }}
    location = /health {{ return 200 "ok\\n"; }}
    location = {STATUS_PATH} {{ stub_status; }}
    location = /1m {{ }}
  }}
}}
"""


def _nginx_argv(prefix: str, conf: str) -> list[str]:
    # daemon off: the master stays our child, so its process group is ours to stop.
    return [shutil.which("nginx"), "-p", prefix, "-c", conf, "-e", os.path.join(prefix, "error.log"),
            "-g", "daemon off;"]


# --------------------------------------------------------------------------- proxies

class Proxy:
    """A proxy under test. start() writes a fresh config and starts a fresh process, so each
    measurement begins from the same state; stop() ends its whole process group."""

    name = ""
    label = ""

    def __init__(self, workdir: str, layout: CpuLayout, backends: list[int], tls: TlsFiles,
                 fd_limit: int):
        self.dir = os.path.join(workdir, self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.layout = layout
        self.backends = backends
        self.tls_files = tls
        self.fd_limit = fd_limit
        self.child: procs.Child | None = None
        self.port = 0
        self.cache = False   # set by the cache-hit scenario around its measurement

    def supports_tls(self) -> str | None:
        """None when TLS listeners work, else why not."""
        return None

    def supports_cache(self) -> str | None:
        """Capability probe: None when the proxy's own config test accepts its cached config,
        else why not."""
        self.cache, self.port = True, procs.free_ports(1)[0]
        try:
            conf = self._write_config(tls=False)
        finally:
            self.cache = False
        done = subprocess.run(self._test_argv(conf), capture_output=True, text=True, timeout=30)
        return None if done.returncode == 0 else f"its config test rejects a cache ({_why(done)})"

    def cache_hit(self, headers: dict[str, str]) -> bool:
        """Whether an answer (its header fields, names in lower case) came from the cache."""
        raise NotImplementedError

    def start(self, tls: bool = False) -> None:
        self.port = procs.free_ports(1)[0]
        self.child = procs.spawn(self.name, self._argv(self._write_config(tls)),
                                 os.path.join(self.dir, "stderr.log"), cpus=self.layout.proxy)
        procs.wait_ready(self.child, self.port, tls=tls)

    def stop(self) -> None:
        if self.child:
            self.child.stop()
            self.child = None

    @property
    def pid(self) -> int:
        return self.child.pid

    def reload(self) -> None:
        raise NotImplementedError

    def _write_config(self, tls: bool) -> str:
        raise NotImplementedError

    def _argv(self, conf: str) -> list[str]:
        raise NotImplementedError

    def _test_argv(self, conf: str) -> list[str]:
        raise NotImplementedError


def _why(done: subprocess.CompletedProcess) -> str:
    """The first line of a failed config test, without the file and line it names (which say
    nothing to a reader of the report), e.g. "sluice: /tmp/.../x.json: line 1: /listeners/0/tls:
    unknown key ..." -> "/listeners/0/tls: unknown key ..."."""
    lines = (done.stderr or done.stdout).strip().splitlines()
    return re.sub(r"^sluice: \S+: line \d+(, column \d+)?: ", "", lines[0]) if lines else "failed"


class Sluice(Proxy):
    """Sluice under test; with another binary and name, the baseline it is compared with."""

    name, label = "sluice", "Sluice"

    def __init__(self, binary: str, *args, name: str = "sluice", label: str = "Sluice"):
        self.binary = binary
        self.name, self.label = name, label   # before Proxy.__init__, which names its dir
        super().__init__(*args)
        # When set (the observed scenario): the access log goes to a file and the admin
        # listener is on, at this port. Otherwise both are off, as nginx's and HAProxy's logs.
        self.admin_port: int | None = None

    @property
    def access_log(self) -> str:
        return os.path.join(self.dir, "access.log")

    def supports_tls(self) -> str | None:
        """Capability probe: does `sluice --check` accept a config with a TLS listener?"""
        conf = _write(os.path.join(self.dir, "tls-probe.json"),
                      json.dumps(self._config(procs.free_ports(1)[0], tls=True)))
        done = subprocess.run(self._test_argv(conf), capture_output=True, text=True)
        if done.returncode == 0:
            return None
        return f"sluice --check rejects a TLS listener ({_why(done)})"

    def cache_hit(self, headers: dict[str, str]) -> bool:
        # Cache-Status (RFC 9211): "sluice; hit; ttl=59" for a fresh answer from the store.
        return any("hit" in (p.strip() for p in entry.split(";")[1:])
                   for entry in headers.get("cache-status", "").split(","))

    def _config(self, port: int, tls: bool) -> dict:
        listener = {"address": f"127.0.0.1:{port}"}
        if tls:
            # As docs/config.md describes it; no resumption, like the nginx and HAProxy configs,
            # so the handshake scenario measures full handshakes everywhere.
            listener["tls"] = {
                "certificates": [{"cert": self.tls_files.cert, "key": self.tls_files.key}],
                "session_tickets": False,
            }
        config = {
            "workers": 1,
            "listeners": [listener],
            "upstreams": {"app": {
                "balance": "round_robin",
                "keepalive": POOL_PER_BACKEND,
                "backends": [{"address": f"127.0.0.1:{p}"} for p in self.backends],
            }},
            "routes": [{"upstream": "app"}],
            "log": {"access": "off"},
        }
        if self.cache:
            # The backends' answers state no freshness: the default keeps them CACHE_TTL_S.
            config["routes"][0]["cache"] = {"default_ttl_s": CACHE_TTL_S}
        if self.admin_port:
            config["log"] = {"access": self.access_log}
            config["admin"] = {"address": f"127.0.0.1:{self.admin_port}"}
        return config

    def _write_config(self, tls: bool) -> str:
        return _write(os.path.join(self.dir, "sluice.json"),
                      json.dumps(self._config(self.port, tls), indent=2))

    def _argv(self, conf: str) -> list[str]:
        return [self.binary, "-c", conf]

    def _test_argv(self, conf: str) -> list[str]:
        return [self.binary, "--check", conf]

    def reload(self) -> None:
        os.kill(self.pid, signal.SIGHUP)


class Nginx(Proxy):
    name, label = "nginx", "nginx"

    @property
    def cache_dir(self) -> str:
        return os.path.join(self.dir, "cache")

    def _write_config(self, tls: bool) -> str:
        # nginx's cache outlives the process on disk: a fresh process starts with an empty one.
        shutil.rmtree(self.cache_dir, ignore_errors=True)
        self.conf = _write(os.path.join(self.dir, "nginx.conf"), self._config(tls))
        return self.conf

    def cache_hit(self, headers: dict[str, str]) -> bool:
        return headers.get("x-cache-status") == "HIT"

    def _cache_config(self) -> tuple[str, str]:
        """What the http block and the location get with the cache on: a zone for 10 MB of
        keys, answers without freshness kept CACHE_TTL_S, concurrent misses of one key waiting
        on one fetch (as Sluice's do), and $upstream_cache_status on every answer."""
        if not self.cache:
            return "", ""
        http = (f"proxy_cache_path {self.cache_dir} levels=1:2 keys_zone=hits:10m "
                "use_temp_path=off;")
        location = f"""
      proxy_cache hits;
      proxy_cache_valid 200 {CACHE_TTL_S}s;
      proxy_cache_lock on;
      add_header X-Cache-Status $upstream_cache_status;"""
        return http, location

    def _config(self, tls: bool) -> str:
        servers = "\n".join(f"    server 127.0.0.1:{p};" for p in self.backends)
        listen = f"listen 127.0.0.1:{self.port} backlog=4096"
        if tls:
            listen += f""" ssl;
    ssl_certificate {self.tls_files.cert};
    ssl_certificate_key {self.tls_files.key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off"""
        cache_http, cache_location = self._cache_config()
        return f"""
worker_processes 1;
pid {self.dir}/nginx.pid;
error_log {self.dir}/error.log warn;
worker_rlimit_nofile {self.fd_limit};
events {{ worker_connections {self.fd_limit - 100}; }}
http {{
  access_log off;
  # Sluice and HAProxy never close a client connection after N requests; nginx's default 1000
  # would make wrk reconnect through nginx only.
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  {cache_http}
  upstream app {{
{servers}
    keepalive {POOL_PER_BACKEND * len(self.backends)};
    keepalive_requests 1000000;
    keepalive_timeout 60s;
  }}
  server {{
    {listen};
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      # Stream large responses through memory buffers instead of spilling them to a temp
      # file: the others never touch the disk either.
      proxy_max_temp_file_size 0;{cache_location}
    }}
  }}
}}
"""

    def _argv(self, conf: str) -> list[str]:
        return _nginx_argv(self.dir, conf)

    def _test_argv(self, conf: str) -> list[str]:
        return [shutil.which("nginx"), "-t", "-q", "-p", self.dir, "-c", conf,
                "-e", os.path.join(self.dir, "error.log")]

    def reload(self) -> None:
        # What an operator runs; it signals the master (SIGHUP) through the pid file.
        subprocess.run([shutil.which("nginx"), "-p", self.dir, "-c", self.conf, "-s", "reload"],
                       check=True, capture_output=True, timeout=10)


class HAProxy(Proxy):
    name, label = "haproxy", "HAProxy"

    def _write_config(self, tls: bool) -> str:
        return _write(os.path.join(self.dir, "haproxy.cfg"), self._config(tls))

    def cache_hit(self, headers: dict[str, str]) -> bool:
        return headers.get("x-cache-status") == "HIT"

    def _cache_config(self) -> tuple[str, str]:
        """The cache section and the backend's rules with the cache on. HAProxy stores no
        answer that has neither a validator nor an explicit lifetime (the backends' have
        neither), so answers from a server get Cache-Control max-age=CACHE_TTL_S before they
        are stored: its way of a default lifetime. Answers from the cache have no server,
        which is how they get X-Cache-Status: HIT."""
        if not self.cache:
            return "", ""
        section = f"""
cache hits
  total-max-size 16
  max-age {CACHE_TTL_S}
"""
        rules = f"""
  http-request cache-use hits
  http-response set-header Cache-Control max-age={CACHE_TTL_S} if {{ srv_id -m found }}
  http-response cache-store hits
  http-response set-header X-Cache-Status HIT if !{{ srv_id -m found }}"""
        return section, rules

    def _config(self, tls: bool) -> str:
        servers = "\n".join(f"  server b{i} 127.0.0.1:{p}" for i, p in enumerate(self.backends))
        bind = f"bind 127.0.0.1:{self.port}"
        if tls:
            bind += f" ssl crt {self.tls_files.combined} ssl-min-ver TLSv1.2 no-tls-tickets"
        # Each client connection may need one server connection too.
        maxconn = (self.fd_limit - 200) // 2
        cache_section, cache_rules = self._cache_config()
        return f"""
global
  nbthread 1
  maxconn {maxconn}
  pidfile {self.dir}/haproxy.pid
  # No session cache and no tickets (bind): every new TLS connection is a full handshake.
  tune.ssl.cachesize 0
  # Lets the master hand the listening sockets to the new worker on reload (seamless reload).
  stats socket {self.dir}/admin.sock mode 600 level admin expose-fd listeners

defaults
  mode http
  option http-keep-alive
  option forwardfor
  http-reuse always
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  timeout http-request 10s
  timeout http-keep-alive 60s
{cache_section}
frontend fe
  {bind}
  http-request set-header X-Forwarded-Proto {"https" if tls else "http"}
  default_backend app

backend app
  balance roundrobin
  default-server pool-max-conn {POOL_PER_BACKEND}{cache_rules}
{servers}
"""

    def _argv(self, conf: str) -> list[str]:
        # -W: master-worker mode, so SIGUSR2 to the master reloads (the master re-executes
        # itself, hence the absolute path).
        return [shutil.which("haproxy"), "-W", "-f", conf]

    def _test_argv(self, conf: str) -> list[str]:
        return [shutil.which("haproxy"), "-c", "-q", "-f", conf]

    def reload(self) -> None:
        os.kill(self.pid, signal.SIGUSR2)


class Direct:
    """Not a proxy: wrk straight to one backend, the ceiling for the 1 MiB scenario."""

    name, label = "direct", "direct"

    def __init__(self, backend_port: int):
        self.port = backend_port
        self.child = None

    def supports_tls(self) -> str | None:
        return "plain HTTP only"

    def start(self, tls: bool = False) -> None:
        pass

    def stop(self) -> None:
        pass
