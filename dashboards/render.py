"""Write every monitoring file for a target into one directory tree.

\b
OUT/prometheus/prometheus.yml                       (rule_files: rules/*.yml, relative)
OUT/prometheus/rules/sovereign-map.rules.yml
OUT/alertmanager/alertmanager.yml
OUT/grafana/provisioning/datasources/sovereign-map.yaml
OUT/grafana/provisioning/dashboards/sovereign-map.yaml
OUT/grafana/dashboards/*.json                       (mount at GRAFANA_DASHBOARDS_MOUNT)
OUT/grafana/dashboard-configmaps.yaml               (Kubernetes, grafana_dashboard: "1")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from dashboards.alertmanager import alertmanager_config
from dashboards.alerts import Thresholds, alert_rules
from dashboards.grafana import dashboard_configmaps, dashboards, provisioning
from dashboards.prometheus import Target, prometheus_config
from fl.contract import ALERTMANAGER_PORT, PROMETHEUS_PORT

RULES_FILE = "sovereign-map.rules.yml"


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(document: Any) -> str:
    return yaml.dump(document, Dumper=_NoAliases, sort_keys=False, allow_unicode=True)


def default_urls(target: Target) -> tuple[str, str]:
    """Where Grafana reaches Prometheus and Alertmanager on ``target``."""
    host = "127.0.0.1" if target == "devnet" else None
    prom = f"http://{host or 'prometheus'}:{PROMETHEUS_PORT}"
    alertmanager = f"http://{host or 'alertmanager'}:{ALERTMANAGER_PORT}"
    return prom, alertmanager


def render_all(
    out_dir: Path,
    target: Target,
    *,
    prometheus_url: str | None = None,
    alertmanager_url: str | None = None,
    webhook_url: str | None = None,
    namespace: str | None = None,
    thresholds: Thresholds | None = None,
    **target_kwargs: Any,
) -> list[Path]:
    """Write Prometheus, Alertmanager and Grafana files for ``target`` under ``out_dir``.

    ``target_kwargs`` go to :func:`dashboards.prometheus.prometheus_config` (for
    ``kubernetes``, ``namespace`` is passed on too). Returns the files written.
    """
    if target == "kubernetes":
        target_kwargs["namespace"] = namespace
    default_prom, default_am = default_urls(target)
    files: dict[str, str] = {
        "prometheus/prometheus.yml": to_yaml(prometheus_config(target, **target_kwargs)),
        f"prometheus/rules/{RULES_FILE}": to_yaml(alert_rules(thresholds)),
        "alertmanager/alertmanager.yml": to_yaml(alertmanager_config(webhook_url)),
        "grafana/dashboard-configmaps.yaml": yaml.safe_dump_all(
            dashboard_configmaps(namespace), sort_keys=False
        ),
    }
    for name, text in provisioning(
        prometheus_url or default_prom, alertmanager_url=alertmanager_url or default_am
    ).items():
        files[f"grafana/provisioning/{name}"] = text
    for name, model in dashboards().items():
        files[f"grafana/dashboards/{name}"] = json.dumps(model, indent=2) + "\n"
    written = []
    for relative, text in files.items():
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
