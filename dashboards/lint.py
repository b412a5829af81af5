"""PromQL mistakes promtool does not catch: quantiles over raw histograms, rates over gauges,
metric names nobody exports."""

from __future__ import annotations

import re

import fl.contract as contract

COUNTER_SUFFIXES = ("_total", "_bucket", "_sum", "_count")
PROCESS_METRICS = {
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "up",
}
RATE_CALL = re.compile(r"\b(rate|irate|increase)\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)")
METRIC_TOKEN = re.compile(r"\b(sovereignmap_[a-z0-9_]+|process_[a-z_]+|up)\b")
STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def known_metrics() -> set[str]:
    """Every series name the metrics API and the nodes export (histograms expanded)."""
    names = {
        v
        for k, v in vars(contract).items()
        if k.startswith(("METRIC_", "NODE_METRIC_")) and isinstance(v, str)
    }
    expanded = set(names) | PROCESS_METRICS
    for name in names:
        if name.endswith("_seconds"):  # histograms
            expanded |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    return expanded


def _call_argument(expr: str, open_paren: int) -> str:
    depth = 0
    for index in range(open_paren, len(expr)):
        depth += {"(": 1, ")": -1}.get(expr[index], 0)
        if depth == 0:
            return expr[open_paren + 1 : index]
    return expr[open_paren + 1 :]


def lint(expr: str) -> list[str]:
    """Problems found in ``expr`` (empty when none)."""
    problems = []
    bare = STRING.sub('""', expr)
    for match in re.finditer(r"\bhistogram_quantile\(", bare):
        argument = _call_argument(bare, match.end() - 1)
        if not re.search(
            r"\b(rate|irate|increase)\(\s*[a-zA-Z_:][a-zA-Z0-9_:]*_bucket\b", argument
        ):
            problems.append("histogram_quantile without rate(…_bucket[…])")
        elif not re.search(r"\bby\s*\([^)]*\ble\b", argument):
            problems.append("histogram_quantile over buckets not aggregated by (le)")
    for function, metric in RATE_CALL.findall(bare):
        if not metric.endswith(COUNTER_SUFFIXES):
            problems.append(f"{function}() over {metric}, which is not a counter")
    known = known_metrics()
    for name in sorted(set(METRIC_TOKEN.findall(bare)) - known):
        problems.append(f"unknown metric {name}")
    return problems
