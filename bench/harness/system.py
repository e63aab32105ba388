"""The machine and its tools: installing what is missing, versions, CPU layout, fd limits."""

from __future__ import annotations

import os
import platform
import re
import resource
import shutil
import subprocess
from dataclasses import dataclass

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_SLUICE = os.path.join(REPO, "build", "core", "sluice")

# Tools the harness runs, and the Debian package scripts/bootstrap.sh --bench installs for each.
TOOLS = {"nginx": "nginx-light", "haproxy": "haproxy", "wrk": "wrk", "openssl": "openssl",
         "taskset": "util-linux", "valgrind": "valgrind"}


def log(message: str) -> None:
    print(f"bench: {message}", flush=True)


def needed_tools(candidates: list[str], scenarios: list, layout: CpuLayout,
                 callgrind: bool = False) -> list[str]:
    """The tools this run will start: nginx always (the backends), the rest as chosen."""
    tools = ["nginx"]
    if callgrind:
        tools.append("valgrind")
    if "haproxy" in candidates:
        tools.append("haproxy")
    if any(s.uses_wrk for s in scenarios):
        tools.append("wrk")
    if any(s.tls for s in scenarios):
        tools.append("openssl")   # the run's certificate
    if layout.pinned:
        tools.append("taskset")
    return tools


def ensure_tools(tools: list[str], install: bool) -> None:
    """Stops with a clear error when a needed tool is missing. With `install`, first runs
    scripts/bootstrap.sh --bench (it is idempotent, but it needs dpkg and root, and a machine
    that already has everything should not need either)."""
    missing = [tool for tool in tools if not shutil.which(tool)]
    if not missing:
        return
    if install:
        log(f"missing {', '.join(missing)}: running scripts/bootstrap.sh --bench")
        try:
            subprocess.run(["bash", os.path.join(REPO, "scripts", "bootstrap.sh"), "--bench"],
                           check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            log(f"scripts/bootstrap.sh --bench failed: {e}")
        missing = [tool for tool in tools if not shutil.which(tool)]
        if not missing:
            return
    names = ", ".join(f"{tool} (Debian package {TOOLS[tool]})" for tool in missing)
    raise SystemExit(f"bench: missing tool(s) on PATH: {names}"
                     + ("" if install else "; install them, or run without --no-install"))


def ensure_binary(binary: str) -> None:
    """A binary given on the command line (--baseline) must be there: it is never built."""
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        raise SystemExit(f"bench: {binary} is not an executable file")


def ensure_sluice(binary: str) -> None:
    """Builds Sluice only when the binary is missing; a present binary is used as it is."""
    if os.path.exists(binary):
        return
    if binary != DEFAULT_SLUICE:
        raise SystemExit(f"bench: {binary} does not exist")
    log("build/core/sluice is missing: building it (Release)")
    subprocess.run(["cmake", "-S", ".", "-B", "build", "-DCMAKE_BUILD_TYPE=Release"],
                   cwd=REPO, check=True)
    subprocess.run(["cmake", "--build", "build", "--target", "sluice"], cwd=REPO, check=True)


def raise_fd_limit() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit; children (proxies, wrk) inherit it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@dataclass
class CpuLayout:
    """Which CPUs run what. With one CPU nothing is pinned (and the report says so)."""
    proxy: list[int]
    load: list[int]       # wrk and the idle-connection client
    backends: list[int]   # the nginx backend farm
    cpus: int = 1         # CPUs this run may use (its affinity at start), pinned or not

    @property
    def pinned(self) -> bool:
        return bool(self.proxy)

    def describe(self) -> str:
        if not self.pinned:
            return f"not pinned ({self.cpus} CPU{'s' if self.cpus > 1 else ''})"
        return (f"proxy on CPU {_cpus(self.proxy)}, load generator on CPU {_cpus(self.load)}, "
                f"backends on CPU {_cpus(self.backends)}")


def _cpus(cpus: list[int]) -> str:
    return ",".join(map(str, cpus))


def cpu_layout(pin: bool = True) -> CpuLayout:
    """Proxy alone on the second CPU. On 2 CPUs, wrk and the backends share the first; with 3 or
    more, the backends keep the first and wrk gets up to 4 of the rest, so the load generator
    and the backends never starve the proxy and the proxy never competes with them."""
    cpus = sorted(os.sched_getaffinity(0))
    if not pin or len(cpus) < 2:
        return CpuLayout([], [], [], len(cpus))
    if len(cpus) == 2:
        return CpuLayout([cpus[1]], [cpus[0]], [cpus[0]], 2)
    return CpuLayout([cpus[1]], cpus[2:6], [cpus[0]], len(cpus))


def pin_self(layout: CpuLayout) -> None:
    """Keeps the harness itself (and what it starts unpinned: nginx -s reload, probes) off the
    proxy's CPU, on the load CPUs."""
    if layout.pinned:
        os.sched_setaffinity(0, layout.load)


def machine_info(layout: CpuLayout) -> dict:
    return {"cpu_model": _cpu_model(), "cores": os.cpu_count(), "usable_cpus": layout.cpus,
            "kernel": platform.release()}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions(sluice: str, baseline: str | None = None) -> dict:
    found = {
        "sluice": _version([sluice, "--version"], r"sluice\s+(\S+)"),
        "nginx": _version(["nginx", "-v"], r"nginx/(\S+)"),
        "haproxy": _version(["haproxy", "-v"], r"version\s+(\S+)"),
        "wrk": _version(["wrk", "-v"], r"wrk\s+(\S+)"),
        "openssl": _version(["openssl", "version"], r"OpenSSL\s+(\S+)"),
    }
    if baseline:
        found["baseline"] = _version([baseline, "--version"], r"sluice\s+(\S+)")
    return found


def _version(argv: list[str], pattern: str) -> str:
    """First match of pattern in the tool's output (nginx prints to stderr, wrk exits 1)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    match = re.search(pattern, done.stdout + done.stderr)
    return match.group(1) if match else "unknown"
