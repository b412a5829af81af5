"""Prometheus configuration per target, checked by ``promtool check config``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from dashboards.check import check_prometheus_config, check_rendered, without_kubernetes_sd
from dashboards.cli import monitoring
from dashboards.prometheus import node_ports_for, prometheus_config
from dashboards.render import render_all, to_yaml
from fl.contract import PROM_JOB_METRICS_API, PROM_JOB_NODES

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed"
)
KWARGS: dict[str, dict[str, Any]] = {
    "devnet": {"metrics_api_port": 18000, "node_ports": node_ports_for(3, 19101)},
    "docker": {"network": "sovereign-map-local", "stack": "local"},
    "kubernetes": {"namespace": "sovereign-map", "stack": "prod"},
}


def job(config: dict[str, Any], name: str) -> dict[str, Any]:
    return next(j for j in config["scrape_configs"] if j["job_name"] == name)


def write(tmp_path: Path, config: dict[str, Any]) -> Path:
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "empty.yml").write_text("groups: []\n")
    path = tmp_path / "prometheus.yml"
    path.write_text(to_yaml(config))
    return path


@needs_promtool
@pytest.mark.parametrize("target", sorted(KWARGS))
def test_config_passes_promtool(tmp_path: Path, target: str) -> None:
    result = check_prometheus_config(write(tmp_path, prometheus_config(target, **KWARGS[target])))
    assert result.ok, result.output


@needs_promtool
def test_promtool_rejects_a_broken_relabel_rule(tmp_path: Path) -> None:
    config = prometheus_config("docker", **KWARGS["docker"])
    job(config, PROM_JOB_NODES)["relabel_configs"][0]["regex"] = "(unclosed"
    assert check_prometheus_config(write(tmp_path, config)).ok is False


def test_devnet_scrapes_each_node_on_127_0_0_1_with_its_id() -> None:
    config = prometheus_config("devnet", **KWARGS["devnet"])
    nodes = job(config, PROM_JOB_NODES)["static_configs"]
    assert [(n["targets"], n["labels"]["node"]) for n in nodes] == [
        (["127.0.0.1:19101"], "node-0"),
        (["127.0.0.1:19102"], "node-1"),
        (["127.0.0.1:19103"], "node-2"),
    ]
    assert job(config, PROM_JOB_METRICS_API)["static_configs"][0]["targets"] == ["127.0.0.1:18000"]
    assert config["rule_files"] == ["rules/*.yml"]


def test_docker_filters_by_stack_labels_and_network() -> None:
    config = prometheus_config("docker", **KWARGS["docker"])
    nodes = job(config, PROM_JOB_NODES)
    sd = nodes["docker_sd_configs"][0]
    assert sd["filters"] == [
        {"name": "label", "values": ["app.kubernetes.io/part-of=sovereign-map"]}
    ]
    relabel = nodes["relabel_configs"]
    assert {
        "source_labels": ["__meta_docker_network_name"],
        "regex": "sovereign-map-local",
        "action": "keep",
    } in relabel
    assert {
        "source_labels": ["__meta_docker_container_label_app_kubernetes_io_component"],
        "regex": "node",
        "action": "keep",
    } in relabel
    assert config["global"]["external_labels"] == {"stack": "local"}


def test_kubernetes_discovers_pods_in_the_namespace() -> None:
    config = prometheus_config("kubernetes", **KWARGS["kubernetes"])
    api = job(config, PROM_JOB_METRICS_API)
    assert api["kubernetes_sd_configs"] == [
        {"role": "pod", "namespaces": {"names": ["sovereign-map"]}}
    ]
    assert {
        "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_component"],
        "regex": "metrics-api",
        "action": "keep",
    } in api["relabel_configs"]
    endpoints = prometheus_config("kubernetes", namespace="x", role="endpoints")
    assert job(endpoints, PROM_JOB_NODES)["kubernetes_sd_configs"][0]["role"] == "endpoints"


@pytest.mark.parametrize(
    ("target", "kwargs", "message"),
    [
        ("kubernetes", {}, "namespace"),
        ("kubernetes", {"namespace": "x", "role": "service"}, "role"),
        ("devnet", {"node_ports": {"node-0": 70000}}, "ports"),
        ("devnet", {"namespace": "x"}, "devnet"),
        ("swarm", {}, "target must be one of"),
    ],
)
def test_bad_arguments_are_refused_clearly(
    target: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        prometheus_config(target, **kwargs)  # type: ignore[arg-type]


def test_returned_dicts_share_nothing() -> None:
    config = prometheus_config("docker", **KWARGS["docker"])
    job(config, PROM_JOB_NODES)["docker_sd_configs"][0]["host"] = "tcp://elsewhere"
    assert job(config, PROM_JOB_METRICS_API)["docker_sd_configs"][0]["host"].startswith("unix")
    assert "&id" not in to_yaml(config)


def test_without_kubernetes_sd_keeps_relabelling() -> None:
    config = prometheus_config("kubernetes", **KWARGS["kubernetes"])
    stripped = without_kubernetes_sd(config)
    assert "kubernetes_sd_configs" not in yaml.safe_dump(stripped)
    assert (
        job(stripped, PROM_JOB_NODES)["relabel_configs"]
        == job(config, PROM_JOB_NODES)["relabel_configs"]
    )


@needs_promtool
@pytest.mark.parametrize("target", sorted(KWARGS))
def test_render_all_writes_files_that_pass_every_check(tmp_path: Path, target: str) -> None:
    kwargs = dict(KWARGS[target])
    namespace = kwargs.pop("namespace", None)
    written = render_all(
        tmp_path,
        target,
        namespace=namespace,  # type: ignore[arg-type]
        webhook_url="https://hooks.example.org/x",
        **kwargs,
    )
    assert tmp_path / "prometheus" / "prometheus.yml" in written
    assert len([p for p in written if p.suffix == ".json"]) == 3
    results = check_rendered(tmp_path)
    assert [r.what for r in results] == [
        "prometheus config",
        "alert rules",
        "alertmanager config",
        "promql lint",
    ]
    for result in results:
        assert result.ok is not False, (result.what, result.output)


@needs_promtool
def test_monitoring_cli_renders_and_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        monitoring,
        [
            "render",
            "--out",
            str(tmp_path),
            "--target",
            "devnet",
            "--nodes",
            "2",
            "--node",
            "edge-7=9200",
        ],
    )
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((tmp_path / "prometheus" / "prometheus.yml").read_text())
    assert [c["labels"]["node"] for c in job(config, PROM_JOB_NODES)["static_configs"]] == [
        "edge-7",
        "node-0",
        "node-1",
    ]
    result = runner.invoke(monitoring, ["check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "alert rules: ok" in result.output
    (tmp_path / "alertmanager" / "alertmanager.yml").write_text("route: {receiver: nobody}\n")
    result = runner.invoke(monitoring, ["check", str(tmp_path)])
    assert result.exit_code == 1
    assert "alertmanager config: FAILED" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "kubernetes"], "--namespace"),
        (["--target", "docker", "--nodes", "3"], "only apply to --target devnet"),
        (["--target", "devnet", "--node", "node-0:9101"], "NODE_ID=PORT"),
        (["--target", "devnet", "--webhook-url", "nope"], "webhook URL"),
    ],
)
def test_monitoring_cli_refuses_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(monitoring, ["render", "--out", str(tmp_path), *args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("target", ["docker", "kubernetes"])
def test_metrics_api_may_run_in_the_aggregators_container(target: str) -> None:
    config = prometheus_config(
        target,
        metrics_api_component="aggregator",  # type: ignore[arg-type]
        **KWARGS[target],
    )
    keeps = [
        r["regex"]
        for r in job(config, PROM_JOB_METRICS_API)["relabel_configs"]
        if r.get("action") == "keep" and "component" in r["source_labels"][0]
    ]
    assert keeps == ["aggregator"]
