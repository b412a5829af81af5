"""The Grafana dashboards the original guide names, and Grafana provisioning for them.

``dashboards()`` gives the JSON models (file name -> model), ``provisioning()`` the datasource
and dashboard-provider files, ``dashboard_configmaps()`` the same dashboards as Kubernetes
ConfigMaps for Grafana's dashboard sidecar (label ``grafana_dashboard: "1"``).
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from grafana_foundation_sdk.builders.dashboard import Dashboard, DashboardLink, Row
from grafana_foundation_sdk.models.dashboard import DashboardLinkType

from dashboards import exprs as e
from dashboards.panels import DATASOURCE_UID, Query, single_stat, time_series, to_model
from dashboards.prometheus import SCRAPE_INTERVAL
from fl.contract import GRAFANA_DASHBOARDS_MOUNT

TAG = "sovereign-map"
FOLDER = "Sovereign Map"
GREEN, YELLOW, RED = "green", "yellow", "red"


def _board(title: str, uid: str, description: str) -> Dashboard:
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG])
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("browser")
        .editable()
        .link(
            DashboardLink("Sovereign Map")
            .type(DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .keep_time(True)
        )
    )


def fl_monitoring() -> dict[str, Any]:
    board = (
        _board(
            "Sovereign Map - FL Monitoring",
            "sovereign-map-fl",
            "Training progress of the federation: accuracy, loss, participation, rounds.",
        )
        .with_row(Row("Now"))
        .with_panel(single_stat("Round", "Last completed round.", Query(e.ROUND), "none"))
        .with_panel(
            single_stat(
                "Accuracy",
                "Global model on the MNIST test set.",
                Query(e.ACCURACY),
                "percent",
                decimals=2,
                steps=[(None, RED), (80, YELLOW), (95, GREEN)],
            )
        )
        .with_panel(
            single_stat("Loss", "Global model test loss.", Query(e.LOSS), "none", decimals=3)
        )
        .with_panel(
            single_stat(
                "Active participants",
                "Updates accepted in the last round.",
                Query(e.ACTIVE_NODES),
                "none",
            )
        )
        .with_panel(
            single_stat(
                "Rounds per minute",
                f"Over the last {e.ROUND_WINDOW}.",
                Query(e.ROUNDS_PER_MINUTE),
                "none",
                decimals=2,
            )
        )
        .with_panel(
            single_stat(
                "Largest ε",
                "Largest cumulative ε any node reported.",
                Query(e.MAX_EPSILON),
                "none",
                decimals=2,
            )
        )
        .with_row(Row("Convergence"))
        .with_panel(
            time_series(
                "Accuracy convergence",
                "Global model accuracy per round.",
                [Query(e.ACCURACY, "accuracy")],
                "percent",
                min_value=0,
                max_value=100,
            )
        )
        .with_panel(
            time_series(
                "Loss",
                "Global model test loss per round.",
                [Query(e.LOSS, "loss")],
                "none",
                min_value=0,
            )
        )
        .with_row(Row("Participation and rounds"))
        .with_panel(
            time_series(
                "Active participants",
                "Updates accepted into the last aggregate, against the configured node count.",
                [Query(e.ACTIVE_NODES, "accepted updates"), Query(e.NODES_EXPECTED, "nodes")],
                "none",
                min_value=0,
            )
        )
        .with_panel(
            time_series(
                "FL round duration",
                f"Round wall time (start to checkpoint) over the last {e.ROUND_WINDOW}.",
                [
                    Query(e.ROUND_DURATION_P50, "p50"),
                    Query(e.ROUND_DURATION_P95, "p95"),
                    Query(e.ROUND_DURATION_MEAN, "mean"),
                ],
                "s",
                min_value=0,
            )
        )
        .with_row(Row("Differential privacy"))
        .with_panel(
            time_series(
                "ε per node",
                "Cumulative ε each node reported last round.",
                [Query(e.NODE_EPSILON, "{{node}}")],
                "none",
                min_value=0,
            )
        )
        .with_panel(
            time_series(
                "Largest ε vs budget",
                "The budget line is the configured ε.",
                [Query(e.MAX_EPSILON, "largest ε"), Query(e.EPSILON_BUDGET, "budget")],
                "none",
                min_value=0,
            )
        )
    )
    return to_model(board)


def byzantine_tolerance() -> dict[str, Any]:
    board = (
        _board(
            "Byzantine Tolerance Analysis",
            "sovereign-map-byzantine",
            "What the robust aggregation rejected or ignored, and what attackers achieved.",
        )
        .with_row(Row("Now"))
        .with_panel(
            single_stat(
                "Rejected updates",
                "Malformed updates rejected, all rounds.",
                Query(e.REJECTED_TOTAL),
                "none",
            )
        )
        .with_panel(
            single_stat(
                "Flagged updates",
                "Updates given zero weight, all rounds.",
                Query(e.FLAGGED_TOTAL),
                "none",
            )
        )
        .with_panel(
            single_stat(
                "Weight given to attackers",
                "Share of the last aggregate that went to nodes configured to attack.",
                Query(e.ATTACKER_WEIGHT),
                "percentunit",
                decimals=1,
                steps=[(None, GREEN), (0.05, YELLOW), (0.2, RED)],
            )
        )
        .with_row(Row("Detection"))
        .with_panel(
            time_series(
                "Rejected and flagged updates",
                f"Updates rejected as malformed or given zero weight, per {e.ROUND_WINDOW}.",
                [Query(e.REJECTED_RECENT, "rejected"), Query(e.FLAGGED_RECENT, "flagged")],
                "none",
                min_value=0,
            )
        )
        .with_panel(
            time_series(
                "Accuracy vs Byzantine share",
                "Accuracy next to the share of nodes configured to attack and the share of "
                "updates the aggregator rejected or ignored.",
                [
                    Query(e.ACCURACY, "accuracy %"),
                    Query(f"100 * {e.CONFIGURED_SHARE}", "configured attackers %"),
                    Query(f"100 * {e.SUSPECTED_SHARE}", "suspected updates %"),
                ],
                "percent",
                min_value=0,
                max_value=100,
            )
        )
        .with_row(Row("Aggregation weights"))
        .with_panel(
            time_series(
                "Weight by configured attack",
                "Share of the last aggregate per configured attack mode.",
                [Query(e.WEIGHT_BY_ATTACK, "{{attack}}")],
                "percentunit",
                min_value=0,
                max_value=1,
            )
        )
        .with_panel(
            time_series(
                "Weight per node",
                "Share of the last aggregate per node.",
                [Query(e.NODE_WEIGHT, "{{node}}")],
                "percentunit",
                min_value=0,
                max_value=1,
            )
        )
        .with_panel(
            time_series(
                "Accuracy drop from best",
                "Percentage points below the best accuracy of the last 30 minutes.",
                [Query(e.ACCURACY_DROP, "drop")],
                "none",
                min_value=0,
            )
        )
    )
    return to_model(board)


def system_performance() -> dict[str, Any]:
    board = (
        _board(
            "System Performance",
            "sovereign-map-system",
            "Resources per node, aggregation time and throughput.",
        )
        .with_row(Row("Nodes"))
        .with_panel(
            time_series(
                "CPU per node",
                "CPU cores used by each node process.",
                [Query(e.NODE_CPU, "{{node}}")],
                "percentunit",
                min_value=0,
            )
        )
        .with_panel(
            time_series(
                "Memory per node",
                "Resident memory of each node process.",
                [Query(e.NODE_MEMORY, "{{node}}")],
                "bytes",
                min_value=0,
            )
        )
        .with_panel(
            time_series(
                "Local training time p95",
                f"Per node, over the last {e.ROUND_WINDOW}.",
                [Query(e.NODE_TRAIN_P95, "{{node}}")],
                "s",
                min_value=0,
            )
        )
        .with_panel(
            time_series(
                "Update upload rate",
                "Bytes of model updates sent per node.",
                [Query(e.NODE_UPLOAD_BYTES, "{{node}}")],
                "Bps",
                min_value=0,
            )
        )
        .with_panel(
            time_series(
                "Local training loss",
                "Last local training loss per node.",
                [Query(e.NODE_TRAIN_LOSS, "{{node}}")],
                "none",
                min_value=0,
            )
        )
        .with_row(Row("Aggregator"))
        .with_panel(
            time_series(
                "Aggregation time",
                f"Over the last {e.ROUND_WINDOW}.",
                [Query(e.AGGREGATION_P95, "p95"), Query(e.AGGREGATION_MEAN, "mean")],
                "s",
                min_value=0,
            )
        )
        .with_panel(
            time_series(
                "Throughput",
                "Rounds and accepted updates per minute; fits per minute by nodes.",
                [
                    Query(e.ROUNDS_PER_MINUTE, "rounds/min"),
                    Query(e.UPDATES_PER_MINUTE, "updates/min"),
                    Query(e.NODE_FITS_PER_MINUTE, "node fits/min"),
                ],
                "none",
                min_value=0,
            )
        )
        .with_panel(
            time_series(
                "Training examples per second",
                "Summed over all nodes.",
                [Query(e.NODE_EXAMPLES_PER_SECOND, "examples/s")],
                "none",
                min_value=0,
            )
        )
        .with_panel(
            time_series(
                "Metrics API CPU",
                "CPU cores used by the metrics API.",
                [Query(e.API_CPU, "cpu {{instance}}")],
                "percentunit",
                min_value=0,
                span=6,
            )
        )
        .with_panel(
            time_series(
                "Metrics API memory",
                "Resident memory of the metrics API.",
                [Query(e.API_MEMORY, "{{instance}}")],
                "bytes",
                min_value=0,
                span=6,
            )
        )
        .with_row(Row("Scrape targets"))
        .with_panel(
            time_series(
                "Targets up",
                "Targets Prometheus scrapes successfully, by job.",
                [Query(e.TARGETS_UP, "{{job}}")],
                "none",
                min_value=0,
            )
        )
        .with_panel(
            time_series(
                "Certificate expiry",
                "Days until each certificate expires.",
                [Query(e.CERT_EXPIRY_DAYS, "{{subject}} ({{file}})")],
                "d",
            )
        )
    )
    return to_model(board)


def dashboards() -> dict[str, dict[str, Any]]:
    """File name -> Grafana dashboard JSON model."""
    return {
        "sovereign-map-fl-monitoring.json": fl_monitoring(),
        "sovereign-map-byzantine-tolerance.json": byzantine_tolerance(),
        "sovereign-map-system-performance.json": system_performance(),
    }


def provisioning(
    prometheus_url: str,
    *,
    alertmanager_url: str | None = None,
    dashboards_path: str = GRAFANA_DASHBOARDS_MOUNT,
) -> dict[str, str]:
    """Grafana provisioning files, keyed by their path under Grafana's provisioning directory
    (``datasources/…``, ``dashboards/…``): the Prometheus datasource (uid fixed so the
    dashboards find it), optionally Alertmanager, and a file provider for ``dashboards_path``."""
    datasources: list[dict[str, Any]] = [
        {
            "name": "Prometheus",
            "type": "prometheus",
            "uid": DATASOURCE_UID,
            "access": "proxy",
            "url": prometheus_url,
            "isDefault": True,
            "editable": False,
            "jsonData": {"timeInterval": SCRAPE_INTERVAL},
        }
    ]
    if alertmanager_url:
        datasources.append(
            {
                "name": "Alertmanager",
                "type": "alertmanager",
                "uid": "sovereign-map-alertmanager",
                "access": "proxy",
                "url": alertmanager_url,
                "editable": False,
                "jsonData": {"implementation": "prometheus", "handleGrafanaManagedAlerts": False},
            }
        )
    provider = {
        "name": "sovereign-map",
        "orgId": 1,
        "folder": FOLDER,
        "type": "file",
        "disableDeletion": True,
        "allowUiUpdates": False,
        "updateIntervalSeconds": 30,
        "options": {"path": dashboards_path, "foldersFromFilesStructure": False},
    }
    return {
        "datasources/sovereign-map.yaml": yaml.safe_dump(
            {"apiVersion": 1, "datasources": datasources}, sort_keys=False
        ),
        "dashboards/sovereign-map.yaml": yaml.safe_dump(
            {"apiVersion": 1, "providers": [provider]}, sort_keys=False
        ),
    }


def dashboard_configmaps(namespace: str | None = None) -> list[dict[str, Any]]:
    """One ConfigMap per dashboard, labelled for Grafana's dashboard sidecar."""
    maps = []
    for file_name, model in dashboards().items():
        metadata: dict[str, Any] = {
            "name": file_name.removesuffix(".json"),
            "labels": {"grafana_dashboard": "1", "app.kubernetes.io/part-of": TAG},
            "annotations": {"grafana_folder": FOLDER},
        }
        if namespace:
            metadata["namespace"] = namespace
        maps.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": metadata,
                "data": {file_name: json.dumps(model, indent=2)},
            }
        )
    return maps
