"""Prometheus configuration for each place the testnet runs.

* ``devnet``: static targets on 127.0.0.1 (ports passed in, one per node).
* ``docker``: Docker service discovery, containers filtered by the stack's labels.
* ``kubernetes``: Kubernetes service discovery (pods or endpoints) in the stack's namespace.

Every stack labels its containers/pods ``app.kubernetes.io/part-of=sovereign-map`` and
``app.kubernetes.io/component=<role>``; nodes may add ``sovereign-map/node-id=<NODE_ID>``.
Node series carry a ``node`` target label (the node id, else the container/pod name).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from fl.contract import (
    ALERTMANAGER_PORT,
    COMPONENT_ALERTMANAGER,
    COMPONENT_METRICS_API,
    COMPONENT_NODE,
    LABEL_COMPONENT,
    LABEL_NODE_ID,
    LABEL_PART_OF,
    LABEL_PART_OF_VALUE,
    METRICS_API_PORT,
    NODE_METRICS_PORT,
    PROM_JOB_ALERTMANAGER,
    PROM_JOB_METRICS_API,
    PROM_JOB_NODES,
    PROM_JOB_PROMETHEUS,
    PROM_NODE_LABEL,
    PROMETHEUS_PORT,
)

Target = Literal["devnet", "docker", "kubernetes"]
TARGETS: tuple[Target, ...] = ("devnet", "docker", "kubernetes")
SCRAPE_INTERVAL = "15s"
RULE_FILES = ["rules/*.yml"]  # relative to the configuration file
LOCALHOST = "127.0.0.1"


def meta_label(prefix: str, label: str) -> str:
    """A Kubernetes/Docker label as Prometheus names its meta label."""
    return prefix + "".join(c if c.isalnum() else "_" for c in label)


def _global(stack: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "scrape_interval": SCRAPE_INTERVAL,
        "evaluation_interval": SCRAPE_INTERVAL,
    }
    if stack:
        config["external_labels"] = {"stack": stack}
    return config


def _self_job() -> dict[str, Any]:
    return {
        "job_name": PROM_JOB_PROMETHEUS,
        "static_configs": [{"targets": [f"localhost:{PROMETHEUS_PORT}"]}],
    }


# ------------------------------------------------------------------------------ devnet


def devnet_config(
    *,
    metrics_api_port: int = METRICS_API_PORT,
    node_ports: Mapping[str, int] | None = None,
    alertmanager_port: int | None = ALERTMANAGER_PORT,
    prometheus_port: int = PROMETHEUS_PORT,
    stack: str | None = "devnet",
) -> dict[str, Any]:
    """Static targets on 127.0.0.1; ``node_ports`` maps each node id to its metrics port."""
    ports = [metrics_api_port, prometheus_port, *(node_ports or {}).values()]
    if alertmanager_port is not None:
        ports.append(alertmanager_port)
    bad = [p for p in ports if not isinstance(p, int) or not 0 < p < 65536]
    if bad:
        raise ValueError(f"ports must be integers from 1 to 65535, got {bad}")
    scrape = [
        {
            "job_name": PROM_JOB_PROMETHEUS,
            "static_configs": [{"targets": [f"{LOCALHOST}:{prometheus_port}"]}],
        },
        {
            "job_name": PROM_JOB_METRICS_API,
            "static_configs": [{"targets": [f"{LOCALHOST}:{metrics_api_port}"]}],
        },
    ]
    if node_ports:
        scrape.append(
            {
                "job_name": PROM_JOB_NODES,
                "static_configs": [
                    {"targets": [f"{LOCALHOST}:{port}"], "labels": {PROM_NODE_LABEL: node}}
                    for node, port in sorted(node_ports.items())
                ],
            }
        )
    config: dict[str, Any] = {
        "global": _global(stack),
        "rule_files": RULE_FILES,
        "scrape_configs": scrape,
    }
    if alertmanager_port is not None:
        scrape.append(
            {
                "job_name": PROM_JOB_ALERTMANAGER,
                "static_configs": [{"targets": [f"{LOCALHOST}:{alertmanager_port}"]}],
            }
        )
        config["alerting"] = {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"{LOCALHOST}:{alertmanager_port}"]}]}
            ]
        }
    return config


# ------------------------------------------------------------------------------ service discovery


def _sd_relabel(
    prefix: str, component: str, port: int, ip_label: str, name_label: str, node: bool
) -> list[dict[str, Any]]:
    """Keep one component's containers/pods and scrape them on ``ip:port``."""
    rules: list[dict[str, Any]] = [
        {
            "source_labels": [meta_label(prefix, LABEL_COMPONENT)],
            "regex": component,
            "action": "keep",
        },
        {
            "source_labels": [ip_label],
            "regex": "(.+)",
            "target_label": "__address__",
            "replacement": f"${{1}}:{port}",
        },
    ]
    if node:
        rules += [
            {"source_labels": [name_label], "regex": "/?(.+)", "target_label": PROM_NODE_LABEL},
            {
                "source_labels": [meta_label(prefix, LABEL_NODE_ID)],
                "regex": "(.+)",
                "target_label": PROM_NODE_LABEL,
            },
        ]
    return rules


def docker_config(
    *,
    network: str | None = None,
    docker_host: str = "unix:///var/run/docker.sock",
    label_filters: Mapping[str, str] | None = None,
    metrics_api_port: int = METRICS_API_PORT,
    metrics_api_component: str = COMPONENT_METRICS_API,
    node_port: int = NODE_METRICS_PORT,
    alertmanager_port: int | None = ALERTMANAGER_PORT,
    stack: str | None = None,
    refresh_interval: str = "30s",
) -> dict[str, Any]:
    """Docker service discovery (Prometheus needs the Docker socket mounted read-only).

    ``network``: the stack's Docker network; containers are scraped on their IP there
    (recommended: without it a container on two networks is scraped twice).
    ``label_filters``: container labels that select the stack (default: part-of=sovereign-map).
    ``metrics_api_component``: the component label of the container serving the metrics API
    (e.g. ``aggregator`` when it runs inside the aggregator's container/pod).
    """
    filters = {LABEL_PART_OF: LABEL_PART_OF_VALUE, **(label_filters or {})}
    sd = {
        "host": docker_host,
        "refresh_interval": refresh_interval,
        "filters": [{"name": "label", "values": [f"{k}={v}" for k, v in filters.items()]}],
    }
    prefix = "__meta_docker_container_label_"
    network_rule = (
        [{"source_labels": ["__meta_docker_network_name"], "regex": network, "action": "keep"}]
        if network
        else []
    )
    common = ("__meta_docker_network_ip", "__meta_docker_container_name")
    container = {
        "source_labels": ["__meta_docker_container_name"],
        "regex": "/?(.+)",
        "target_label": "container",
    }

    def job(name: str, component: str, port: int, node: bool = False) -> dict[str, Any]:
        return {
            "job_name": name,
            "docker_sd_configs": [sd],
            "relabel_configs": network_rule
            + _sd_relabel(prefix, component, port, *common, node)
            + [container],
        }

    scrape = [
        _self_job(),
        job(PROM_JOB_METRICS_API, metrics_api_component, metrics_api_port),
        job(PROM_JOB_NODES, COMPONENT_NODE, node_port, node=True),
    ]
    config: dict[str, Any] = {
        "global": _global(stack),
        "rule_files": RULE_FILES,
        "scrape_configs": scrape,
    }
    if alertmanager_port is not None:
        am = job(PROM_JOB_ALERTMANAGER, COMPONENT_ALERTMANAGER, alertmanager_port)
        scrape.append(am)
        config["alerting"] = {
            "alertmanagers": [{"docker_sd_configs": [sd], "relabel_configs": am["relabel_configs"]}]
        }
    return config


def kubernetes_config(
    *,
    namespace: str,
    role: Literal["pod", "endpoints"] = "pod",
    metrics_api_port: int = METRICS_API_PORT,
    metrics_api_component: str = COMPONENT_METRICS_API,
    node_port: int = NODE_METRICS_PORT,
    alertmanager_port: int | None = ALERTMANAGER_PORT,
    stack: str | None = None,
) -> dict[str, Any]:
    """Kubernetes service discovery in ``namespace`` (Prometheus' service account needs
    get/list/watch on pods, or on endpoints, services and pods for ``role="endpoints"``).
    ``metrics_api_component``: as for :func:`docker_config` (a sidecar of the aggregator pod:
    ``aggregator``; the port then picks the container)."""
    if not namespace:
        raise ValueError("kubernetes target needs the stack's namespace")
    if role not in ("pod", "endpoints"):
        raise ValueError(f"role must be 'pod' or 'endpoints', got {role!r}")
    sd = {"role": role, "namespaces": {"names": [namespace]}}
    prefix = "__meta_kubernetes_pod_label_"
    common = ("__meta_kubernetes_pod_ip", "__meta_kubernetes_pod_name")
    running = [
        {"source_labels": ["__meta_kubernetes_pod_phase"], "regex": "Running", "action": "keep"}
    ]
    pod_labels = [
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
    ]

    def job(name: str, component: str, port: int, node: bool = False) -> dict[str, Any]:
        return {
            "job_name": name,
            "kubernetes_sd_configs": [sd],
            "relabel_configs": running
            + _sd_relabel(prefix, component, port, *common, node)
            + pod_labels,
        }

    scrape = [
        _self_job(),
        job(PROM_JOB_METRICS_API, metrics_api_component, metrics_api_port),
        job(PROM_JOB_NODES, COMPONENT_NODE, node_port, node=True),
    ]
    config: dict[str, Any] = {
        "global": _global(stack),
        "rule_files": RULE_FILES,
        "scrape_configs": scrape,
    }
    if alertmanager_port is not None:
        am = job(PROM_JOB_ALERTMANAGER, COMPONENT_ALERTMANAGER, alertmanager_port)
        scrape.append(am)
        config["alerting"] = {
            "alertmanagers": [
                {"kubernetes_sd_configs": [sd], "relabel_configs": am["relabel_configs"]}
            ]
        }
    return config


def prometheus_config(target: Target, **kwargs: Any) -> dict[str, Any]:
    """The ``prometheus.yml`` document for ``target``; keyword arguments are those of
    :func:`devnet_config`, :func:`docker_config` or :func:`kubernetes_config`."""
    builders = {"devnet": devnet_config, "docker": docker_config, "kubernetes": kubernetes_config}
    if target not in builders:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    try:
        config = builders[target](**kwargs)
    except TypeError as exc:  # an argument another target takes
        raise ValueError(f"{target}: {exc}") from exc
    return json.loads(json.dumps(config))  # no shared sub-objects: safe to modify, no YAML aliases


def node_ports_for(
    count: int, first_port: int = NODE_METRICS_PORT, prefix: str = "node-"
) -> dict[str, int]:
    """``{"node-0": first_port, "node-1": first_port + 1, …}`` for a devnet of ``count``."""
    return {f"{prefix}{i}": first_port + i for i in range(count)}
