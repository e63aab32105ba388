"""Child processes, /proc readers, free ports and readiness probes.

Every process the harness starts goes through `spawn`, which puts it in its own process group
and remembers it, so `stop_all` (run from atexit and from the signal handlers in bench/run) can
end each group by its id. Nothing is ever killed by name.
"""

from __future__ import annotations

import http.client
import os
import random
import signal
import socket
import ssl
import subprocess
import time

_children: list[Child] = []


class Child:
    """One started process (and, through its process group, everything it forks)."""

    def __init__(self, name: str, argv: list[str], log_path: str, stdin=subprocess.DEVNULL,
                 stdout=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "ab")
        # start_new_session: the child leads its own process group, so nginx and HAProxy
        # workers (and HAProxy workers left over from a reload) die with it.
        self.popen = subprocess.Popen(argv, stdin=stdin, stdout=stdout or self._log,
                                      stderr=self._log, start_new_session=True)
        self.pid = self.popen.pid
        _children.append(self)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace_s: float = 3.0) -> None:
        """SIGTERM to the group, SIGKILL to whatever is left after grace_s."""
        self._signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _group_alive(self.pid):
            self.popen.poll()
            time.sleep(0.02)
        self._signal_group(signal.SIGKILL)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()
        if self in _children:
            _children.remove(self)

    def log_tail(self, lines: int = 15) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
        except OSError:
            return ""

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def spawn(name: str, argv: list[str], log_path: str, cpus: list[int] | None = None,
          **kwargs) -> Child:
    """Starts argv, pinned with taskset to `cpus` when given."""
    if cpus:
        argv = ["taskset", "-c", ",".join(map(str, cpus))] + argv
    return Child(name, argv, log_path, **kwargs)


def stop_all() -> None:
    for child in list(reversed(_children)):
        child.stop(grace_s=1.0)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


# --------------------------------------------------------------------------- /proc readers

def process_tree(root: int) -> list[int]:
    """root and all its descendants (nginx and HAProxy masters fork their workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _read_stat(int(entry))
        if stat:
            children.setdefault(int(stat[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _read_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: [state, ppid, ...]."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    # The command name may contain spaces and parentheses; it ends at the last ')'.
    return text[text.rindex(")") + 2:].split()


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(root: int) -> float:
    """utime + stime of root and its descendants (all threads), in seconds."""
    ticks = 0
    for pid in process_tree(root):
        stat = _read_stat(pid)
        if stat:
            ticks += int(stat[11]) + int(stat[12])  # fields 14 and 15 of stat(5)
    return ticks / _CLK_TCK


def cpu_time(cpus: list[int]) -> dict:
    """Busy and softirq seconds so far of `cpus`, summed, from /proc/stat. Busy is user + nice +
    system + irq + softirq + steal: everything but idle and iowait, including kernel work (such
    as loopback packet processing in softirq) that no process's own stat is charged with."""
    wanted = {f"cpu{n}" for n in cpus}
    busy = softirq = 0
    with open("/proc/stat") as f:
        for line in f:
            fields = line.split()
            if fields and fields[0] in wanted:
                # user nice system idle iowait irq softirq steal ...
                ticks = [int(v) for v in fields[1:9]]
                busy += sum(ticks[:3]) + sum(ticks[5:8])
                softirq += ticks[6]
    return {"busy_s": busy / _CLK_TCK, "softirq_s": softirq / _CLK_TCK}


def rss_bytes(root: int) -> int:
    """Sum of VmRSS over root and its descendants."""
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


# --------------------------------------------------------------------------- ports and probes

def free_ports(count: int) -> list[int]:
    """`count` ports free on 127.0.0.1, drawn from 20000..29999: below the kernel's ephemeral
    range, so the thousands of client ports that wrk burns through never collide with them."""
    ports: list[int] = []
    for port in random.sample(range(20000, 30000), 400):
        if _port_free(port):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError("no free ports in 20000..29999")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def http_get(port: int, path: str = "/", tls: bool = False, timeout: float = 2.0) -> tuple[int, bytes]:
    status, _, body = http_exchange(port, path, tls, timeout)
    return status, body


def http_exchange(port: int, path: str = "/", tls: bool = False,
                  timeout: float = 2.0) -> tuple[int, dict[str, str], bytes]:
    """GET on a new connection: status, header fields (names in lower case), body."""
    if tls:
        context = ssl._create_unverified_context()
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        conn.close()


def wait_ready(child: Child, port: int, tls: bool = False, timeout_s: float = 10.0) -> None:
    """Waits until GET / through `port` answers 200: the process listens and reaches a backend."""
    deadline = time.monotonic() + timeout_s
    last_error = "no answer"
    while time.monotonic() < deadline:
        if not child.alive():
            tail = child.log_tail()
            last = tail.splitlines()[-1] if tail else "no output"
            raise RuntimeError(f"{child.name} exited at start with status "
                               f"{child.popen.returncode} ({last})\n{tail}")
        try:
            status, _ = http_get(port, tls=tls, timeout=1.0)
            if status == 200:
                return
            last_error = f"status {status}"
        except (OSError, http.client.HTTPException) as e:
            last_error = str(e)
        time.sleep(0.05)
    raise RuntimeError(f"{child.name} not ready on port {port} after {timeout_s}s ({last_error})"
                       f"\n{child.log_tail()}")
