"""The files around the program: Pulumi.yaml, the stack files, the Dockerfile, the policy
pack's manifest and the preview workflow say what the program and the docs rely on."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from fl.contract import (
    AGGREGATOR_PORT,
    DATA_MOUNT,
    ENV_DATA_DIR,
    METRICS_API_PORT,
    NODE_METRICS_PORT,
)
from infra.components.common import APP_UID
from infra.stacks.keys import NAMESPACE

ROOT = Path(__file__).resolve().parents[1]


def test_project_file_runs_infra_in_the_repository_venv() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == NAMESPACE  # config keys are `sovereign-map:<key>`
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"
    assert project["main"].rstrip("/") == "infra"
    assert (ROOT / project["main"] / "__main__.py").is_file()


def test_stack_files_hold_only_project_keys_and_no_secrets() -> None:
    for stack in ("local", "staging", "prod"):
        document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
        keys = list(document["config"])
        assert keys and all(key.startswith(f"{NAMESPACE}:") for key in keys)
        assert not any(
            "Password" in key or "secure" in str(value) for key, value in document["config"].items()
        )


def test_dockerfile_is_multi_stage_pinned_and_non_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)\s+AS\s+(\S+)", text, re.MULTILINE)
    assert [name for _, name in stages] == ["build", "runtime"]
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", text, re.MULTILINE)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base.group(1))
    assert re.search(r"^ARG TORCH_VERSION=2\.13\.0$", text, re.MULTILINE)
    assert "download.pytorch.org/whl/cpu" in text
    torch_line = text.index('pip install "torch==${TORCH_VERSION}"')
    assert torch_line < text.index('pip install ".[fl]"')  # CPU torch first, kept by .[fl]
    assert re.search(rf"^ARG APP_UID={APP_UID}$", text, re.MULTILINE)  # the uid infra runs as
    runtime = text[text.index("AS runtime") :]
    assert re.search(r"^USER \$\{APP_UID\}:\$\{APP_UID\}$", runtime, re.MULTILINE)
    assert f"{ENV_DATA_DIR}={DATA_MOUNT}" in runtime
    exposed = re.search(r"^EXPOSE (.+)$", runtime, re.MULTILINE)
    assert exposed and {int(p) for p in exposed.group(1).split()} == {
        AGGREGATOR_PORT,
        METRICS_API_PORT,
        NODE_METRICS_PORT,
    }


def test_dockerignore_sends_only_what_the_image_needs() -> None:
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "**"
    included = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert included == {"pyproject.toml", "README.md", "fl", "certs", "dashboards"}
    text = (ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (?!--from)(\S+)", text, re.MULTILINE))
    assert copied <= included | {"pyproject.toml"}


def test_policy_pack_manifest() -> None:
    manifest = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    assert manifest["version"]
    assert (ROOT / "policy" / "__main__.py").is_file()


def test_preview_workflow_previews_every_stack_on_both_targets() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "preview.yml").read_text())
    triggers = workflow.get("on") or workflow.get(True)  # YAML 1.1 reads `on` as True
    assert "pull_request" in triggers
    [job] = workflow["jobs"].values()
    matrix = job["strategy"]["matrix"]
    assert matrix["stack"] == ["local", "staging", "prod"]
    assert matrix["target"] == ["docker", "kubernetes"]
    scripts = "\n".join(step.get("run", "") for step in job["steps"])
    assert "pip install -e '.[infra]'" in scripts
    assert "pulumi login --local" in scripts
    assert 'pulumi config set target "${{ matrix.target }}"' in scripts
    assert re.search(
        r"pulumi preview --stack \"\$\{\{ matrix\.stack \}\}\" --policy-pack policy", scripts
    )


def test_docs_cover_the_lifecycle() -> None:
    text = (ROOT / "docs" / "pulumi.md").read_text()
    for command in (
        "pulumi login --local",
        "pulumi up --stack local",
        "pulumi up --stack staging",
        "pulumi up --stack prod",
        "pulumi stack output",
        "pulumi refresh",
        "pulumi destroy",
        "pulumi config set --secret grafanaAdminPassword",
    ):
        assert command in text, command
