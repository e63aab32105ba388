"""The proxy under test: the Sluice process wrapper, config builders, the sluice CLI, the
per-process workdir and cleanup, /proc measurements, log polling and assertions."""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from backends import Backend, _backends, ok
from wire import HOST, Client, Response

READY_TIMEOUT_S = 5.0

DEFAULT_TIMEOUTS = {
    "client_header_ms": 5000,
    "client_idle_ms": 10000,
    "upstream_connect_ms": 2000,
    "upstream_response_ms": 10000,
    "drain_ms": 1000,  # short, so stopping sluice at the end of a test is quick
}
DEFAULT_LIMITS = {"request_line_bytes": 8192, "header_bytes": 32768, "header_count": 100}


# --------------------------------------------------------------------------- session state

_session = {"binary": None, "workdir": None}
_proxies: list[Sluice] = []
_file_numbers = itertools.count(1)


def configure(binary: str) -> None:
    """Sets the sluice binary every test runs (conftest.py calls this with --sluice)."""
    _session["binary"] = os.path.abspath(binary)


def sluice_binary() -> str:
    binary = _session["binary"] or os.environ.get("SLUICE_BIN")
    if not binary:
        raise RuntimeError("no sluice binary configured: pass --sluice PATH to pytest "
                           "or set SLUICE_BIN")
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise RuntimeError(f"sluice binary missing or not executable: {binary}")
    return binary


def sanitized_binary() -> bool:
    """True when the sluice binary is built with AddressSanitizer, whose allocator keeps freed
    memory (quarantine, size classes) so that RSS says little about what the proxy holds."""
    with open(sluice_binary(), "rb") as f:
        return b"__asan_init" in f.read()


def created_workdir() -> str | None:
    """The running test's temporary folder, if one was made."""
    return _session["workdir"]


def end_workdir(keep: bool = False) -> str | None:
    """Deletes the running test's temporary folder (unless `keep`) and forgets it, so the next
    test makes its own. Returns its path, or None if none was made (conftest.py calls this
    after every test)."""
    path, _session["workdir"] = _session["workdir"], None
    if path and not keep:
        shutil.rmtree(path, ignore_errors=True)
    return path


def workdir() -> str:
    """A temporary folder for the running test's configs and logs."""
    if _session["workdir"] is None:
        _session["workdir"] = tempfile.mkdtemp(prefix="sluice-it-")
    return _session["workdir"]


def write_file(name: str, text: str) -> str:
    path = os.path.join(workdir(), name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def cleanup() -> None:
    """Kills every sluice and stops every backend the running test started."""
    for proxy in list(_proxies):
        proxy.kill()
    for backend in list(_backends):
        backend.stop()


def forget() -> None:
    """Drops the records of finished proxies and backends (between tests in one process)."""
    _proxies.clear()
    _backends.clear()


def failure_report(lines: int = 40) -> str:
    """The tail of every sluice log and every backend handler error, for a failed test."""
    parts = []
    for proxy in _proxies:
        status = describe_status(proxy.proc.returncode) if proxy.proc else "not started"
        parts.append(f"--- sluice log {proxy.log_path} ({status}), last {lines} lines ---")
        parts.append(proxy.log_tail(lines) or "(empty)")
    for backend in _backends:
        for error in backend.errors[:3]:
            parts.append(f"--- backend {backend.address} handler error ---\n{error}")
    return "\n".join(parts)


def describe_status(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit status {returncode}"


# --------------------------------------------------------------------------- config

def proxy_config(*backends, workers=2, upstream=None, timeouts=None, limits=None,
                 upstreams=None, routes=None) -> dict:
    """A complete config: `backends` form upstream "app" with one catch-all route, unless
    `upstreams` ({name: [backends]}) and `routes` are given. Sluice fills in the listener."""
    pools = upstreams if upstreams is not None else {"app": list(backends)}
    settings = {"keepalive": 64, "keepalive_timeout_ms": 60000, "retries": 1, **(upstream or {})}
    return {
        "workers": workers,
        "listeners": [{"address": f"{HOST}:0"}],
        "upstreams": {name: {"backends": [backend_entry(b) for b in members], **settings}
                      for name, members in pools.items()},
        "routes": routes if routes is not None else [{"upstream": next(iter(pools))}],
        "timeouts": {**DEFAULT_TIMEOUTS, **(timeouts or {})},
        "limits": {**DEFAULT_LIMITS, **(limits or {})},
    }


def backend_entry(backend) -> dict:
    """A config backend entry from a Backend, a ClosedPort, an address string or a dict."""
    if isinstance(backend, dict):
        return backend
    if isinstance(backend, str):
        return {"address": backend}
    return {"address": backend.address}


# --------------------------------------------------------------------------- the proxy

def free_port() -> int:
    """A port that was free a moment ago (bound to port 0, then released)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Sluice:
    """The proxy under test, running in the foreground with `config` and a listener on a free
    port. On exit it gets SIGTERM; if it had died on its own, the test fails. Its stdout and
    stderr both go to the log, unless separate_stdout: then stdout goes to its own file, or
    stdout_fd: then stdout is that descriptor (a pipe the test holds, say)."""

    host = HOST  # where its listener binds and the tests connect; "::1" for IPv6 tests

    def __init__(self, config: dict, *, config_flag: str = "-c", separate_stdout: bool = False,
                 stdout_fd: int | None = None):
        self.config = copy.deepcopy(config)
        self.config_flag = config_flag
        self.separate_stdout = separate_stdout
        self.stdout_fd = stdout_fd
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log_path = ""
        self.stdout_path = ""
        self.config_path = ""
        self._stopping = False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        problem = self.stop()
        if problem and exc_type is None:
            raise AssertionError(problem)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def start(self) -> Sluice:
        """Launches sluice and waits until it accepts; retries if the port was taken."""
        for attempt in range(3):
            self._launch()
            if self._wait_ready():
                return self
            log = self.log_tail(30)
            self.kill()
            if attempt == 2 or "in use" not in log.lower():
                raise RuntimeError(f"sluice did not accept on {self.address} within "
                                   f"{READY_TIMEOUT_S:.0f} s ({describe_status(self.proc.returncode)})"
                                   f"; log:\n{log}")
        return self

    def _launch(self) -> None:
        number = next(_file_numbers)
        self.port = free_port()
        # The listener's other settings (its "tls" object, say) stay; only the port is ours.
        first = (self.config.get("listeners") or [{}])[0]
        self.config["listeners"] = [{**first, "address": self.address}]
        self.config_path = write_file(f"sluice-{number}.json", json.dumps(self.config, indent=2))
        self.log_path = os.path.join(workdir(), f"sluice-{number}.log")
        self.stdout_path = self.log_path
        if self.separate_stdout:
            self.stdout_path = os.path.join(workdir(), f"sluice-{number}.stdout")
        with open(self.log_path, "wb") as log, \
                (open(self.stdout_path, "wb") if self.separate_stdout else log) as out:
            self.proc = subprocess.Popen(
                [sluice_binary(), self.config_flag, self.config_path],
                stdin=subprocess.DEVNULL, stdout=out if self.stdout_fd is None else self.stdout_fd,
                stderr=log)
        self._stopping = False
        if self not in _proxies:
            _proxies.append(self)

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(0.02)
        return False

    def stop(self) -> str | None:
        """SIGTERM and wait. Returns a description of the problem if sluice had already died."""
        if self.proc is None:
            return None
        if self.proc.poll() is not None and not self._stopping:
            self._stopping = True
            return f"sluice died during the test ({describe_status(self.proc.returncode)})"
        self.terminate()
        return None

    def send_signal(self, signum: int) -> None:
        self._stopping = self._stopping or signum in (signal.SIGTERM, signal.SIGINT)
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int | None:
        """The exit status, or None if sluice is still running after `timeout` seconds."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def terminate(self) -> int:
        """SIGTERM (drain), wait drain_ms + 5 s, then SIGKILL. Returns the exit status."""
        if self.proc.poll() is None:
            self.send_signal(signal.SIGTERM)
            drain_s = self.config.get("timeouts", {}).get("drain_ms", 30000) / 1000
            if self.wait(drain_s + 5) is None:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self._stopping = True
            self.proc.kill()
            self.proc.wait()

    def client(self, timeout: float = 5.0) -> Client:
        return Client(self.port, timeout)

    def get(self, target: str = "/", headers=(), *, timeout: float = 5.0, **kw) -> Response:
        """One GET on a fresh connection (closed afterwards)."""
        with self.client(timeout) as client:
            return client.exchange("GET", target, headers, **kw)

    def rss_bytes(self) -> int:
        return rss_bytes(self.pid)

    def log_text(self) -> str:
        return _read_text(self.log_path)

    def stdout_text(self) -> str:
        """What sluice wrote to stdout (with separate_stdout; else the log, stderr included)."""
        return _read_text(self.stdout_path)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


class CliResult:
    def __init__(self, returncode: int, output: str):
        self.returncode = returncode
        self.output = output

    def __repr__(self):
        return f"exit status {self.returncode}, output:\n{self.output}"


def run_cli(*args: str, timeout: float = 10.0) -> CliResult:
    """Runs `sluice ARGS` to completion; stdout and stderr together in .output."""
    try:
        done = subprocess.run([sluice_binary(), *args], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"`sluice {' '.join(args)}` still running after {timeout} s; "
                             f"output: {e.output!r}") from None
    return CliResult(done.returncode, done.stdout.decode("utf-8", "replace"))


# --------------------------------------------------------------------------- processes

def rss_bytes(pid: int) -> int:
    """Resident memory (VmRSS) of pid plus its child processes."""
    return sum(_vmrss(p) for p in [pid, *_child_pids(pid)])


def _vmrss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _child_pids(pid: int) -> list[int]:
    children = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                children += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return children


def raise_fd_limit(needed: int) -> int:
    """Raises this process's RLIMIT_NOFILE soft limit to the hard limit (children inherit it);
    fails the test if even that is below `needed`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if target < needed:
        raise AssertionError(f"needs {needed} file descriptors; hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


# --------------------------------------------------------------------------- assertions

def assert_status(response: Response, expected: int) -> None:
    assert response is not None, f"expected status {expected}, the connection closed instead"
    assert response.status == expected, \
        f"expected status {expected}, got {response.status}:\n{response.describe()}"


def assert_rejected_before_backend(status: int, *raw_requests: bytes, **config) -> None:
    """Each raw request, on its own connection, gets `status`, then the connection closes;
    the backend never receives a request."""
    with Backend(ok(), strict=False) as backend, Sluice(proxy_config(backend, **config)) as proxy:
        for raw in raw_requests:
            with proxy.client() as client:
                client.send(raw, tolerate_close=True)
                assert_status(client.read_response_or_close(), status)
                assert client.wait_closed(3.0), f"connection still open 3 s after the {status}"
        time.sleep(0.2)  # a request sluice wrongly forwarded would arrive by now
    assert not backend.requests, f"backend received a request:\n{backend.requests[0].describe()}"


# --------------------------------------------------------------------------- logs

def wait_for_log(proxy: Sluice, pattern: str, timeout: float, *, count: int = 1,
                 start: int = 0) -> list[re.Match] | None:
    """Waits until the log (from character `start` on) has `count` matches of the regular
    expression `pattern`; returns the matches, or None after `timeout` seconds."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        matches = list(regex.finditer(proxy.log_text(), start))
        if len(matches) >= count:
            return matches
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)


def bodies(proxy: Sluice, count: int, target: str = "/") -> list[str]:
    """The bodies of `count` GETs, each on a fresh connection; every one must be a 200."""
    out = []
    for i in range(count):
        response = proxy.get(f"{target}?n={i}")
        assert_status(response, 200)
        out.append(response.body.decode())
    return out
