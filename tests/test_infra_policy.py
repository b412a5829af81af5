"""The policy pack: each policy on a passing and a violating resource (validation functions
called directly with fake arguments), and every resource of every stack passes them all."""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.test_infra_runs import COMBINATIONS, stack_run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "policy"))
import sovereign_map_policies as policies

KEY = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----\n"


@dataclass
class FakeArgs:
    resource_type: str
    props: Mapping[str, Any]
    name: str = "thing"
    urn: str = "urn:pulumi:prod::sovereign-map::some:type::thing"
    config: Mapping[str, Any] = field(default_factory=dict)

    def get_config(self) -> Mapping[str, Any]:
        return self.config


def violations(validate, args: FakeArgs) -> list[str]:
    found: list[str] = []
    validate(args, lambda message, urn=None: found.append(message))
    return found


def statefulset(
    *,
    limits: dict | None = None,
    image: str = "ghcr.io/acme/app:1.0",
    component: str = "node",
    claims: bool = False,
    init_limits: dict | None = None,
) -> dict:
    container = {"name": "main", "image": image, "resources": {"limits": limits or {}}}
    spec: dict[str, Any] = {
        "template": {
            "metadata": {"labels": {"app.kubernetes.io/component": component}},
            "spec": {"containers": [container]},
        }
    }
    if init_limits is not None:
        spec["template"]["spec"]["initContainers"] = [
            {"name": "init", "image": image, "resources": {"limits": init_limits}}
        ]
    if claims:
        spec["volumeClaimTemplates"] = [{"metadata": {"name": "data"}}]
    return {"spec": spec}


LIMITED = {"cpu": "500m", "memory": "512Mi"}
STS = "kubernetes:apps/v1:StatefulSet"
CONTAINER = "docker:index/container:Container"


# ------------------------------------------------------------------ resource-limits
def test_limits_pass_on_limited_workloads() -> None:
    check = policies.validate_resource_limits
    assert violations(check, FakeArgs(STS, statefulset(limits=LIMITED, init_limits=LIMITED))) == []
    assert violations(check, FakeArgs(CONTAINER, {"memory": 512, "cpus": "0.5"})) == []
    assert violations(check, FakeArgs("kubernetes:core/v1:ConfigMap", {"data": {}})) == []


def test_limits_violations() -> None:
    check = policies.validate_resource_limits
    assert len(violations(check, FakeArgs(STS, statefulset(limits={"cpu": "1"})))) == 1
    assert (
        "no memory limit" in violations(check, FakeArgs(STS, statefulset(limits={"cpu": "1"})))[0]
    )
    init = violations(check, FakeArgs(STS, statefulset(limits=LIMITED, init_limits={})))
    assert init and "'init'" in init[0]
    assert len(violations(check, FakeArgs(CONTAINER, {"image": "x:1"}))) == 2
    cron = {
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}}
    }
    assert violations(check, FakeArgs("kubernetes:batch/v1:CronJob", cron))


# ------------------------------------------------------------------ private keys
def test_private_keys_pass_in_secrets_and_private_uploads() -> None:
    check = policies.validate_private_keys
    assert (
        violations(check, FakeArgs("kubernetes:core/v1:Secret", {"stringData": {"tls.key": KEY}}))
        == []
    )
    upload = {"uploads": [{"file": "/etc/tls/tls.key", "content": KEY, "permissions": "0640"}]}
    assert violations(check, FakeArgs(CONTAINER, upload)) == []


def test_private_keys_violations() -> None:
    check = policies.validate_private_keys
    in_config_map = violations(
        check, FakeArgs("kubernetes:core/v1:ConfigMap", {"data": {"tls.key": KEY}})
    )
    assert in_config_map and "data.tls.key" in in_config_map[0]
    world_readable = {"uploads": [{"file": "/k", "content": KEY, "permissions": "0644"}]}
    assert violations(check, FakeArgs(CONTAINER, world_readable))
    in_env = {"envs": [f"TLS_KEY={KEY}"]}
    assert violations(check, FakeArgs(CONTAINER, in_env))
    in_pod_env = statefulset(limits=LIMITED)
    in_pod_env["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "K", "value": KEY}]
    assert violations(check, FakeArgs(STS, in_pod_env))


# ------------------------------------------------------------------ image tags
@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/acme/app:1.2.3",
        "prom/prometheus:v3.5.0",
        "registry:5000/app:2",
        "sha256:" + "a" * 64,
        "ghcr.io/acme/app@sha256:" + "b" * 64,
    ],
)
def test_pinned_images_pass(image: str) -> None:
    check = policies.validate_image_tags
    assert violations(check, FakeArgs(STS, statefulset(limits=LIMITED, image=image))) == []
    assert violations(check, FakeArgs(CONTAINER, {"image": image})) == []


@pytest.mark.parametrize(
    "image", ["ghcr.io/acme/app:latest", "ghcr.io/acme/app", "registry:5000/app", "busybox"]
)
def test_unpinned_images_violate(image: str) -> None:
    check = policies.validate_image_tags
    assert violations(check, FakeArgs(STS, statefulset(limits=LIMITED, image=image)))
    assert violations(check, FakeArgs(CONTAINER, {"image": image}))
    assert violations(check, FakeArgs("docker:index/remoteImage:RemoteImage", {"name": image}))
    assert violations(check, FakeArgs("docker:index/image:Image", {"imageName": image}))


# ------------------------------------------------------------------ persistent volumes
def test_stateful_parts_need_volumes_in_prod() -> None:
    check = policies.validate_persistent_volumes
    without = FakeArgs(STS, statefulset(limits=LIMITED, component="prometheus"))
    assert violations(check, without)
    assert (
        violations(
            check, FakeArgs(STS, statefulset(limits=LIMITED, component="prometheus", claims=True))
        )
        == []
    )
    pvc_volume = statefulset(limits=LIMITED, component="grafana")
    pvc_volume["spec"]["template"]["spec"]["volumes"] = [
        {"name": "d", "persistentVolumeClaim": {"claimName": "g"}}
    ]
    assert violations(check, FakeArgs(STS, pvc_volume)) == []
    docker_labels = [{"label": "app.kubernetes.io/component", "value": "aggregator"}]
    assert violations(check, FakeArgs(CONTAINER, {"labels": docker_labels}))
    named = {
        "labels": docker_labels,
        "volumes": [{"volumeName": "state", "containerPath": "/var/lib"}],
    }
    assert violations(check, FakeArgs(CONTAINER, named)) == []


def test_persistent_volumes_only_where_configured() -> None:
    check = policies.validate_persistent_volumes
    staging = FakeArgs(
        STS,
        statefulset(limits=LIMITED, component="prometheus"),
        urn="urn:pulumi:staging::sovereign-map::kubernetes:apps/v1:StatefulSet::p",
    )
    assert violations(check, staging) == []
    staging.config = {"stacks": ["prod", "staging"]}
    assert violations(check, staging)
    stateless = FakeArgs(STS, statefulset(limits=LIMITED, component="node"))
    assert violations(check, stateless) == []
    assert policies.stack_of("urn:pulumi:prod::sovereign-map::a$b::c") == "prod"


def test_the_pack_declares_every_policy() -> None:
    built = policies.build_policies()
    assert [p.name for p in built] == list(policies.POLICIES)


# ------------------------------------------------------------------ the real stacks
@pytest.mark.parametrize(("stack", "target"), COMBINATIONS)
def test_every_resource_of_every_stack_passes(stack: str, target: str) -> None:
    found: list[str] = []
    for resource in stack_run(stack, target).resources:
        args = FakeArgs(
            resource.type,
            resource.inputs,
            resource.name,
            f"urn:pulumi:{stack}::sovereign-map::{resource.type}::{resource.name}",
        )
        for name, (_, validate) in policies.POLICIES.items():
            validate(args, lambda message, urn=None, name=name: found.append(f"{name}: {message}"))
    assert found == []


def test_a_real_resource_with_its_limits_removed_violates() -> None:
    node = stack_run("local", "kubernetes").named(STS, "node-fleet")
    props = copy.deepcopy(node.inputs)
    del props["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert violations(policies.validate_resource_limits, FakeArgs(STS, props, "node-fleet"))
