"""What both targets share: names, labels, file paths and the containers' environment.

The environment variable names and ports come from :mod:`fl.contract`; this module only
decides the values a stack gives them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Final

from fl.contract import (
    AGGREGATOR_PORT,
    AGGREGATOR_STATE_MOUNT,
    DATA_MOUNT,
    ENV_AGGREGATOR_HOST,
    ENV_AGGREGATOR_PORT,
    ENV_ALPHA,
    ENV_ATTACK_SCALE,
    ENV_ATTACK_TABLE,
    ENV_DATA_DIR,
    ENV_DP_DELTA,
    ENV_DP_ENABLED,
    ENV_DP_EPSILON_BUDGET,
    ENV_DP_MAX_GRAD_NORM,
    ENV_DP_NOISE_MULTIPLIER,
    ENV_METRICS_API_HOST,
    ENV_METRICS_API_PORT,
    ENV_METRICS_CERT_DIR,
    ENV_METRICS_DB,
    ENV_MIN_FIT_CLIENTS,
    ENV_NODE_ATTACK,
    ENV_NODE_ID,
    ENV_NODE_METRICS_PORT,
    ENV_NODE_STAKE,
    ENV_NUM_NODES,
    ENV_NUM_ROUNDS,
    ENV_OPERATOR_TLS_DIR,
    ENV_PARTITION,
    ENV_RULE,
    ENV_SAMPLES_PER_NODE,
    ENV_SEED,
    ENV_STAKES_FILE,
    ENV_STATE_DIR,
    ENV_TLS_DIR,
    LABEL_COMPONENT,
    LABEL_PART_OF,
    LABEL_PART_OF_VALUE,
    METRICS_API_PORT,
    METRICS_DB_FILE,
    NODE_METRICS_PORT,
    OPERATOR_TLS_MOUNT,
    TLS_MOUNT,
)
from infra.stacks.model import StackSettings

# ------------------------------------------------------------------ names and paths
AGGREGATOR_HOSTNAME: Final = "aggregator"  # Docker network alias and Kubernetes Service
METRICS_API_HOSTNAME: Final = "metrics-api"
NODE_SERVICE: Final = "node"  # Kubernetes: StatefulSet and headless Service; pods node-<i>
CONFIG_MOUNT: Final = "/etc/sovereign-map/config"  # stakes and attack tables
CERTS_MOUNT: Final = "/etc/sovereign-map/certs"  # metrics API: public certificates to watch
PROFILE_MOUNT: Final = "/etc/sovereign-map/profiles"  # Kubernetes nodes: stake/attack per node
STAKES_FILE: Final = f"{CONFIG_MOUNT}/stakes.json"
ATTACK_TABLE_FILE: Final = f"{CONFIG_MOUNT}/attacks.json"
SCRATCH_MOUNT: Final = "/tmp"  # writable scratch (HOME, caches) under a read-only root
APP_UID: Final = 10001  # the image's non-root user (see Dockerfile)
APP_GID: Final = 10001

# Recommended labels (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/)
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_VERSION: Final = "app.kubernetes.io/version"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"


def labels(component: str, stack: str, version: str | None = None) -> dict[str, str]:
    """The labels every container / pod of a stack carries (Docker and Kubernetes alike)."""
    found = {
        LABEL_NAME: LABEL_PART_OF_VALUE,
        LABEL_INSTANCE: stack,
        LABEL_COMPONENT: component,
        LABEL_PART_OF: LABEL_PART_OF_VALUE,
        LABEL_MANAGED_BY: "pulumi",
    }
    if version:
        found[LABEL_VERSION] = version[:63]
    return found


def selector(component: str, stack: str) -> dict[str, str]:
    """The stable subset of :func:`labels` used in selectors (never the version)."""
    return {LABEL_NAME: LABEL_PART_OF_VALUE, LABEL_INSTANCE: stack, LABEL_COMPONENT: component}


def fingerprint(parts: Iterable[str]) -> str:
    """A short digest of configuration text: a pod-template annotation that makes
    Kubernetes roll the pods when mounted material (certificates, configs) changes."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def to_json(data: object) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


# ------------------------------------------------------------------ environments
def _training_env(settings: StackSettings) -> dict[str, str]:
    """What aggregator and nodes must agree on: partitioning and differential privacy."""
    privacy = settings.privacy
    training = settings.training
    env = {
        ENV_NUM_NODES: str(settings.nodes.count),
        ENV_PARTITION: training.partition,
        ENV_ALPHA: str(training.dirichlet_alpha),
        ENV_SEED: str(training.seed),
        ENV_SAMPLES_PER_NODE: str(training.samples_per_node),
        ENV_DP_ENABLED: "1" if privacy.enabled else "0",
        ENV_DP_NOISE_MULTIPLIER: str(privacy.noise_multiplier),
        ENV_DP_MAX_GRAD_NORM: str(privacy.max_grad_norm),
        ENV_DP_DELTA: str(privacy.delta),
        ENV_DATA_DIR: DATA_MOUNT,
        "HOME": SCRATCH_MOUNT,
        "PYTHONUNBUFFERED": "1",
    }
    if privacy.epsilon_budget is not None:
        env[ENV_DP_EPSILON_BUDGET] = str(privacy.epsilon_budget)
    return env


def aggregator_env(settings: StackSettings) -> dict[str, str]:
    return {
        **_training_env(settings),
        ENV_AGGREGATOR_PORT: str(AGGREGATOR_PORT),
        ENV_NUM_ROUNDS: str(settings.training.rounds),
        ENV_MIN_FIT_CLIENTS: str(settings.min_fit_clients),
        ENV_RULE: settings.training.rule,
        ENV_STAKES_FILE: STAKES_FILE,
        ENV_STATE_DIR: AGGREGATOR_STATE_MOUNT,
        ENV_TLS_DIR: TLS_MOUNT,
        ENV_OPERATOR_TLS_DIR: OPERATOR_TLS_MOUNT,
    }


def metrics_api_env(settings: StackSettings) -> dict[str, str]:
    env = {
        ENV_METRICS_DB: f"{AGGREGATOR_STATE_MOUNT}/{METRICS_DB_FILE}",
        ENV_METRICS_API_HOST: "0.0.0.0",
        ENV_METRICS_API_PORT: str(METRICS_API_PORT),
        ENV_METRICS_CERT_DIR: CERTS_MOUNT,
        ENV_ATTACK_TABLE: ATTACK_TABLE_FILE,
        ENV_NUM_ROUNDS: str(settings.training.rounds),
        ENV_NUM_NODES: str(settings.nodes.count),
        "HOME": SCRATCH_MOUNT,
        "PYTHONUNBUFFERED": "1",
    }
    if settings.privacy.epsilon_budget is not None:
        env[ENV_DP_EPSILON_BUDGET] = str(settings.privacy.epsilon_budget)
    return env


def node_common_env(settings: StackSettings) -> dict[str, str]:
    """Every node's environment except its identity, stake and attack."""
    return {
        **_training_env(settings),
        ENV_AGGREGATOR_HOST: AGGREGATOR_HOSTNAME,
        ENV_AGGREGATOR_PORT: str(AGGREGATOR_PORT),
        ENV_ATTACK_SCALE: str(settings.byzantine.scale),
        ENV_TLS_DIR: TLS_MOUNT,
        ENV_NODE_METRICS_PORT: str(NODE_METRICS_PORT),
    }


def node_profile(settings: StackSettings, ordinal: int) -> dict[str, str]:
    """One node's identity, stake and attack mode."""
    node = settings.node_ids[ordinal]
    return {
        ENV_NODE_ID: node,
        ENV_NODE_STAKE: str(settings.stake_of(node)),
        ENV_NODE_ATTACK: settings.attack_of(ordinal),
    }


def env_file(env: Mapping[str, str]) -> str:
    """A POSIX shell fragment that exports ``env`` (values single-quoted)."""
    lines = [f"{key}='{_shell_quote(value)}'" for key, value in sorted(env.items())]
    return "\n".join(lines) + "\n"


def _shell_quote(value: str) -> str:
    return value.replace("'", "'\"'\"'")
