"""A real Prometheus scrapes a real metrics API: every aggregator-side expression of the
dashboards and alerts returns data, every rule evaluates cleanly, and the Docker/Kubernetes
relabelling keeps the right containers/pods and labels them as the dashboards expect."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import fl.contract as contract
from dashboards.lint import METRIC_TOKEN
from dashboards.prometheus import prometheus_config
from dashboards.queries import all_expressions
from dashboards.render import render_all, to_yaml
from fl.metrics_api import RunConfig, create_app
from fl.metrics_api.server import BackgroundServer
from tests.test_metrics_api import ATTACKER, make_cert, sample_round

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed")
NODE_ONLY = {v for k, v in vars(contract).items() if k.startswith("NODE_METRIC_")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api_get(port: int, path: str, **params: str) -> Any:
    url = f"http://127.0.0.1:{port}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def wait_for(check: Any, what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except OSError:
            pass
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


def sd_as_file(job: dict[str, Any], name: str, sd_key: str, targets_file: Path) -> dict[str, Any]:
    """The job with its service discovery replaced by a file of targets carrying the same
    meta labels Docker/Kubernetes discovery would attach."""
    rest = {k: v for k, v in job.items() if k != sd_key}
    return {
        **rest,
        "job_name": name,
        "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "1s"}],
    }


def meta_targets() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    docker = [
        {
            "targets": ["ignored:1"],
            "labels": {
                "__meta_docker_network_name": "smnet",
                "__meta_docker_network_ip": "127.0.0.1",
                "__meta_docker_container_name": "/sm-metrics-api",
                "__meta_docker_container_label_app_kubernetes_io_component": "metrics-api",
            },
        },
        {
            "targets": ["ignored:2"],
            "labels": {  # same container seen on another network
                "__meta_docker_network_name": "bridge",
                "__meta_docker_network_ip": "10.9.9.9",
                "__meta_docker_container_name": "/sm-metrics-api",
                "__meta_docker_container_label_app_kubernetes_io_component": "metrics-api",
            },
        },
        {
            "targets": ["ignored:3"],
            "labels": {
                "__meta_docker_network_name": "smnet",
                "__meta_docker_network_ip": "127.0.0.2",
                "__meta_docker_container_name": "/sm-node-3",
                "__meta_docker_container_label_app_kubernetes_io_component": "node",
                "__meta_docker_container_label_sovereign_map_node_id": "node-3",
            },
        },
        {
            "targets": ["ignored:4"],
            "labels": {
                "__meta_docker_network_name": "smnet",
                "__meta_docker_network_ip": "127.0.0.3",
                "__meta_docker_container_name": "/sm-node-4",
                "__meta_docker_container_label_app_kubernetes_io_component": "node",
            },
        },
        {
            "targets": ["ignored:5"],
            "labels": {
                "__meta_docker_network_name": "smnet",
                "__meta_docker_network_ip": "127.0.0.4",
                "__meta_docker_container_name": "/sm-grafana",
                "__meta_docker_container_label_app_kubernetes_io_component": "grafana",
            },
        },
    ]
    kubernetes = [
        {
            "targets": ["ignored:1"],
            "labels": {
                "__meta_kubernetes_namespace": "sm",
                "__meta_kubernetes_pod_phase": "Running",
                "__meta_kubernetes_pod_ip": "127.0.0.1",
                "__meta_kubernetes_pod_name": "metrics-api-0",
                "__meta_kubernetes_pod_label_app_kubernetes_io_component": "metrics-api",
            },
        },
        {
            "targets": ["ignored:2"],
            "labels": {
                "__meta_kubernetes_namespace": "sm",
                "__meta_kubernetes_pod_phase": "Running",
                "__meta_kubernetes_pod_ip": "127.0.0.5",
                "__meta_kubernetes_pod_name": "node-7",
                "__meta_kubernetes_pod_label_app_kubernetes_io_component": "node",
                "__meta_kubernetes_pod_label_sovereign_map_node_id": "node-7",
            },
        },
        {
            "targets": ["ignored:3"],
            "labels": {
                "__meta_kubernetes_namespace": "sm",
                "__meta_kubernetes_pod_phase": "Pending",
                "__meta_kubernetes_pod_ip": "127.0.0.6",
                "__meta_kubernetes_pod_name": "node-8",
                "__meta_kubernetes_pod_label_app_kubernetes_io_component": "node",
            },
        },
    ]
    return docker, kubernetes


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("e2e")
    store_path = tmp / "metrics.sqlite"
    from fl.metrics_store import MetricsStore

    store = MetricsStore(store_path)
    t0 = time.time() - 600
    for n in range(1, 11):
        store.append(sample_round(n, t0=t0))
    certs = tmp / "pki"
    make_cert(certs, "ca.crt", "Sovereign Map CA", days=365)
    config = RunConfig(
        rounds_planned=50, nodes_expected=5, epsilon_budget=8.0, attacks={ATTACKER: "sign-flip"}
    )
    app = create_app(store_path, certs, run_config=config)
    with BackgroundServer(app, "127.0.0.1", 0, threads=4) as api_port:
        prom_port = free_port()
        out = tmp / "monitoring"
        render_all(
            out,
            "devnet",
            metrics_api_port=api_port,
            prometheus_port=prom_port,
            alertmanager_port=None,
        )
        prom = prometheus_config(
            "devnet", metrics_api_port=api_port, prometheus_port=prom_port, alertmanager_port=None
        )
        prom["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
        docker_targets, k8s_targets = meta_targets()
        (tmp / "docker.json").write_text(json.dumps(docker_targets))
        (tmp / "k8s.json").write_text(json.dumps(k8s_targets))
        docker = prometheus_config("docker", network="smnet", metrics_api_port=api_port)
        k8s = prometheus_config("kubernetes", namespace="sm", metrics_api_port=api_port)
        for prefix, cfg, key, file in (
            ("docker", docker, "docker_sd_configs", "docker.json"),
            ("k8s", k8s, "kubernetes_sd_configs", "k8s.json"),
        ):
            for job in cfg["scrape_configs"]:
                if key in job:
                    prom["scrape_configs"].append(
                        sd_as_file(job, f"{prefix}/{job['job_name']}", key, tmp / file)
                    )
        (out / "prometheus" / "prometheus.yml").write_text(to_yaml(prom))
        proc = subprocess.Popen(
            [
                PROMETHEUS or "prometheus",
                f"--config.file={out / 'prometheus' / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--log.level=warn",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(
                lambda: api_get(
                    prom_port,
                    "/api/v1/query",
                    query=f"count_over_time({contract.METRIC_ROUND}[1m]) >= 3",
                )["result"],
                "three scrapes of the metrics API",
            )
            for n in range(11, 14):  # rounds keep coming while Prometheus watches
                store.append(sample_round(n, t0=t0))
                time.sleep(1.2)
            wait_for(
                lambda: api_get(prom_port, "/api/v1/query", query=f"{contract.METRIC_ROUND} == 13")[
                    "result"
                ],
                "round 13 to be scraped",
            )
            time.sleep(2.5)  # let rules evaluate on the new samples
            yield {"prom_port": prom_port, "api_port": api_port}
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def needs_nodes(expr: str) -> bool:
    return bool(set(METRIC_TOKEN.findall(expr)) & NODE_ONLY) or (
        f'job="{contract.PROM_JOB_NODES}"' in expr and " or " not in expr
    )


def test_every_aggregator_expression_returns_data(stack: dict[str, Any]) -> None:
    empty = []
    checked = 0
    for where, expr in all_expressions():
        if needs_nodes(expr):
            continue
        checked += 1
        if not api_get(stack["prom_port"], "/api/v1/query", query=expr)["result"]:
            empty.append((where, expr))
    assert checked >= 35
    assert empty == []


def test_rates_see_the_rounds_that_arrived(stack: dict[str, Any]) -> None:
    result = api_get(
        stack["prom_port"], "/api/v1/query", query=f"increase({contract.METRIC_ROUNDS_TOTAL}[1m])"
    )["result"]
    assert float(result[0]["value"][1]) > 0


def test_every_rule_evaluates_without_error(stack: dict[str, Any]) -> None:
    groups = api_get(stack["prom_port"], "/api/v1/rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == 9
    assert [(r["name"], r["lastError"]) for r in rules if r["health"] != "ok"] == []


def test_only_the_alert_the_data_calls_for_is_active(stack: dict[str, Any]) -> None:
    # the sample run: in odd rounds 1 update is rejected and 1 of 5 ignored, 2/6 > 0.3;
    # accuracy rises, rounds arrive, ε is at 5.2 of 8, certificates are far from expiry
    alerts = api_get(stack["prom_port"], "/api/v1/alerts")["alerts"]
    assert {a["labels"]["alertname"] for a in alerts} == {"SovereignMapByzantineShareHigh"}


def targets(stack: dict[str, Any], job: str) -> list[dict[str, str]]:
    active = api_get(stack["prom_port"], "/api/v1/targets", state="active")["activeTargets"]
    return sorted(
        (t["labels"] for t in active if t["labels"]["job"] == job),
        key=lambda labels: labels["instance"],
    )


def test_docker_relabelling_keeps_the_stack_and_names_nodes(stack: dict[str, Any]) -> None:
    api = targets(stack, f"docker/{contract.PROM_JOB_METRICS_API}")
    assert [t["instance"] for t in api] == [f"127.0.0.1:{stack['api_port']}"]  # one network
    nodes = targets(stack, f"docker/{contract.PROM_JOB_NODES}")
    port = contract.NODE_METRICS_PORT
    assert [(t["instance"], t["node"]) for t in nodes] == [
        (f"127.0.0.2:{port}", "node-3"),
        (f"127.0.0.3:{port}", "sm-node-4"),
    ]


def test_kubernetes_relabelling_keeps_running_pods_and_names_nodes(stack: dict[str, Any]) -> None:
    api = targets(stack, f"k8s/{contract.PROM_JOB_METRICS_API}")
    assert [(t["instance"], t["pod"], t["namespace"]) for t in api] == [
        (f"127.0.0.1:{stack['api_port']}", "metrics-api-0", "sm")
    ]
    nodes = targets(stack, f"k8s/{contract.PROM_JOB_NODES}")
    assert [(t["instance"], t["node"]) for t in nodes] == [
        (f"127.0.0.5:{contract.NODE_METRICS_PORT}", "node-7")
    ]
