"""Sluice's performance targets, each checked against this run: met, not met or n/a.

A target compares Sluice with a peer measured in the same run (the ratio of the medians, as in
the table) or holds one of Sluice's own numbers to a limit. Requests are counted per proxy
CPU-second unless a target says otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Below this many CPUs the direct path (wrk and the backend, without the proxy's CPU) is not a
# fair ceiling for proxied runs, which also use the proxy's CPU.
FAIR_DIRECT_CPUS = 4
_LABELS = {"sluice": "Sluice", "baseline": "baseline", "nginx": "nginx", "haproxy": "HAProxy"}


@dataclass
class Target:
    text: str
    scenario: str
    metric: str
    threshold: float
    peer: str | None = None     # compare Sluice ÷ peer; None: Sluice's own value
    at_least: bool = True       # met when measured >= threshold (else <=)
    aggregate: str = "median"   # which summary row of the metric ("sum" for errors)
    unit: str = "×"
    versus: str | None = None   # compare with Sluice's own value in this scenario instead


TARGETS = [
    Target("keep-alive, 128 B: requests per proxy CPU-second ≥ 1.3× nginx",
           "keepalive", "req_per_cpu_s", 1.3, "nginx"),
    Target("keep-alive, 128 B: requests per proxy CPU-second ≥ 1.3× HAProxy",
           "keepalive", "req_per_cpu_s", 1.3, "haproxy"),
    Target("keep-alive, 128 B: p99 latency no worse than nginx's (Sluice ÷ nginx ≤ 1)",
           "keepalive", "p99_ms", 1.0, "nginx", at_least=False),
    Target("new connection per request: requests per proxy CPU-second ≥ 1.2× nginx",
           "close", "req_per_cpu_s", 1.2, "nginx"),
    Target("1 MiB responses: MB/s ≥ 0.9× the direct path's", "large", "share_of_direct", 0.9),
    Target("TLS handshakes per proxy CPU-second ≥ nginx", "tls_handshakes", "req_per_cpu_s",
           1.0, "nginx"),
    Target("TLS keep-alive: requests per proxy CPU-second ≥ 1.2× nginx",
           "tls_keepalive", "req_per_cpu_s", 1.2, "nginx"),
    Target("idle client connection: ≤ 2 KiB RSS each", "idle_memory", "kib_per_conn", 2.0,
           at_least=False, unit=" KiB"),
    Target("reloads: zero errors (non-2xx + socket, all rounds)", "reload", "errors", 0,
           at_least=False, aggregate="sum", unit=""),
    Target("access log to a file + /metrics every second: requests per proxy CPU-second "
           "≥ 0.95× Sluice's keep-alive figure with both off", "observed", "req_per_cpu_s", 0.95,
           versus="keepalive"),
    Target("cache hits, 128 B: requests per proxy CPU-second ≥ 1.5× nginx's cache hits",
           "cache_hit", "req_per_cpu_s", 1.5, "nginx"),
    Target("cache hits, 128 B: requests per proxy CPU-second ≥ 1.5× Sluice's uncached "
           "keep-alive figure", "cache_hit", "req_per_cpu_s", 1.5, versus="keepalive"),
]


def check(summary: dict, results, meta: dict) -> list[dict]:
    """One entry per target: the target, what this run measured and its status."""
    return [_check_one(target, summary, results, meta) for target in TARGETS]


def _check_one(target: Target, summary: dict, results, meta: dict) -> dict:
    entry = {**asdict(target), "measured": None, "status": "n/a", "why": None}
    measured, why = _measured(target, summary, results)
    entry["measured"] = measured
    if measured is None:
        entry["why"] = why
        return entry
    met = measured >= target.threshold if target.at_least else measured <= target.threshold
    entry["status"] = "met" if met else "not met"
    if why:   # measured, but a run failed or the proxy died: that fails a zero-errors target
        entry["status"], entry["why"] = "not met", why
    cpus = meta["machine"]["usable_cpus"]
    if target.metric == "share_of_direct" and cpus < FAIR_DIRECT_CPUS:
        entry["status"] = f"not assessable on {cpus} CPU{'s' if cpus != 1 else ''}"
        entry["why"] = direct_note(meta)
    return entry


def _measured(target: Target, summary: dict, results) -> tuple[float | None, str | None]:
    """(value, None), (None, why it is n/a), or for "sum" targets (value, why it fails)."""
    scenario = summary.get(target.scenario)
    if scenario is None:
        return None, "scenario not run"
    na = results.na.get(target.scenario, {})
    for who in ("sluice", target.peer):
        if who in na:
            return None, f"{_LABELS[who]} not run, see the notes"
    row = next((r for r in scenario["metrics"]
                if r["key"] == target.metric and r["aggregate"] == target.aggregate), None)
    sluice = row["values"].get("sluice") if row else None
    if sluice is None:
        return None, "no Sluice measurement"
    if target.versus:
        return _versus(target, summary, sluice["value"])
    if target.peer is None:
        return sluice["value"], _failed_runs(target, results)
    ratio = row["ratios"].get(target.peer)
    return (ratio, None) if ratio is not None else (None, f"no {target.peer} measurement")


def _versus(target: Target, summary: dict, value: float) -> tuple[float | None, str | None]:
    """Sluice's value here ÷ Sluice's value for the same metric in target.versus."""
    other = summary.get(target.versus)
    if other is None:
        return None, f"scenario {target.versus} not run"
    row = next((r for r in other["metrics"]
                if r["key"] == target.metric and r["aggregate"] == target.aggregate), None)
    base = row["values"].get("sluice") if row else None
    if not base or not base["value"]:
        return None, f"no Sluice measurement in {target.versus}"
    return value / base["value"], None


def _failed_runs(target: Target, results) -> str | None:
    """For targets on rare events (errors summed over rounds): a Sluice run that failed or
    left the proxy dead cannot count as error-free."""
    if target.aggregate != "sum":
        return None
    runs = results.runs.get(target.scenario, {}).get("sluice", [])
    bad = sum(1 for r in runs if "error" in r or r.get("proxy_survived") is False)
    return f"{bad} Sluice run(s) failed or ended without the proxy" if bad else None


def direct_note(meta: dict) -> str | None:
    """Why the direct path is no fair ceiling on this machine, or None when it is."""
    cpus = meta["machine"]["usable_cpus"]
    if cpus >= FAIR_DIRECT_CPUS:
        return None
    layout = meta["layout"]
    if not layout["proxy"]:
        return (f"on {cpus} CPU(s), unpinned, the proxied runs take CPU time that the direct path "
                "leaves to wrk and the backend, so direct is a reference, not a fair ceiling")
    load, backends = ",".join(map(str, layout["load"])), ",".join(map(str, layout["backends"]))
    where = (f"wrk and the backend on CPU {load}" if load == backends
             else f"wrk on CPU {load}, the backend on CPU {backends}")
    return (f"on {cpus} CPUs the direct path ({where}) is not a fair ceiling for the proxied "
            f"runs, which also use CPU {','.join(map(str, layout['proxy']))} (the proxy's): "
            "share of direct is a reference only, and the 1 MiB target is not assessable")


def format_measured(entry: dict) -> str:
    value = entry["measured"]
    if value is None:
        return "—"
    digits = 0 if entry["unit"] == "" else (1 if entry["unit"] == " KiB" else 2)
    return f"{value:,.{digits}f}{entry['unit']}"
