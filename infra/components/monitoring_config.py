"""The monitoring configuration a stack deploys, rendered by :mod:`dashboards` (the same
code ``sovereign-map monitoring`` uses), as file contents keyed by path.

Both forms mount exactly these files; the tests run ``promtool``/``amtool`` on them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from dashboards.alertmanager import alertmanager_config
from dashboards.alerts import alert_rules
from dashboards.grafana import dashboards, provisioning
from dashboards.prometheus import meta_label, prometheus_config
from fl.contract import (
    ALERTMANAGER_PORT,
    COMPONENT_AGGREGATOR,
    COMPONENT_METRICS_API,
    GRAFANA_PROVISIONING_MOUNT,
    LABEL_COMPONENT,
    PROM_JOB_METRICS_API,
    PROMETHEUS_PORT,
)
from infra.components.common import LABEL_INSTANCE
from infra.stacks.model import Target

PROMETHEUS_CONFIG_DIR = "/etc/prometheus"
PROMETHEUS_CONFIG_FILE = "prometheus.yml"
PROMETHEUS_RULES_FILE = "rules/sovereign-map.yml"  # matches the config's rule_files glob
PROMETHEUS_DATA = "/prometheus"
ALERTMANAGER_CONFIG_DIR = "/etc/alertmanager"
ALERTMANAGER_CONFIG_FILE = "alertmanager.yml"
ALERTMANAGER_DATA = "/alertmanager"
GRAFANA_DATA = "/var/lib/grafana"
PROMETHEUS_HOST = "prometheus"
ALERTMANAGER_HOST = "alertmanager"
GRAFANA_HOST = "grafana"


def to_yaml(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False)


@dataclass(frozen=True)
class PrometheusFiles:
    config: str  # prometheus.yml
    rules: str  # rules/sovereign-map.yml

    def by_path(self) -> dict[str, str]:
        return {PROMETHEUS_CONFIG_FILE: self.config, PROMETHEUS_RULES_FILE: self.rules}


def prometheus_files(
    target: Target, stack: str, *, network: str = "", namespace: str = ""
) -> PrometheusFiles:
    """``prometheus.yml`` for the target's service discovery, and the alert rules."""
    if target is Target.DOCKER:
        config = prometheus_config(
            "docker",
            network=network,
            label_filters={LABEL_INSTANCE: stack},
            stack=stack,
            alertmanager_port=ALERTMANAGER_PORT,
        )
    else:
        config = prometheus_config(
            "kubernetes",
            namespace=namespace,
            role="pod",
            stack=stack,
            alertmanager_port=ALERTMANAGER_PORT,
        )
        config = metrics_api_in_aggregator_pod(config)
    return PrometheusFiles(config=to_yaml(config), rules=to_yaml(alert_rules()))


def metrics_api_in_aggregator_pod(config: dict[str, Any]) -> dict[str, Any]:
    """On Kubernetes the metrics API is a container of the aggregator's pod (they share the
    state volume), so the pod carries ``component=aggregator``: point the metrics-API job's
    ``keep`` rule at that pod (the port, 8000, already selects the container)."""
    source = meta_label("__meta_kubernetes_pod_label_", LABEL_COMPONENT)
    for job in config["scrape_configs"]:
        if job.get("job_name") != PROM_JOB_METRICS_API:
            continue
        for rule in job.get("relabel_configs", []):
            if rule.get("action") == "keep" and rule.get("source_labels") == [source]:
                if rule.get("regex") != COMPONENT_METRICS_API:
                    raise ValueError(f"unexpected metrics-API selector in {rule}")
                rule["regex"] = COMPONENT_AGGREGATOR
                return config
    raise ValueError("the Prometheus configuration has no metrics-API job to adapt")


def alertmanager_file(webhook_url: str | None) -> str:
    return to_yaml(alertmanager_config(webhook_url))


def grafana_provisioning(prometheus_url: str, alertmanager_url: str) -> dict[str, str]:
    """Provisioning files by path under Grafana's provisioning directory."""
    return provisioning(prometheus_url, alertmanager_url=alertmanager_url)


def grafana_dashboards() -> dict[str, str]:
    """Dashboard JSON by file name."""
    return {
        name: json.dumps(model, indent=2, sort_keys=True) for name, model in dashboards().items()
    }


def prometheus_args(retention: str) -> list[str]:
    return [
        f"--config.file={PROMETHEUS_CONFIG_DIR}/{PROMETHEUS_CONFIG_FILE}",
        f"--storage.tsdb.path={PROMETHEUS_DATA}",
        f"--storage.tsdb.retention.time={retention}",
    ]


def alertmanager_args() -> list[str]:
    return [
        f"--config.file={ALERTMANAGER_CONFIG_DIR}/{ALERTMANAGER_CONFIG_FILE}",
        f"--storage.path={ALERTMANAGER_DATA}",
        "--cluster.listen-address=",  # one instance: no gossip
    ]


GRAFANA_ADMIN_USER_ENV = "GF_SECURITY_ADMIN_USER"
GRAFANA_ADMIN_PASSWORD_ENV = "GF_SECURITY_ADMIN_PASSWORD"


def grafana_env() -> dict[str, str]:
    """Grafana's settings (the admin credentials are added by each form)."""
    return {
        "GF_USERS_ALLOW_SIGN_UP": "false",
        "GF_ANALYTICS_REPORTING_ENABLED": "false",
        "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
        "GF_LOG_MODE": "console",
        "GF_PATHS_PROVISIONING": GRAFANA_PROVISIONING_MOUNT,
    }


def service_url(host: str, port: int) -> str:
    return f"http://{host}:{port}"


PROMETHEUS_URL_IN_STACK = service_url(PROMETHEUS_HOST, PROMETHEUS_PORT)
ALERTMANAGER_URL_IN_STACK = service_url(ALERTMANAGER_HOST, ALERTMANAGER_PORT)
