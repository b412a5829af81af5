"""The Prometheus and Alertmanager configuration each stack deploys passes ``promtool check
config`` (with its rule file) and ``amtool check-config`` — the files exactly as uploaded
into the Docker containers or put into the Kubernetes ConfigMap / Secret."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.components.monitoring_config import PROMETHEUS_CONFIG_DIR
from infra.mocked import ProgramRun, run_stack
from tests.test_infra_runs import COMBINATIONS, SECRETS, stack_run

PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")
needs_amtool = pytest.mark.skipif(AMTOOL is None, reason="amtool is not installed")
# Debian's promtool is built without Kubernetes service discovery.
NO_KUBERNETES_SD = "field kubernetes_sd_configs not found"


def prometheus_files(result: ProgramRun) -> dict[str, str]:
    """Relative path under /etc/prometheus → content."""
    if result.outputs["target"] == "docker":
        container = result.named("docker:index/container:Container", "prometheus")
        return {
            u["file"].removeprefix(f"{PROMETHEUS_CONFIG_DIR}/"): u["content"]
            for u in container.inputs["uploads"]
        }
    config_map = result.named("kubernetes:core/v1:ConfigMap", "prometheus-config")
    statefulset = result.named("kubernetes:apps/v1:StatefulSet", "prometheus")
    volume = next(
        v
        for v in statefulset.inputs["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "config"
    )
    data = config_map.inputs["data"]
    return {item["path"]: data[item["key"]] for item in volume["configMap"]["items"]}


def alertmanager_file(result: ProgramRun) -> str:
    if result.outputs["target"] == "docker":
        container = result.named("docker:index/container:Container", "alertmanager")
        [upload] = container.inputs["uploads"]
        return upload["content"]
    secret = result.named("kubernetes:core/v1:Secret", "alertmanager-config")
    return secret.inputs["stringData"]["alertmanager.yml"]


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return root / "prometheus.yml"


def promtool(config: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, "check", "config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def with_static_discovery(document: dict[str, Any]) -> dict[str, Any]:
    """The same configuration with each ``kubernetes_sd_configs`` replaced by a static target,
    for a promtool without Kubernetes discovery: every other part is still checked."""
    document = copy.deepcopy(document)
    blocks = [
        *document.get("scrape_configs", []),
        *document.get("alerting", {}).get("alertmanagers", []),
    ]
    for block in blocks:
        if block.pop("kubernetes_sd_configs", None) is not None:
            block["static_configs"] = [{"targets": ["placeholder:1"]}]
    return document


@needs_promtool
@pytest.mark.parametrize(("stack", "target"), COMBINATIONS)
def test_prometheus_config_passes_promtool(stack: str, target: str, tmp_path: Path) -> None:
    files = prometheus_files(stack_run(stack, target))
    assert set(files) == {"prometheus.yml", "rules/sovereign-map.yml"}
    config = write_tree(tmp_path, files)
    checked = promtool(config)
    if checked.returncode != 0 and NO_KUBERNETES_SD in checked.stderr:
        document = yaml.safe_load(files["prometheus.yml"])
        for job in document["scrape_configs"]:
            for sd in job.get("kubernetes_sd_configs", []):
                assert sd["role"] == "pod" and sd["namespaces"]["names"], job["job_name"]
        config.write_text(yaml.safe_dump(with_static_discovery(document)), encoding="utf-8")
        checked = promtool(config)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout
    assert "rules found" in checked.stdout  # the rule file was found and checked too


@needs_promtool
def test_promtool_catches_a_broken_config(tmp_path: Path) -> None:
    """A control: the same check fails when the configuration is wrong."""
    files = prometheus_files(stack_run("local", "docker"))
    document = yaml.safe_load(files["prometheus.yml"])
    document["scrape_configs"][0]["scrape_interval"] = "every now and then"
    files["prometheus.yml"] = yaml.safe_dump(document)
    assert promtool(write_tree(tmp_path, files)).returncode != 0


@needs_amtool
@pytest.mark.parametrize(
    ("stack", "target", "webhook"),
    [(s, t, None) for s, t in COMBINATIONS]
    + [("prod", "kubernetes", "https://hooks.example.com/a")],
)
def test_alertmanager_config_passes_amtool(
    stack: str, target: str, webhook: str | None, tmp_path: Path
) -> None:
    if webhook is None:
        result = stack_run(stack, target)
    else:
        result = run_stack(stack, {"target": target}, {**SECRETS, "alertWebhookUrl": webhook})
    text = alertmanager_file(result)
    path = tmp_path / "alertmanager.yml"
    path.write_text(text, encoding="utf-8")
    assert AMTOOL is not None
    checked = subprocess.run(
        [AMTOOL, "check-config", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    receivers = yaml.safe_load(text)["receivers"]
    assert ("webhook" in {r["name"] for r in receivers}) is (webhook is not None)
