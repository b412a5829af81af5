"""Every Kubernetes object the program creates validates against the Kubernetes OpenAPI
schema (strict: unknown fields are errors), for each stack."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest

from tests.test_infra_runs import STACKS, stack_run

KUBERNETES_VERSION = "1.33.0"


def manifests(stack: str) -> list[dict[str, Any]]:
    """The recorded inputs of each Kubernetes resource are its manifest (apiVersion, kind,
    metadata, spec/data/…), exactly what the provider sends to the API server."""
    found = []
    for resource in stack_run(stack, "kubernetes").resources:
        if (
            resource.type.startswith("kubernetes:")
            and resource.type != "pulumi:providers:kubernetes"
        ):
            found.append(resource.inputs)
    return found


def validate(manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("stack", STACKS)
def test_every_object_validates(stack: str) -> None:
    objects = manifests(stack)
    kinds = {m["kind"] for m in objects}
    assert {
        "Namespace",
        "Secret",
        "ConfigMap",
        "Service",
        "StatefulSet",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "ServiceAccount",
        "Role",
        "RoleBinding",
    } <= kinds
    problems = []
    for manifest in objects:
        try:
            validate(manifest)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{manifest['kind']}/{manifest['metadata'].get('name')}: {exc.message}")
    assert problems == []


def test_the_validator_rejects_what_the_api_server_would() -> None:
    """A control: the same check fails on broken copies of a real object."""
    statefulset = next(m for m in manifests("local") if m["kind"] == "StatefulSet")
    validate(statefulset)
    wrong_type = copy.deepcopy(statefulset)
    wrong_type["spec"]["replicas"] = "five"
    unknown_field = copy.deepcopy(statefulset)
    unknown_field["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    for broken in (wrong_type, unknown_field):
        with pytest.raises(kubernetes_validate.ValidationError):
            validate(broken)
