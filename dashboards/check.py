"""Validate rendered files with the tools that read them: promtool and amtool."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from dashboards.lint import lint

# Debian's prometheus/promtool is built without Kubernetes service discovery.
NO_KUBERNETES_SD = "field kubernetes_sd_configs not found"


@dataclass(frozen=True)
class CheckResult:
    what: str
    ok: bool | None  # None: the tool is not installed, nothing was checked
    output: str
    note: str = ""  # what was checked differently, if anything


def run_tool(what: str, tool: str, *args: str | Path, timeout: float = 120) -> CheckResult:
    executable = shutil.which(tool)
    if executable is None:
        return CheckResult(what, None, f"{tool} not found on PATH; skipped")
    try:
        result = subprocess.run(
            [executable, *map(str, args)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return CheckResult(what, False, f"{tool} did not finish in {timeout:.0f} s")
    return CheckResult(what, result.returncode == 0, (result.stdout + result.stderr).strip())


def check_rendered(out_dir: Path) -> list[CheckResult]:
    """``promtool check config`` (which also checks the rule files it names),
    ``promtool check rules`` and ``amtool check-config`` on a ``render_all`` output."""
    prometheus_yml = out_dir / "prometheus" / "prometheus.yml"
    rules = sorted((out_dir / "prometheus" / "rules").glob("*.yml"))
    alertmanager_yml = out_dir / "alertmanager" / "alertmanager.yml"
    missing = [p for p in (prometheus_yml, alertmanager_yml) if not p.is_file()]
    if missing or not rules:
        names = ", ".join(str(p) for p in missing) or "prometheus/rules/*.yml"
        return [CheckResult("rendered files", False, f"missing {names}; run render first")]
    return [
        check_prometheus_config(prometheus_yml),
        run_tool("alert rules", "promtool", "check", "rules", *rules),
        run_tool("alertmanager config", "amtool", "check-config", alertmanager_yml),
        lint_rendered(out_dir),
    ]


def lint_rendered(out_dir: Path) -> CheckResult:
    """PromQL lint (``dashboards.lint``) of every panel target and rule in ``out_dir``."""
    exprs: list[tuple[str, str]] = []
    try:
        for path in sorted((out_dir / "grafana" / "dashboards").glob("*.json")):
            for panel in json.loads(path.read_text(encoding="utf-8")).get("panels", []):
                for item in [panel, *panel.get("panels", [])]:
                    exprs += [
                        (f"{path.name} / {item.get('title')}", t.get("expr", ""))
                        for t in item.get("targets") or []
                    ]
        for path in sorted((out_dir / "prometheus" / "rules").glob("*.yml")):
            for group in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("groups", []):
                exprs += [
                    (f"{path.name} / {r.get('alert') or r.get('record')}", r["expr"])
                    for r in group.get("rules", [])
                ]
    except (OSError, ValueError, KeyError, AttributeError, yaml.YAMLError) as exc:
        return CheckResult("promql lint", False, f"cannot read rendered files: {exc}")
    problems = [f"{where}: {problem}" for where, expr in exprs for problem in lint(expr)]
    return CheckResult(
        "promql lint", not problems, "\n".join(problems) or f"{len(exprs)} expressions"
    )


def without_kubernetes_sd(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with each ``kubernetes_sd_configs`` replaced by an empty static config, so a
    promtool without Kubernetes discovery can still check everything else (relabelling, …)."""

    def strip(section: dict[str, Any]) -> dict[str, Any]:
        if "kubernetes_sd_configs" not in section:
            return section
        rest = {k: v for k, v in section.items() if k != "kubernetes_sd_configs"}
        return {**rest, "static_configs": [{"targets": []}]}

    stripped = dict(config)
    stripped["scrape_configs"] = [strip(job) for job in config.get("scrape_configs", [])]
    alerting = config.get("alerting")
    if alerting:
        stripped["alerting"] = {
            **alerting,
            "alertmanagers": [strip(am) for am in alerting.get("alertmanagers", [])],
        }
    return stripped


def check_prometheus_config(path: Path) -> CheckResult:
    """``promtool check config``; with a promtool built without Kubernetes discovery, the
    config is checked with its Kubernetes discovery blocks replaced (and says so)."""
    result = run_tool("prometheus config", "promtool", "check", "config", path)
    if result.ok is not False or NO_KUBERNETES_SD not in result.output:
        return result
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "prometheus"
        shutil.copytree(path.parent, copy)
        (copy / path.name).write_text(yaml.safe_dump(without_kubernetes_sd(config)))
        retry = run_tool("prometheus config", "promtool", "check", "config", copy / path.name)
    note = (
        "this promtool has no Kubernetes service discovery (Debian build): checked with "
        "kubernetes_sd_configs replaced by empty static configs"
    )
    return replace(retry, note=note)
