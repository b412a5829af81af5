"""Program runs under mocks, shared by the infra tests (each stack × target runs once per
test session), and a check that a run is really re-run, not cached, when config changes."""

from __future__ import annotations

import runpy
from functools import cache
from pathlib import Path

import pulumi
import pulumi.runtime
from pulumi.runtime.settings import get_root_resource

from infra.mocked import ProgramRun, RecordingMocks, config_map, run_stack
from infra.stacks.keys import NAMESPACE

STACKS = ("local", "staging", "prod")
TARGETS = ("docker", "kubernetes")
COMBINATIONS = [(stack, target) for stack in STACKS for target in TARGETS]
SECRETS = {"grafanaAdminPassword": "correct-horse-battery"}


@cache
def stack_run(stack: str, target: str) -> ProgramRun:
    """``Pulumi.<stack>.yaml`` with ``target`` set, run once and remembered."""
    return run_stack(stack, {"target": target}, SECRETS)


def test_overrides_change_what_the_program_creates() -> None:
    three = run_stack("local", {"nodes": {"count": 3}}, SECRETS)
    assert three.outputs["nodeCount"] == 3
    assert len(three.of_type("docker:index/container:Container")) == 3 + 5
    assert stack_run("local", "docker").outputs["nodeCount"] == 5


def test_the_entry_point_exports_the_stack_outputs() -> None:
    """``infra/__main__.py`` as the Pulumi language host runs it (``runpy.run_path``)."""
    root = Path(__file__).resolve().parents[1]
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project=NAMESPACE, stack="local", preview=False)
    pulumi.runtime.set_all_config(
        config_map({"nodes": {"count": 2}}, SECRETS),
        [f"{NAMESPACE}:grafanaAdminPassword"],
    )

    @pulumi.runtime.test
    def program() -> None:
        runpy.run_path(str(root / "infra" / "__main__.py"), run_name="__main__")

    program()
    exported = get_root_resource().outputs
    assert {
        "metricsApiUrl",
        "aggregatorAddress",
        "grafanaUrl",
        "prometheusUrl",
        "alertmanagerUrl",
        "caCertificate",
        "nodeCount",
        "certificateExpiry",
    } <= set(exported)
    assert sum(r.type == "docker:index/container:Container" for r in mocks.resources) == 2 + 5
