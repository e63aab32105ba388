"""Instructions per keep-alive request: a Sluice binary under callgrind, serving an exact number
of requests from one keep-alive client to one backend.

Method. Each binary runs twice under `valgrind --tool=callgrind`, with the same config (one
worker, one backend) and the same client, which opens one connection and sends requests one at
a time, each after the previous answer:
  - the short run: WARMUP requests, then the client closes and Sluice gets SIGTERM;
  - the long run: WARMUP + N requests, then the same.
Callgrind counts every user-space instruction the process executes (Sluice, libuv, libc; not the
kernel), from start to exit. Both runs share start-up, config loading, the first connections to
the client and to the backend, the warm-up and the shutdown, so the difference of their totals
is what N more keep-alive requests cost: (Ir long - Ir short) / N. Time-driven work, such as the
health checker's sweep every 250 ms, also differs between the runs, since the long one lasts
longer; with N of 10,000 or more it adds well under 1% to the figure.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import time

from . import procs
from .servers import _write
from .system import CpuLayout

WARMUP = 200   # requests in both runs: pools, buffers and lazy state are in place before N
READY_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 120.0
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: sluice-bench-callgrind\r\n\r\n"


def _config(port: int, backend: int) -> str:
    return json.dumps({
        "workers": 1,
        "listeners": [{"address": f"127.0.0.1:{port}"}],
        "upstreams": {"app": {"backends": [{"address": f"127.0.0.1:{backend}"}]}},
        "routes": [{"upstream": "app"}],
        "log": {"access": "off"},   # as in the throughput scenarios; (h) measures it on
    }, indent=2)


class KeepAliveClient:
    """One connection, one request at a time; each answer must be a 200 with a Content-Length."""

    def __init__(self, port: int, timeout_s: float = 30.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def requests(self, count: int) -> None:
        for _ in range(count):
            self.sock.sendall(REQUEST)
            self._answer()

    def _answer(self) -> None:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"unexpected answer: {head[:200]!r}")
        match = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.IGNORECASE)
        if not match:
            raise RuntimeError(f"answer without Content-Length: {head[:300]!r}")
        length = int(match.group(1))
        while len(self.buffer) < length:
            self._fill()
        self.buffer = self.buffer[length:]

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise RuntimeError("the proxy closed the keep-alive connection")
        self.buffer += data

    def close(self) -> None:
        self.sock.close()


def _wait_started(child: procs.Child, timeout_s: float) -> None:
    """Sluice logs "sluice started" once its worker listens; probing with requests instead would
    add a varying number of connections to the count."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with open(child.log_path, "rb") as f:
            if b"sluice started" in f.read():
                return
        if not child.alive():
            raise RuntimeError(f"{child.name} exited at start under valgrind\n{child.log_tail()}")
        time.sleep(0.1)
    raise RuntimeError(f"{child.name} did not start under valgrind within {timeout_s:.0f} s"
                       f"\n{child.log_tail()}")


def total_ir(path: str) -> int:
    """The "totals:" line of a callgrind output file (what valgrind's log calls Collected): the
    instructions executed; "summary:" in files without one."""
    with open(path) as f:
        text = f.read()
    for key in ("totals", "summary"):
        match = re.search(rf"^{key}:\s*(\d+)", text, re.MULTILINE)
        if match:
            return int(match.group(1))
    raise RuntimeError(f"no totals in {path}")


def run_once(name: str, binary: str, backend: int, requests: int, layout: CpuLayout,
             workdir: str) -> dict:
    """One callgrind run serving `requests` keep-alive requests; its instruction count."""
    os.makedirs(workdir, exist_ok=True)
    tag = f"{name}-{requests}"
    port = procs.free_ports(1)[0]
    conf = _write(os.path.join(workdir, f"{tag}.json"), _config(port, backend))
    out = os.path.join(workdir, f"callgrind.out.{tag}")
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
            f"--log-file={os.path.join(workdir, f'valgrind-{tag}.log')}", binary, "-c", conf]
    child = procs.spawn(f"callgrind-{tag}", argv, os.path.join(workdir, f"{tag}.log"),
                        cpus=layout.proxy)
    started = time.monotonic()
    try:
        _wait_started(child, READY_TIMEOUT_S)
        client = KeepAliveClient(port)
        try:
            client.requests(requests)
        finally:
            client.close()
        served_s = time.monotonic() - started
        # SIGTERM to sluice itself (taskset has exec'd valgrind, which runs sluice in its pid);
        # it drains and exits, and callgrind writes its file on the way out.
        os.kill(child.pid, signal.SIGTERM)
        child.popen.wait(timeout=EXIT_TIMEOUT_S)
    finally:
        child.stop()
    if child.popen.returncode != 0:
        raise RuntimeError(f"{name} under callgrind exited with {child.popen.returncode}"
                           f"\n{child.log_tail()}")
    return {"requests": requests, "ir": total_ir(out), "seconds": round(served_s, 1),
            "out_file": out}


def measure(name: str, binary: str, backend: int, n: int, layout: CpuLayout,
            workdir: str) -> dict:
    """Instructions per keep-alive request of `binary`: the short and the long run, and
    (Ir long - Ir short) / n."""
    short = run_once(name, binary, backend, WARMUP, layout, workdir)
    long = run_once(name, binary, backend, WARMUP + n, layout, workdir)
    return {"binary": binary, "requests": n, "warmup": WARMUP, "short": short, "long": long,
            "ir_per_request": (long["ir"] - short["ir"]) / n}
