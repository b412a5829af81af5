"""The typed settings of one stack: what ``Pulumi.<stack>.yaml`` may say under ``sovereign-map:``.

Keys are camelCase in YAML (``minFitClients``) and snake_case in Python (``min_fit_clients``).
Unknown keys are errors, so a typo never silently falls back to a default. Rules that tie
several keys together live in :mod:`infra.stacks.consistency`.
"""

from __future__ import annotations

import ipaddress
import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from fl.contract import ATTACK_MODES, DEFAULT_RULE
from infra.stacks.quantity import QuantityError, cpu_cores, memory_bytes

HONEST = ATTACK_MODES[0]
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_NAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"
)
_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def _cpu(value: str) -> str:
    try:
        cpu_cores(value)
    except QuantityError as exc:
        raise ValueError(str(exc)) from None
    return str(value)


def _memory(value: str) -> str:
    try:
        memory_bytes(value)
    except QuantityError as exc:
        raise ValueError(str(exc)) from None
    return str(value)


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} must be a DNS label: lower-case letters, digits and '-', at most 63"
        )
    return value


def _image_ref(value: str) -> str:
    """A pinned image reference: a tag other than ``latest``, or a digest."""
    if "@sha256:" in value:
        return value
    name, _, tag = value.rpartition(":")
    if not name or "/" in tag:
        raise ValueError(f"{value!r} has no tag; pin a version (e.g. 'prom/prometheus:v3.5.0')")
    if tag == "latest":
        raise ValueError(f"{value!r} uses the 'latest' tag; pin a version")
    return value


def _duration(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError(f"{value!r} is not a duration like '15s', '5m' or '15d'")
    return value


def _scalar_text(value: object) -> object:
    """YAML ``cpu: 2`` or ``tag: 1.0`` arrive as numbers; they mean the text."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


CpuQuantity = Annotated[str, BeforeValidator(_scalar_text), AfterValidator(_cpu)]
MemoryQuantity = Annotated[str, BeforeValidator(_scalar_text), AfterValidator(_memory)]
DnsLabel = Annotated[str, AfterValidator(_dns_label)]
PinnedImage = Annotated[str, AfterValidator(_image_ref)]
Duration = Annotated[str, AfterValidator(_duration)]


class Target(StrEnum):
    """Where the stack runs; every stack works on both."""

    DOCKER = "docker"
    KUBERNETES = "kubernetes"


class _Settings(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class Nodes(_Settings):
    """The federation's nodes: ``node-0`` … ``node-<count-1>``."""

    count: PositiveInt = Field(le=1000)
    default_stake: PositiveFloat = 1.0
    # node id -> stake; nodes not listed have default_stake
    stakes: dict[str, PositiveFloat] = Field(default_factory=dict)


class Byzantine(_Settings):
    """Nodes ``node-0`` … ``node-<count-1>`` run ``mode``; the rest are honest (the same
    convention as ``sovereign-map simulate``)."""

    count: NonNegativeInt = 0
    mode: str = "sign-flip"
    scale: PositiveFloat = 1.0

    @field_validator("mode")
    @classmethod
    def _known_attack(cls, value: str) -> str:
        attacks = ATTACK_MODES[1:]
        if value not in attacks:
            raise ValueError(f"unknown attack mode {value!r}; choose one of: {', '.join(attacks)}")
        return value


class Training(_Settings):
    rounds: PositiveInt = 10
    min_fit_clients: PositiveInt | None = None  # None: every node
    rule: str = DEFAULT_RULE
    partition: Literal["iid", "dirichlet"] = "iid"
    dirichlet_alpha: PositiveFloat = 0.5
    samples_per_node: NonNegativeInt = 0  # 0: the node's whole partition
    seed: NonNegativeInt = 0

    @field_validator("rule")
    @classmethod
    def _known_rule(cls, value: str) -> str:
        from fl.aggregation import RULES  # numpy only; no torch

        if value not in RULES:
            raise ValueError(
                f"unknown aggregation rule {value!r}; choose one of: {', '.join(RULES)}"
            )
        return value


class Privacy(_Settings):
    enabled: bool = True
    noise_multiplier: PositiveFloat = 1.0
    max_grad_norm: PositiveFloat = 1.0
    delta: float = Field(default=1e-5, gt=0, lt=1)
    epsilon_budget: PositiveFloat | None = None  # None: unlimited


class Quantities(_Settings):
    cpu: CpuQuantity
    memory: MemoryQuantity


class ContainerResources(_Settings):
    """Kubernetes requests/limits; on Docker: limits → ``cpus``/``memory``, requests →
    ``cpu_shares``/``memory_reservation``."""

    requests: Quantities
    limits: Quantities

    @model_validator(mode="after")
    def _requests_within_limits(self) -> ContainerResources:
        if cpu_cores(self.requests.cpu) > cpu_cores(self.limits.cpu):
            raise ValueError(
                f"requests.cpu ({self.requests.cpu}) exceeds limits.cpu ({self.limits.cpu})"
            )
        if memory_bytes(self.requests.memory) > memory_bytes(self.limits.memory):
            raise ValueError(
                f"requests.memory ({self.requests.memory}) exceeds limits.memory "
                f"({self.limits.memory})"
            )
        return self


def _resources(cpu: tuple[str, str], memory: tuple[str, str]) -> ContainerResources:
    return ContainerResources(
        requests=Quantities(cpu=cpu[0], memory=memory[0]),
        limits=Quantities(cpu=cpu[1], memory=memory[1]),
    )


class Resources(_Settings):
    aggregator: ContainerResources = _resources(("500m", "2"), ("1Gi", "3Gi"))
    metrics_api: ContainerResources = _resources(("50m", "500m"), ("64Mi", "256Mi"))
    node: ContainerResources = _resources(("100m", "1"), ("384Mi", "1Gi"))
    prometheus: ContainerResources = _resources(("100m", "1"), ("256Mi", "1Gi"))
    alertmanager: ContainerResources = _resources(("25m", "200m"), ("32Mi", "128Mi"))
    grafana: ContainerResources = _resources(("50m", "500m"), ("128Mi", "512Mi"))


class Storage(_Settings):
    """Persistent volume sizes (Kubernetes PVCs; Docker named volumes are not size-limited)."""

    aggregator: MemoryQuantity = "5Gi"
    prometheus: MemoryQuantity = "10Gi"
    alertmanager: MemoryQuantity = "1Gi"
    grafana: MemoryQuantity = "1Gi"


class Certificates(_Settings):
    validity_days: PositiveInt = 90
    ca_validity_days: PositiveInt = 3650
    renew_before_days: PositiveInt = 30
    extra_dns_names: tuple[str, ...] = ()
    extra_ip_addresses: tuple[str, ...] = ()

    @field_validator("extra_dns_names")
    @classmethod
    def _dns_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        for name in names:
            if not _DNS_NAME.match(name):
                raise ValueError(f"{name!r} is not a DNS name")
        return names

    @field_validator("extra_ip_addresses")
    @classmethod
    def _ip_addresses(cls, addresses: tuple[str, ...]) -> tuple[str, ...]:
        for address in addresses:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(f"{address!r} is not an IP address") from None
        return addresses


class Image(_Settings):
    """The FL image (aggregator, metrics API and nodes all run it)."""

    repository: str = "sovereign-map"
    tag: Annotated[str, BeforeValidator(_scalar_text)] = "0.1.0"
    build: bool | None = None  # None: build on docker, use a pushed image on kubernetes
    push: bool = False
    registry_username: str | None = None
    pull_policy: Literal["IfNotPresent", "Always", "Never"] = "IfNotPresent"
    platform: str | None = None  # e.g. linux/amd64

    @field_validator("tag")
    @classmethod
    def _pinned(cls, value: str) -> str:
        if value == "latest":
            raise ValueError("'latest' is not allowed; use a version (e.g. '0.1.0')")
        if not _IMAGE_TAG.match(value):
            raise ValueError(f"{value!r} is not a valid image tag")
        return value

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"


class Monitoring(_Settings):
    prometheus_image: PinnedImage = "prom/prometheus:v3.5.0"
    alertmanager_image: PinnedImage = "prom/alertmanager:v0.28.1"
    grafana_image: PinnedImage = "grafana/grafana:12.1.1"
    retention: Duration = "15d"
    grafana_admin_user: str = Field(default="admin", min_length=1)


class Kubernetes(_Settings):
    namespace: DnsLabel = "sovereign-map"
    context: str | None = None  # kubeconfig context; None: the current one
    storage_class: str | None = None  # None: the cluster's default StorageClass
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = "ClusterIP"


class Docker(_Settings):
    publish_host: str = "127.0.0.1"  # host address the published ports bind to
    port_offset: int = Field(default=0, ge=0, le=50000)  # added to every published port
    # Prometheus discovers the stack's containers through the Docker API (read-only socket).
    socket_path: str = "/var/run/docker.sock"
    # The socket's group id (`stat -c %g /var/run/docker.sock`): Prometheus then runs as
    # nobody with that group; unset, it runs as root inside its container to read the socket.
    socket_gid: NonNegativeInt | None = None

    @field_validator("publish_host")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address") from None
        return value


class StackSettings(_Settings):
    """Everything a stack configures, validated."""

    target: Target = Target.DOCKER
    nodes: Nodes
    byzantine: Byzantine = Byzantine()
    training: Training = Training()
    privacy: Privacy = Privacy()
    resources: Resources = Resources()
    storage: Storage = Storage()
    certificates: Certificates = Certificates()
    image: Image = Image()
    monitoring: Monitoring = Monitoring()
    kubernetes: Kubernetes = Kubernetes()
    docker: Docker = Docker()

    # ----------------------------------------------------------------- derived values
    @property
    def node_ids(self) -> list[str]:
        return [node_id(i) for i in range(self.nodes.count)]

    @property
    def min_fit_clients(self) -> int:
        return self.training.min_fit_clients or self.nodes.count

    @property
    def build_image(self) -> bool:
        if self.image.build is not None:
            return self.image.build
        return self.target is Target.DOCKER

    def attack_of(self, ordinal: int) -> str:
        return self.byzantine.mode if ordinal < self.byzantine.count else HONEST

    def stake_of(self, node: str) -> float:
        return self.nodes.stakes.get(node, self.nodes.default_stake)

    def stake_table(self) -> dict[str, float]:
        """Every node's stake (the aggregator's ``SM_STAKES_FILE``)."""
        return {node: self.stake_of(node) for node in self.node_ids}

    def attack_table(self) -> dict[str, str]:
        """The nodes configured to attack (the metrics API's ``SM_ATTACK_TABLE``)."""
        return {node_id(i): self.byzantine.mode for i in range(self.byzantine.count)}


def node_id(ordinal: int) -> str:
    """``node-<ordinal>``: the container name suffix, the StatefulSet pod name and the
    certificate's subject all use it."""
    return f"node-{ordinal}"
