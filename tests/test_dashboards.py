"""Grafana dashboards as code: the guide's dashboards, correct PromQL, provisioning."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from dashboards.grafana import dashboard_configmaps, dashboards, provisioning
from dashboards.lint import lint
from dashboards.panels import DATASOURCE_UID
from dashboards.queries import all_expressions, panel_expressions, promql
from dashboards.render import to_yaml
from fl.contract import GRAFANA_DASHBOARDS_MOUNT

GUIDE_TITLES = {
    "Sovereign Map - FL Monitoring",
    "Byzantine Tolerance Analysis",
    "System Performance",
}


def panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in model["panels"]:
        found += [panel, *panel.get("panels", [])]
    return found


def titles(model: dict[str, Any]) -> set[str]:
    return {p["title"] for p in panels(model)}


def test_the_three_dashboards_of_the_guide() -> None:
    models = dashboards()
    assert {m["title"] for m in models.values()} == GUIDE_TITLES
    assert len({m["uid"] for m in models.values()}) == 3
    assert all(name.endswith(".json") for name in models)


def test_dashboards_show_what_the_guide_promises() -> None:
    by_title = {m["title"]: m for m in dashboards().values()}
    assert {"Accuracy convergence", "Loss", "Active participants", "FL round duration"} <= titles(
        by_title["Sovereign Map - FL Monitoring"]
    )
    assert {
        "Rejected and flagged updates",
        "Weight given to attackers",
        "Accuracy vs Byzantine share",
    } <= titles(by_title["Byzantine Tolerance Analysis"])
    assert {"CPU per node", "Memory per node", "Aggregation time", "Throughput"} <= titles(
        by_title["System Performance"]
    )


@pytest.mark.parametrize("file_name", sorted(dashboards()))
def test_panels_are_well_formed(file_name: str) -> None:
    model = dashboards()[file_name]
    ids = [p["id"] for p in panels(model)]
    assert len(ids) == len(set(ids)) and 0 not in ids
    for panel in panels(model):
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}
        assert panel["targets"], panel["title"]
        assert panel.get("description"), panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
    json.dumps(model)  # plain JSON, nothing left to encode


def test_every_expression_passes_the_promql_lint() -> None:
    problems = {where: lint(expr) for where, expr in panel_expressions() + all_expressions()}
    assert {w: p for w, p in problems.items() if p} == {}


@pytest.mark.parametrize(
    ("expr", "problem"),
    [
        ("histogram_quantile(0.95, sovereignmap_fl_round_duration_seconds)", "without rate"),
        (
            "histogram_quantile(0.95, rate(sovereignmap_fl_round_duration_seconds_bucket[5m]))",
            "by (le)",
        ),
        ("rate(sovereignmap_fl_accuracy[5m])", "not a counter"),
        ("count(sovereignmap_active_node) / 100", "unknown metric"),
    ],
)
def test_the_lint_catches_the_old_guides_mistakes(expr: str, problem: str) -> None:
    assert any(problem in p for p in lint(expr)), lint(expr)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_every_expression_is_valid_promql(tmp_path: Path) -> None:
    expressions = all_expressions()
    rules = {
        "groups": [
            {
                "name": "syntax",
                "rules": [
                    {"record": f"check:expr_{i}", "expr": expr}
                    for i, (_, expr) in enumerate(expressions)
                ],
            }
        ]
    }
    path = tmp_path / "syntax.yml"
    path.write_text(to_yaml(rules))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(expressions)} rules found" in result.stdout


def test_all_expressions_covers_every_target_and_alert_signal() -> None:
    found = all_expressions()
    target_count = sum(
        len(p.get("targets") or []) for m in dashboards().values() for p in panels(m)
    )
    assert len([w for w, _ in found if not w.startswith("alert ")]) == target_count
    alerts = {w.split(" / ")[0] for w, _ in found if w.startswith("alert ")}
    assert len(alerts) == 9
    assert not [e for _, e in found if "$" in e]  # runnable in plain Prometheus
    assert promql("rate(x_total[$__rate_interval])", "2m") == "rate(x_total[2m])"


def test_provisioning_points_grafana_at_prometheus_and_the_dashboards() -> None:
    files = provisioning("http://prometheus:9090", alertmanager_url="http://alertmanager:9093")
    datasources = yaml.safe_load(files["datasources/sovereign-map.yaml"])["datasources"]
    prometheus = next(d for d in datasources if d["type"] == "prometheus")
    assert prometheus["uid"] == DATASOURCE_UID
    assert prometheus["url"] == "http://prometheus:9090"
    assert any(d["type"] == "alertmanager" for d in datasources)
    provider = yaml.safe_load(files["dashboards/sovereign-map.yaml"])["providers"][0]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == GRAFANA_DASHBOARDS_MOUNT
    only_prometheus = provisioning("http://127.0.0.1:9090")
    assert (
        len(yaml.safe_load(only_prometheus["datasources/sovereign-map.yaml"])["datasources"]) == 1
    )


def test_configmaps_are_valid_kubernetes_for_the_dashboard_sidecar() -> None:
    maps = dashboard_configmaps(namespace="sovereign-map")
    assert len(maps) == 3
    for manifest in maps:
        kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)
        assert manifest["metadata"]["labels"]["grafana_dashboard"] == "1"
        ((file_name, text),) = manifest["data"].items()
        assert json.loads(text) == dashboards()[file_name]
        assert len(text.encode()) < 1024 * 1024  # ConfigMap size limit
