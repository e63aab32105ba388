"""Turns per-round measurements into medians, ratios, a Markdown table and a JSON document."""

from __future__ import annotations

import json
import statistics

from .scenarios import Metric, Scenario
from .targets import direct_note, format_measured

PEERS = ["baseline", "nginx", "haproxy"]   # each gets a ratio column Sluice ÷ peer
LABELS = {"sluice": "Sluice", "baseline": "baseline", "nginx": "nginx", "haproxy": "HAProxy",
          "direct": "direct"}


class Results:
    """runs[scenario][candidate] is a list with one entry per round: the measured metrics, or
    {"error": "..."}; na[scenario][candidate] says why a candidate was not run at all;
    callgrind[candidate] is harness/callgrind.measure's result for each Sluice binary."""

    def __init__(self, candidates: list[str]):
        self.candidates = candidates
        self.runs: dict[str, dict[str, list[dict]]] = {}
        self.na: dict[str, dict[str, str]] = {}
        self.callgrind: dict[str, dict] = {}

    def add(self, scenario: str, candidate: str, run: dict) -> None:
        self.runs.setdefault(scenario, {}).setdefault(candidate, []).append(run)

    def mark_na(self, scenario: str, candidate: str, reason: str) -> None:
        self.na.setdefault(scenario, {})[candidate] = reason

    def add_share_of_direct(self, scenario: str) -> None:
        """MB/s of each proxy divided by the direct MB/s of the same round (pairing by round
        cancels slow drifts of the machine)."""
        by_candidate = self.runs.get(scenario, {})
        direct = by_candidate.get("direct", [])
        for candidate, runs in by_candidate.items():
            for run, base in zip(runs, direct):
                if "mbps" in run and base.get("mbps"):
                    run["share_of_direct"] = run["mbps"] / base["mbps"]


def aggregate(runs: list[dict], metric: Metric) -> dict | None:
    values = [r[metric.key] for r in runs if isinstance(r.get(metric.key), (int, float))]
    if not values:
        return None
    center = sum(values) if metric.aggregate == "sum" else statistics.median(values)
    spread = (max(values) - min(values)) / 2 / center if center and len(values) > 1 else None
    return {"value": center, "spread": spread if metric.aggregate == "median" else None,
            "rounds": values}


def summarize(results: Results, scenarios: list[Scenario]) -> dict:
    """{scenario: {"title", "metrics": [{"key", "label", "aggregate", "higher_is_better",
    "values": {candidate: aggregate}, "ratios": {peer: sluice/peer}}]}}"""
    summary = {}
    for scenario in scenarios:
        runs = results.runs.get(scenario.key, {})
        rows = []
        for metric in scenario.metrics:
            values = {c: aggregate(r, metric) for c, r in runs.items()}
            rows.append({"key": metric.key, "label": metric.label, "aggregate": metric.aggregate,
                         "higher_is_better": metric.higher_is_better, "digits": metric.digits,
                         "show": metric.show, "values": values,
                         "ratios": _ratios(values) if metric.compare else {}})
        summary[scenario.key] = {"letter": scenario.letter, "title": scenario.title, "metrics": rows}
    return summary


def _ratios(values: dict) -> dict:
    sluice = values.get("sluice")
    ratios = {}
    for peer in PEERS:
        other = values.get(peer)
        if sluice and other and other["value"]:
            ratios[peer] = sluice["value"] / other["value"]
    return ratios


# --------------------------------------------------------------------------- Markdown

def markdown(summary: dict, results: Results, meta: dict, targets: list[dict]) -> str:
    lines = _header(meta, bool(summary))
    if summary:
        lines += _table(summary, results, meta)
        lines += _targets(targets, meta)
    if results.callgrind:
        lines += _callgrind(results.callgrind)
    return "\n".join(lines) + "\n"


def _table(summary: dict, results: Results, meta: dict) -> list[str]:
    candidates = [c for c in ["sluice", "baseline", "nginx", "haproxy", "direct"]
                  if c in results.candidates or (c == "direct" and _any_direct(results))]
    peers = [p for p in PEERS if p in results.candidates and "sluice" in results.candidates]
    lines = []
    columns = ["scenario", "metric"] + [LABELS[c] for c in candidates] \
        + [f"Sluice ÷ {LABELS[p]}" for p in peers]
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "---|" * 2 + "---:|" * (len(columns) - 2))
    direct = direct_note(meta) if "large" in summary else None
    for key, scenario in summary.items():
        rows = [row for row in scenario["metrics"] if row["show"]]
        for i, row in enumerate(rows):
            name = f"({scenario['letter']}) {scenario['title']}" if i == 0 else ""
            arrow = "↑" if row["higher_is_better"] else "↓"
            mark = " †" if direct and row["key"] == "share_of_direct" else ""
            cells = [name, f"{row['label']} {arrow}{mark}"]
            cells += [_cell(results, key, c, row) for c in candidates]
            cells += [_ratio_cell(row, p) for p in peers]
            lines.append("| " + " | ".join(cells) + " |")
    lines += _footnotes(results, direct)
    return lines


def _callgrind(found: dict) -> list[str]:
    any_run = next((r for r in found.values() if "error" not in r), None)
    lines = ["", "## Instructions per keep-alive request (callgrind)", ""]
    if any_run:
        n, warmup = any_run["requests"], any_run["warmup"]
        lines += [f"User-space instructions (Ir) of the whole Sluice process under callgrind, one "
                  f"worker, one backend, one keep-alive client: (Ir of {warmup} + {n:,} requests "
                  f"− Ir of {warmup} requests) ÷ {n:,}, so start-up, warm-up and shutdown cancel "
                  "out (see bench/README.md).", ""]
    lines += ["| binary | Ir, warm-up only | Ir, warm-up + N | Ir per request |",
              "|---|---:|---:|---:|"]
    for name, r in found.items():
        if "error" in r:
            first = r["error"].strip().splitlines()[0] if r["error"].strip() else "?"
            lines.append(f"| {LABELS[name]} | failed: {first} | | |")
        else:
            lines.append(f"| {LABELS[name]} | {r['short']['ir']:,} | {r['long']['ir']:,} | "
                         f"{r['ir_per_request']:,.0f} |")
    sluice, baseline = found.get("sluice", {}), found.get("baseline", {})
    if "ir_per_request" in sluice and baseline.get("ir_per_request"):
        ratio = sluice["ir_per_request"] / baseline["ir_per_request"]
        lines += ["", f"Sluice ÷ baseline, instructions per request (↓): {ratio:.3f}"]
    return lines


def _targets(targets: list[dict], meta: dict) -> list[str]:
    lines = ["", "## Targets", ""]
    if meta["settings"]["quick"]:
        lines += ["--quick run: the numbers, and so these statuses, mean nothing.", ""]
    lines += ["| target | this run | status |", "|---|---:|---|"]
    for t in targets:
        status = t["status"]
        if t["why"] and status in ("n/a", "not met"):   # not assessable: see the † note
            status += f" ({t['why']})"
        lines.append(f"| {t['text']} | {format_measured(t)} | {status} |")
    return lines


def _any_direct(results: Results) -> bool:
    return any("direct" in by_c for by_c in results.runs.values())


def _header(meta: dict, timed: bool = True) -> list[str]:
    s, v, m = meta["settings"], meta["versions"], meta["machine"]
    binaries = meta.get("binaries", {})
    baseline = ([f"- Sluice: {binaries.get('sluice', 'not run')}; baseline: "
                 f"{binaries['baseline']} (version {v.get('baseline', '?')})"]
                if "baseline" in binaries else [])
    return [
        "# Sluice benchmark results", "",
        f"- date: {meta['date']}",
        f"- machine: {m['cpu_model']}, {m['cores']} cores, Linux {m['kernel']}; {meta['pinning']}",
        f"- versions: Sluice {v['sluice']}, nginx {v['nginx']}, HAProxy {v['haproxy']}, "
        f"wrk {v['wrk']}, OpenSSL {v['openssl']}",
        *baseline,
    ] + ([
        f"- {s['rounds']} interleaved round(s) of {s['duration']} s per measurement "
        f"(+{s['warmup']} s warm-up); wrk {s['wrk_threads']} thread(s), {s['connections']} "
        f"connections ({s['large_connections']} for 1 MiB); {s['idle_connections']} idle "
        f"connections; {s['reloads']} reloads per run",
        "- cells: median over rounds, ± half the spread between the best and worst round "
        "relative to the median; ratios: Sluice ÷ peer (↑ higher is better, ↓ lower is better)",
    ] if timed else []) + [""]


def _fmt(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def _cell(results: Results, scenario: str, candidate: str, row: dict) -> str:
    if candidate in results.na.get(scenario, {}):
        return "n/a"
    runs = results.runs.get(scenario, {}).get(candidate)
    if not runs:
        return ""
    agg = row["values"].get(candidate)
    if agg is None:
        return "failed" if any("error" in r for r in runs) else "—"
    text = _fmt(agg["value"], row["digits"])
    if agg["spread"] is not None:
        text += f" ±{agg['spread'] * 100:.0f}%"
    failed = sum(1 for r in runs if "error" in r)
    if failed:
        text += f" ({failed} failed)"
    return text


def _ratio_cell(row: dict, peer: str) -> str:
    ratio = row["ratios"].get(peer)
    return f"{ratio:.2f}" if ratio is not None else "—"


def _footnotes(results: Results, direct: str | None) -> list[str]:
    notes = [f"- † large: {direct}"] if direct else []
    for scenario, by_candidate in results.na.items():
        for candidate, reason in by_candidate.items():
            notes.append(f"- {scenario}, {LABELS[candidate]}: n/a, {reason}")
    for scenario, by_candidate in results.runs.items():
        for candidate, runs in by_candidate.items():
            for i, run in enumerate(runs):
                if "error" in run:
                    first = run["error"].strip().splitlines()[0] if run["error"].strip() else "?"
                    notes.append(f"- {scenario}, {LABELS[candidate]}, run {i + 1} failed: {first}")
                elif run.get("proxy_survived") is False:
                    notes.append(f"- {scenario}, {LABELS[candidate]}, run {i + 1}: the proxy "
                                 "was not running at the end")
    return ["", *notes] if notes else []


# --------------------------------------------------------------------------- JSON

def document(summary: dict, results: Results, meta: dict, targets: list[dict]) -> str:
    return json.dumps({**meta, "summary": summary, "targets": targets, "runs": results.runs,
                       "na": results.na, "callgrind": results.callgrind},
                      indent=2, sort_keys=False) + "\n"
