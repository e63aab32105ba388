"""The scenarios: what each one runs against one candidate and which numbers it returns.

Each measurement starts a fresh proxy process and stops it afterwards, so no scenario inherits
another's pools, caches or heap growth (that matters most for the memory scenario).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable

from . import load, procs


@dataclass
class Settings:
    rounds: int
    duration: int            # seconds per measurement
    warmup: int              # seconds of unmeasured load before each throughput measurement
    connections: int         # wrk connections, small responses
    large_connections: int   # wrk connections, 1 MiB responses
    idle_connections: int
    reloads: int
    min_reload_duration: int = 5   # spreads reloads at least 0.5 s apart, see measure_reloads


@dataclass
class Context:
    settings: Settings
    layout: object
    logdir: str
    backends: object = None   # servers.Backends: counts what reaches the farm (cache_hit)


@dataclass
class Metric:
    key: str
    label: str
    higher_is_better: bool
    digits: int = 0
    aggregate: str = "median"   # or "sum": rare events (errors) are best read over all rounds
    compare: bool = True        # False for counts, where Sluice ÷ peer means nothing (0 ÷ 493)
    show: bool = True           # False: in the JSON summary only, not in the Markdown table


@dataclass
class Scenario:
    key: str
    letter: str
    title: str
    metrics: list[Metric]
    measure: Callable[[Context, object], dict]
    tls: bool = False
    with_direct: bool = False        # also measure wrk straight to a backend
    uses_wrk: bool = True
    sluice_only: bool = False        # measures something of Sluice's own; n/a for the peers
    cache: bool = False              # each proxy answers from its cache (capability probe)


# --------------------------------------------------------------------------- measurements

def _url(proxy, path: str, tls: bool) -> str:
    return f"{'https' if tls else 'http'}://127.0.0.1:{proxy.port}{path}"


def _wrk(ctx: Context, name: str) -> load.Wrk:
    return load.Wrk(ctx.layout, os.path.join(ctx.logdir, f"wrk-{name}.log"))


def _proxy_cpu_start(ctx: Context) -> dict | None:
    return procs.cpu_time(ctx.layout.proxy) if ctx.layout.pinned else None


def _proxy_cpu_busy(ctx: Context, before: dict | None) -> dict:
    """Busy and softirq seconds of the proxy's CPU since _proxy_cpu_start, from /proc/stat: the
    kernel's loopback work can land there without being charged to the proxy's own stat."""
    if before is None:
        return {}
    after = procs.cpu_time(ctx.layout.proxy)
    return {"proxy_cpu_busy_s": round(after["busy_s"] - before["busy_s"], 3),
            "proxy_cpu_softirq_s": round(after["softirq_s"] - before["softirq_s"], 3)}


def _throughput(ctx: Context, proxy, path: str, connections: int, close: bool = False,
                tls: bool = False, scraper: load.Scraper | None = None,
                hits: CacheHits | None = None) -> dict:
    """Warm up, then one measured wrk run; proxy CPU time (the process's and its CPU's busy
    time) is read around the measured run, while `scraper` (if any) reads a page every second;
    `hits` (if any) checks that the run is served from the proxy's cache."""
    s = ctx.settings
    proxy.start(tls=tls)
    try:
        url = _url(proxy, path, tls)
        wrk = _wrk(ctx, proxy.name)
        if s.warmup:
            wrk.run(url, s.warmup, connections, close=close)
        if hits:
            hits.start()
        if scraper:
            scraper.start()
        cpu_before = procs.cpu_seconds(proxy.pid) if proxy.child else None
        busy_before = _proxy_cpu_start(ctx)
        result = wrk.run(url, s.duration, connections, close=close)
        busy = _proxy_cpu_busy(ctx, busy_before)
        cpu_s = procs.cpu_seconds(proxy.pid) - cpu_before if proxy.child else None
        served = hits.finish(result["requests"]) if hits else {}
    finally:
        if scraper:
            scraper.stop()
        proxy.stop()
    metrics = {**_metrics_from_wrk(result, cpu_s), **busy, **served}
    if cpu_s and busy.get("proxy_cpu_busy_s"):   # a proxy ran (not direct)
        metrics["req_per_proxy_cpu_busy_s"] = result["requests"] / busy["proxy_cpu_busy_s"]
    return metrics


def _metrics_from_wrk(result: dict, cpu_s: float | None) -> dict:
    seconds = result["duration_us"] / 1e6
    metrics = {
        "rps": result["requests"] / seconds,
        "mbps": result["bytes"] / seconds / 1e6,
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "socket_errors": result["connect_errors"] + result["read_errors"]
                         + result["write_errors"] + result["timeouts"],
        "wrk": result,
    }
    if cpu_s:   # None without a proxy process; 0 only if the run was too short to register
        metrics["cpu_s"] = cpu_s
        metrics["req_per_cpu_s"] = result["requests"] / cpu_s
        metrics["mb_per_cpu_s"] = result["bytes"] / 1e6 / cpu_s
    return metrics


def measure_keepalive(ctx: Context, proxy) -> dict:
    return _throughput(ctx, proxy, "/", ctx.settings.connections)


def measure_close(ctx: Context, proxy) -> dict:
    return _throughput(ctx, proxy, "/", ctx.settings.connections, close=True)


def measure_observed(ctx: Context, proxy) -> dict:
    """Keep-alive as in measure_keepalive, with the access log written to a file and /metrics
    scraped every second: what an operator runs in production."""
    proxy.admin_port = procs.free_ports(1)[0]
    scraper = load.Scraper(proxy.admin_port, "/metrics", interval_s=1.0)
    try:
        if os.path.exists(proxy.access_log):
            os.remove(proxy.access_log)
        metrics = _throughput(ctx, proxy, "/", ctx.settings.connections, scraper=scraper)
        metrics["scrapes"] = scraper.scrapes
        metrics["scrape_failures"] = scraper.failures
        metrics["access_log_mb"] = os.path.getsize(proxy.access_log) / 1e6
    finally:
        proxy.admin_port = None
    if scraper.failures or not scraper.scrapes:
        raise RuntimeError(f"/metrics: {scraper.failures} of {scraper.scrapes + scraper.failures}"
                           " scrapes failed")
    return metrics


CACHE_WARMING = 3       # requests that fill the cache before the checks
CACHE_CHECKS = 3        # requests just before the measured run that must all be hits
MAX_MISS_SHARE = 0.01   # of the measured requests that may reach the backends


class CacheHits:
    """Makes a cache scenario fail loudly instead of measuring misses: before the measured run
    the proxy's cache is warmed and CACHE_CHECKS answers must say they are hits (each proxy's
    cache_hit reads its own header field); after it, the backends' own request count must show
    that at most MAX_MISS_SHARE of the measured requests got past the cache."""

    def __init__(self, ctx: Context, proxy, path: str):
        self.ctx, self.proxy, self.path = ctx, proxy, path
        self.before: int | None = None

    def start(self) -> None:
        for _ in range(CACHE_WARMING):
            procs.http_get(self.proxy.port, self.path)
        for i in range(CACHE_CHECKS):
            status, headers, _ = procs.http_exchange(self.proxy.port, self.path)
            if status != 200 or not self.proxy.cache_hit(headers):
                raise RuntimeError(f"answer {i + 1} of {CACHE_CHECKS} after warming is not a "
                                   f"cache hit: status {status}, header fields {headers}")
        if self.ctx.backends:
            self.before = self.ctx.backends.requests_served()

    def finish(self, requests: int) -> dict:
        if self.before is None:
            return {}
        # Less the count's own query, which the farm counts as it answers it.
        reached = self.ctx.backends.requests_served() - self.before - 1
        if requests <= 0 or reached > MAX_MISS_SHARE * requests:
            raise RuntimeError(f"{reached} of the {requests} measured requests reached the "
                               "backends: the cache did not answer them")
        return {"backend_requests": reached, "hit_share": 1 - reached / requests}


def measure_cache_hit(ctx: Context, proxy) -> dict:
    """Keep-alive as in measure_keepalive, with the proxy's cache on and warm: every measured
    answer comes from the cache, none from a backend."""
    proxy.cache = True
    try:
        return _throughput(ctx, proxy, "/", ctx.settings.connections,
                           hits=CacheHits(ctx, proxy, "/"))
    finally:
        proxy.cache = False


def measure_large(ctx: Context, proxy) -> dict:
    return _throughput(ctx, proxy, "/1m", ctx.settings.large_connections)


def measure_tls_keepalive(ctx: Context, proxy) -> dict:
    return _throughput(ctx, proxy, "/", ctx.settings.connections, tls=True)


def measure_tls_handshakes(ctx: Context, proxy) -> dict:
    # wrk reuses its SSL objects across reconnects and would resume sessions; the proxies are
    # configured without session cache and tickets, so every connection is a full handshake.
    return _throughput(ctx, proxy, "/", ctx.settings.connections, close=True, tls=True)


def measure_idle_memory(ctx: Context, proxy) -> dict:
    """RSS growth of the proxy while the idle client holds N answered keep-alive connections."""
    count = ctx.settings.idle_connections
    warmup = min(count, load.IDLE_CONCURRENCY)
    proxy.start()
    try:
        warmup_failed = _warm_up_pools(ctx, proxy, warmup)
        rss_before = procs.rss_bytes(proxy.pid)
        client, opened, failed = load.open_idle_connections(
            ctx.layout, proxy.port, count, os.path.join(ctx.logdir, "idle-clients.log"))
        try:
            time.sleep(0.5)   # let the proxy finish whatever the last answers left to do
            rss_after = procs.rss_bytes(proxy.pid)
        finally:
            client.stop()
    finally:
        proxy.stop()
    if not opened:
        raise RuntimeError(f"no idle connection could be opened ({failed} failed)")
    return {
        "kib_per_conn": (rss_after - rss_before) / opened / 1024,
        "opened": opened,
        "failed": failed,
        "warmup_connections": warmup,
        "warmup_failed": warmup_failed,
        "rss_before_mib": rss_before / (1 << 20),
        "rss_after_mib": rss_after / (1 << 20),
    }


def _warm_up_pools(ctx: Context, proxy, connections: int) -> int:
    """The idle client keeps IDLE_CONCURRENCY requests in flight, so the proxy's upstream pools
    grow to that many connections during the measurement. The same client, opening that many
    connections once and closing them, grows the pools (and lazily initialised state) first, so
    that growth is not counted as per-connection memory. Returns the connections that failed."""
    client, _, failed = load.open_idle_connections(
        ctx.layout, proxy.port, connections, os.path.join(ctx.logdir, "idle-warmup.log"))
    client.stop()
    time.sleep(0.3)   # let the proxy close the warm-up connections
    return failed


def measure_reloads(ctx: Context, proxy) -> dict:
    """wrk on keep-alive for the duration while the proxy is reloaded N times, evenly spread.
    The duration has a floor: reloads packed closer than ~0.5 s would test signal races in the
    reload machinery (HAProxy's master re-executes itself) rather than reloads under load."""
    s = ctx.settings
    seconds = max(s.duration, s.min_reload_duration)
    proxy.start()
    try:
        wrk = _wrk(ctx, proxy.name)
        busy_before = _proxy_cpu_start(ctx)
        wrk.start(_url(proxy, "/", False), seconds, s.connections, count_status=True)
        started = time.monotonic()
        for i in range(s.reloads):
            _sleep_until(started + (i + 0.5) * seconds / s.reloads)
            proxy.reload()
        result = wrk.finish()
        busy = _proxy_cpu_busy(ctx, busy_before)
        survived = proxy.child.alive()
    finally:
        proxy.stop()
    metrics = {**_metrics_from_wrk(result, None), **busy}
    metrics["errors"] = metrics["socket_errors"] + result["non2xx"]
    metrics["non2xx"] = result["non2xx"]
    metrics["proxy_survived"] = survived
    return metrics


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


# --------------------------------------------------------------------------- the list

RPS = Metric("rps", "req/s", True)
P50 = Metric("p50_ms", "p50 latency, ms", False, 2)
P99 = Metric("p99_ms", "p99 latency, ms", False, 2)
PER_CPU = Metric("req_per_cpu_s", "requests per proxy CPU-second", True)
# Requests per busy second of the proxy's pinned CPU (/proc/stat, softirq included): JSON only.
PER_BUSY = Metric("req_per_proxy_cpu_busy_s", "requests per busy second of the proxy's CPU",
                  True, show=False)

SCENARIOS = [
    Scenario("keepalive", "a", "keep-alive, 128-byte responses",
             [RPS, P50, P99, PER_CPU, PER_BUSY], measure_keepalive),
    Scenario("close", "b", "new connection per request, 128-byte responses",
             [RPS, P50, P99, PER_CPU, PER_BUSY], measure_close),
    Scenario("large", "c", "keep-alive, 1 MiB responses",
             [Metric("mbps", "MB/s", True), Metric("share_of_direct", "share of direct MB/s", True, 2),
              Metric("mb_per_cpu_s", "MB per proxy CPU-second", True), P99],
             measure_large, with_direct=True),
    Scenario("tls_keepalive", "d", "TLS keep-alive, 128-byte responses",
             [RPS, P50, P99, PER_CPU, PER_BUSY], measure_tls_keepalive, tls=True),
    Scenario("tls_handshakes", "e", "TLS, new connection (full handshake) per request",
             [Metric("rps", "handshakes/s", True), P99,
              Metric("req_per_cpu_s", "handshakes per proxy CPU-second", True), PER_BUSY],
             measure_tls_handshakes, tls=True),
    Scenario("idle_memory", "f", "memory per idle keep-alive client connection",
             [Metric("kib_per_conn", "RSS growth per connection, KiB", False, 1),
              Metric("opened", "connections held", True, compare=False)], measure_idle_memory,
             uses_wrk=False),
    Scenario("reload", "g", "reloads under keep-alive load",
             [Metric("errors", "errors per run (non-2xx + socket)", False, compare=False),
              Metric("errors", "errors, all rounds", False, aggregate="sum", compare=False),
              Metric("rps", "req/s during reloads", True)], measure_reloads),
    Scenario("observed", "h",
             "keep-alive, 128 B, access log to a file and /metrics scraped every second",
             [RPS, P99, PER_CPU, Metric("access_log_mb", "access log written, MB", True, 0,
                                        compare=False)],
             measure_observed, sluice_only=True),
    Scenario("cache_hit", "i", "keep-alive, 128 B, every answer a hit in the proxy's cache",
             [RPS, P50, P99, PER_CPU, PER_BUSY,
              Metric("hit_share", "share of requests answered by the cache", True, 4,
                     compare=False, show=False)],
             measure_cache_hit, cache=True),
]

BY_NAME = {s.key: s for s in SCENARIOS} | {s.letter: s for s in SCENARIOS}
