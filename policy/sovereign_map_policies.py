"""Sovereign Map's policies, as plain validation functions plus the pack that enforces them.

- ``resource-limits``: every workload container (Kubernetes, init containers included) and
  every Docker container has CPU and memory limits.
- ``private-keys-only-in-secrets``: a PEM private key may appear only in a Kubernetes
  Secret, or (Docker has no Secret object outside Swarm) as a container file upload that is
  not world-readable; never in env vars, args, labels, ConfigMaps or any other resource.
- ``no-latest-image-tags``: every image is pinned (a tag other than ``latest``, a digest,
  or a local image ID).
- ``persistent-volumes-in-prod``: in the stacks listed in the policy's ``stacks`` config
  (default ``prod``), the stateful parts (aggregator, Prometheus, Alertmanager, Grafana)
  keep their data on persistent volumes.

Run with ``pulumi preview --policy-pack policy``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from fl.contract import (
    COMPONENT_AGGREGATOR,
    COMPONENT_ALERTMANAGER,
    COMPONENT_GRAFANA,
    COMPONENT_PROMETHEUS,
    LABEL_COMPONENT,
)

ReportViolation = Callable[..., None]

K8S_POD_TEMPLATES = {
    "kubernetes:apps/v1:Deployment",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
    "kubernetes:apps/v1:ReplicaSet",
    "kubernetes:batch/v1:Job",
}
K8S_CRONJOB = "kubernetes:batch/v1:CronJob"
K8S_POD = "kubernetes:core/v1:Pod"
K8S_SECRET = "kubernetes:core/v1:Secret"
DOCKER_CONTAINER = "docker:index/container:Container"
DOCKER_REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
DOCKER_IMAGE = "docker:index/image:Image"
STATEFUL_COMPONENTS = frozenset(
    {COMPONENT_AGGREGATOR, COMPONENT_PROMETHEUS, COMPONENT_ALERTMANAGER, COMPONENT_GRAFANA}
)
DEFAULT_PERSISTENT_STACKS = ("prod",)
PRIVATE_KEY_MARK = "PRIVATE KEY-----"


class ValidationArgs(Protocol):
    """The part of ``pulumi_policy.ResourceValidationArgs`` these policies read."""

    resource_type: str
    props: Mapping[str, Any]
    urn: str
    name: str

    def get_config(self) -> Mapping[str, Any]: ...


# ------------------------------------------------------------------ shapes
def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod spec of a Kubernetes workload (None for other resources)."""
    spec = props.get("spec")
    if not isinstance(spec, Mapping):
        return None
    if resource_type == K8S_POD:
        return spec
    if resource_type in K8S_POD_TEMPLATES:
        template = spec.get("template")
    elif resource_type == K8S_CRONJOB:
        job = spec.get("jobTemplate")
        template = job.get("spec", {}).get("template") if isinstance(job, Mapping) else None
    else:
        return None
    if not isinstance(template, Mapping):
        return None
    inner = template.get("spec")
    return inner if isinstance(inner, Mapping) else None


def containers(spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            if isinstance(container, Mapping):
                yield container


def component_of(resource_type: str, props: Mapping[str, Any]) -> str | None:
    """The ``app.kubernetes.io/component`` label of a workload or Docker container."""
    if resource_type == DOCKER_CONTAINER:
        for label in props.get("labels") or []:
            if isinstance(label, Mapping) and label.get("label") == LABEL_COMPONENT:
                return str(label.get("value"))
        return None
    spec = pod_spec(resource_type, props)
    if spec is None:
        return None
    template = props.get("spec", {}).get("template", {})
    for source in (template.get("metadata", {}), props.get("metadata", {})):
        value = (
            (source.get("labels") or {}).get(LABEL_COMPONENT)
            if isinstance(source, Mapping)
            else None
        )
        if value:
            return str(value)
    return None


def stack_of(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::…`` → ``<stack>``."""
    parts = urn.split("::")
    return parts[0].rsplit(":", 1)[-1] if parts and parts[0].startswith("urn:pulumi:") else ""


def image_problem(image: Any) -> str | None:
    """Why an image reference is not pinned (None when it is, or not known yet)."""
    if not isinstance(image, str) or not image:
        return None  # unknown during preview
    if image.startswith("sha256:") or "@sha256:" in image:
        return None  # a local image ID or a digest
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image!r} has no tag (that means 'latest'); pin a version or a digest"
    if last.rsplit(":", 1)[1] == "latest":
        return f"image {image!r} uses the 'latest' tag; pin a version or a digest"
    return None


def strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a property tree, with its dotted path."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, Sequence) and not isinstance(value, bytes):
        for index, item in enumerate(value):
            yield from strings(item, f"{path}[{index}]")


# ------------------------------------------------------------------ validations
def validate_resource_limits(args: ValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == DOCKER_CONTAINER:
        memory = args.props.get("memory")
        if not memory or (isinstance(memory, int | float) and memory <= 0):
            report_violation(f"container {args.name!r} has no memory limit ('memory')")
        if not args.props.get("cpus") and not args.props.get("cpuQuota"):
            report_violation(f"container {args.name!r} has no CPU limit ('cpus')")
        return
    spec = pod_spec(args.resource_type, args.props)
    if spec is None:
        return
    for container in containers(spec):
        limits = (container.get("resources") or {}).get("limits") or {}
        missing = [kind for kind in ("cpu", "memory") if not limits.get(kind)]
        if missing:
            report_violation(
                f"container {container.get('name')!r} of {args.name!r} has no "
                f"{' and no '.join(missing)} limit"
            )


def validate_private_keys(args: ValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == K8S_SECRET:
        return
    allowed: set[str] = set()
    if args.resource_type == DOCKER_CONTAINER:
        for index, upload in enumerate(args.props.get("uploads") or []):
            mode = str(upload.get("permissions") or "0644") if isinstance(upload, Mapping) else ""
            if len(mode) >= 3 and mode[-1] == "0":
                allowed.add(f"uploads[{index}].content")
    for path, text in strings(args.props):
        if PRIVATE_KEY_MARK in text and path not in allowed:
            report_violation(
                f"a private key in {path!r} of {args.name!r}: keys belong in a Kubernetes "
                f"Secret (or, on Docker, a file upload that is not world-readable)"
            )


def validate_image_tags(args: ValidationArgs, report_violation: ReportViolation) -> None:
    images: list[Any] = []
    if args.resource_type == DOCKER_CONTAINER:
        images.append(args.props.get("image"))
    elif args.resource_type == DOCKER_REMOTE_IMAGE:
        images.append(args.props.get("name"))
    elif args.resource_type == DOCKER_IMAGE:
        images.append(args.props.get("imageName"))
    else:
        spec = pod_spec(args.resource_type, args.props)
        if spec is not None:
            images.extend(container.get("image") for container in containers(spec))
    for image in images:
        problem = image_problem(image)
        if problem:
            report_violation(f"{args.name!r}: {problem}")


def validate_persistent_volumes(args: ValidationArgs, report_violation: ReportViolation) -> None:
    stacks = args.get_config().get("stacks", list(DEFAULT_PERSISTENT_STACKS))
    if stack_of(args.urn) not in stacks:
        return
    component = component_of(args.resource_type, args.props)
    if component not in STATEFUL_COMPONENTS:
        return
    if args.resource_type == DOCKER_CONTAINER:
        volumes = [v for v in args.props.get("volumes") or [] if isinstance(v, Mapping)]
        if not any(v.get("volumeName") for v in volumes):
            report_violation(
                f"{component} container {args.name!r} keeps its data on no named volume"
            )
        return
    spec = pod_spec(args.resource_type, args.props) or {}
    claims = args.props.get("spec", {}).get("volumeClaimTemplates") or []
    claimed = any(
        isinstance(v, Mapping) and v.get("persistentVolumeClaim") for v in spec.get("volumes") or []
    )
    if not claims and not claimed:
        report_violation(f"{component} workload {args.name!r} has no PersistentVolumeClaim")


POLICIES: dict[str, tuple[str, Callable[[ValidationArgs, ReportViolation], None]]] = {
    "resource-limits": (
        "Every workload container has CPU and memory limits.",
        validate_resource_limits,
    ),
    "private-keys-only-in-secrets": (
        "Private keys appear only in Kubernetes Secrets or private Docker file uploads.",
        validate_private_keys,
    ),
    "no-latest-image-tags": (
        "Every image is pinned: no 'latest', no untagged image.",
        validate_image_tags,
    ),
    "persistent-volumes-in-prod": (
        "In production stacks, stateful parts keep their data on persistent volumes.",
        validate_persistent_volumes,
    ),
}


def build_policies() -> list[Any]:
    """The ``ResourceValidationPolicy`` objects (``pulumi_policy`` imported lazily, so the
    validation functions are usable and testable without it)."""
    from pulumi_policy import PolicyConfigSchema, ResourceValidationPolicy

    policies = []
    for name, (description, validate) in POLICIES.items():
        schema = None
        if name == "persistent-volumes-in-prod":
            schema = PolicyConfigSchema(
                properties={
                    "stacks": {
                        "type": "array",
                        "items": {"type": "string"},
                        "default": list(DEFAULT_PERSISTENT_STACKS),
                    }
                },
            )
        policies.append(
            ResourceValidationPolicy(
                name=name,
                description=description,
                validate=validate,
                config_schema=schema,
            )
        )
    return policies


def build_pack() -> None:
    """Serve the pack to the Pulumi engine (blocks; only ``__main__`` calls it)."""
    from pulumi_policy import EnforcementLevel, PolicyPack

    PolicyPack(
        name="sovereign-map",
        enforcement_level=EnforcementLevel.MANDATORY,
        policies=build_policies(),
    )
