"""Every PromQL expression the dashboards and alert rules evaluate, as Prometheus runs them."""

from __future__ import annotations

import re

from dashboards.alerts import alerts
from dashboards.grafana import dashboards

# Grafana's built-in interval variables, replaced so Prometheus can run the query directly.
GRAFANA_INTERVALS = re.compile(
    r"\$(__rate_interval|__interval|__range)\b|\$\{(__rate_interval|"
    r"__interval|__range)\}"
)


def promql(expr: str, interval: str = "1m") -> str:
    """``expr`` with Grafana's ``$__rate_interval``/``$__interval``/``$__range`` set to
    ``interval``."""
    return GRAFANA_INTERVALS.sub(interval, expr)


def panel_expressions() -> list[tuple[str, str]]:
    """(``dashboard file / panel title / refId``, expr) for every panel target, as written."""
    found: list[tuple[str, str]] = []
    for file_name, model in dashboards().items():
        for panel in model["panels"]:
            for item in [panel, *panel.get("panels", [])]:
                for target in item.get("targets") or []:
                    where = f"{file_name} / {item['title']} / {target['refId']}"
                    found.append((where, target["expr"]))
    return found


def alert_expressions() -> list[tuple[str, str]]:
    """(``alert NAME``, expr) for every alert rule, threshold included."""
    return [(f"alert {a.name}", a.expr) for a in alerts()]


def all_expressions(interval: str = "1m") -> list[tuple[str, str]]:
    """(where, expr) for every panel target and every alert *signal*, runnable in Prometheus.

    Alerts contribute the signals they compare (``alert NAME / signal N``), not the
    thresholded rule: on a healthy testnet every one of these returns data, while a rule
    expression returns data only when its alert fires (promtool unit tests cover that).
    """
    found = [(where, promql(expr, interval)) for where, expr in panel_expressions()]
    for alert in alerts():
        found += [
            (f"alert {alert.name} / signal {i + 1}", signal)
            for i, signal in enumerate(alert.signals)
        ]
    return found
