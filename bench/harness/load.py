"""Load generators: wrk (throughput, latency, errors) and the idle-connection client."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time

from . import procs
from .idle_clients import CONCURRENT_OPENS as IDLE_CONCURRENCY  # noqa: F401 (for scenarios)
from .system import CpuLayout

HERE = os.path.dirname(os.path.abspath(__file__))
WRK_SCRIPT = os.path.join(HERE, "wrk_report.lua")
IDLE_CLIENT = os.path.join(HERE, "idle_clients.py")


def wrk_threads(layout: CpuLayout) -> int:
    """One wrk thread per load CPU: more threads than CPUs only adds context switches."""
    return max(1, len(layout.load))


class Wrk:
    """One wrk invocation, pinned to the load CPUs. start() + finish() let a scenario act while
    it runs (reloads); run() is both."""

    def __init__(self, layout: CpuLayout, log_path: str):
        self.layout = layout
        self.log_path = log_path
        self.threads = wrk_threads(layout)
        self.child: procs.Child | None = None
        self.seconds = 0

    def start(self, url: str, seconds: int, connections: int, close: bool = False,
              count_status: bool = False) -> None:
        argv = ["wrk", "-t", str(min(self.threads, connections)), "-c", str(connections),
                "-d", f"{seconds}s", "--latency", "--timeout", "5s", "-s", WRK_SCRIPT]
        if close:
            argv += ["-H", "Connection: close"]
        argv.append(url)
        if count_status:
            argv += ["--", "count-status"]
        self.seconds = seconds
        self.output = os.path.join(os.path.dirname(self.log_path), "wrk.out")
        self._out = open(self.output, "wb")
        self.child = procs.spawn("wrk", argv, self.log_path, cpus=self.layout.load,
                                 stdout=self._out)

    def finish(self) -> dict:
        """Waits for wrk (bounded) and returns its WRK_JSON line as a dict."""
        try:
            self.child.popen.wait(timeout=self.seconds + 30)
        finally:
            self.child.stop(grace_s=1.0)
            self._out.close()
        with open(self.output) as f:
            text = f.read()
        for line in text.splitlines():
            if line.startswith("WRK_JSON "):
                return json.loads(line[len("WRK_JSON "):])
        raise RuntimeError(f"wrk printed no summary:\n{text[-2000:]}\n{self.child.log_tail()}")

    def run(self, url: str, seconds: int, connections: int, **kwargs) -> dict:
        self.start(url, seconds, connections, **kwargs)
        return self.finish()


class Scraper:
    """Reads one page of a proxy every interval_s on a thread of its own, as a Prometheus server
    scrapes /metrics: the scenario's load beside wrk's. Counts the answers that were 200."""

    def __init__(self, port: int, path: str, interval_s: float):
        self.port, self.path, self.interval_s = port, path, interval_s
        self.scrapes = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                status, _ = procs.http_get(self.port, self.path, timeout=2.0)
                ok = status == 200
            except OSError:
                ok = False
            self.scrapes += ok
            self.failures += not ok


def open_idle_connections(layout: CpuLayout, port: int, count: int, log_path: str,
                          timeout_s: float = 120.0) -> tuple[procs.Child, int, int]:
    """Starts the idle client and waits until it holds `count` connections (or gave up on some).
    Returns the child (stop it when done measuring), connections opened, connections failed."""
    child = procs.spawn("idle-clients", [sys.executable, IDLE_CLIENT, str(port), str(count)],
                        log_path, cpus=layout.load, stdout=subprocess.PIPE)
    deadline = time.monotonic() + timeout_s
    line = b""
    while time.monotonic() < deadline and not line.endswith(b"\n"):
        ready, _, _ = select.select([child.popen.stdout], [], [], 0.5)
        if ready:
            chunk = os.read(child.popen.stdout.fileno(), 256)
            if not chunk:
                break
            line += chunk
    words = line.split()
    if len(words) != 3 or words[0] != b"ready":
        child.stop()
        raise RuntimeError(f"idle client did not get ready: {line!r}\n{child.log_tail()}")
    return child, int(words[1]), int(words[2])
