"""Kubernetes form of the FL workloads.

- Aggregator: one StatefulSet pod with two containers (SuperLink + ServerApp, metrics API)
  sharing one PVC. Its TLS Secrets are mounted directly (a projected volume), so a
  rotation reaches the running process, which reloads changed files.
- Nodes: one StatefulSet ``node``; pod ``node-<i>`` is node ``node-<i>``. Every node has its
  own ``kubernetes.io/tls`` Secret; an init container copies only its own bundle (key mode
  0600) into a memory volume, so the node container never sees another node's key. Stake
  and attack mode come from a per-node profile in a ConfigMap. New certificates change the
  pod template's checksum annotation, which rolls the nodes.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from fl.contract import (
    AGGREGATOR_PORT,
    AGGREGATOR_STATE_MOUNT,
    COMPONENT_AGGREGATOR,
    COMPONENT_NODE,
    COMPONENT_PROMETHEUS,
    ENV_NODE_ID,
    METRICS_API_PORT,
    NODE_METRICS_PORT,
    OPERATOR_TLS_MOUNT,
    TLS_CA_FILE,
    TLS_CERT_FILE,
    TLS_CRL_FILE,
    TLS_KEY_FILE,
    TLS_MOUNT,
)
from infra.components.common import (
    AGGREGATOR_HOSTNAME,
    APP_UID,
    ATTACK_TABLE_FILE,
    CERTS_MOUNT,
    CONFIG_MOUNT,
    METRICS_API_HOSTNAME,
    NODE_SERVICE,
    PROFILE_MOUNT,
    STAKES_FILE,
    aggregator_env,
    env_file,
    fingerprint,
    labels,
    metrics_api_env,
    node_common_env,
    node_profile,
    to_json,
)
from infra.components.endpoints import AggregatorEndpoints
from infra.components.kubernetes.base import (
    CHECKSUM_ANNOTATION,
    Manifest,
    allow_ingress,
    container_security,
    env,
    http_probe,
    match,
    metadata,
    pod_security,
    resources,
    scratch_mount,
    scratch_volume,
    service,
    startup,
    tcp_probe,
    tls_secret,
    volume_claim,
)
from infra.components.pki import Pki
from infra.components.site import Site

PKI_SOURCE_MOUNT = "/etc/sovereign-map/pki"  # init container only: every node's bundle
STATE_CLAIM = "state"
INIT_RESOURCES: Manifest = {
    "requests": {"cpu": "10m", "memory": "16Mi"},
    "limits": {"cpu": "100m", "memory": "64Mi"},
}
SERVER_FILES = (TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE, TLS_CRL_FILE)
CLIENT_FILES = (TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE)
READ_ONLY_SECRET_MODE = 0o440  # owner root, group = the pod's fsGroup: readable, never writable


def _name(resource: k8s.core.v1.Secret | k8s.core.v1.ConfigMap) -> pulumi.Output[str]:
    return resource.metadata.apply(lambda m: m.name)


def _config_map(
    site: Site,
    parent: pulumi.Resource,
    logical: str,
    name: str,
    component: str,
    data: pulumi.Input[dict[str, pulumi.Input[str]]],
) -> k8s.core.v1.ConfigMap:
    return k8s.core.v1.ConfigMap(
        logical, metadata=metadata(site, name, component), data=data, opts=site.child_opts(parent)
    )


def _pod_spec(containers: list[Manifest], volumes: list[Manifest], **extra: Any) -> Manifest:
    return {
        "securityContext": pod_security(APP_UID),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,  # no AGGREGATOR_PORT=tcp://… from the Service
        "terminationGracePeriodSeconds": 60,
        "containers": containers,
        "volumes": volumes,
        **extra,
    }


# ---------------------------------------------------------------------- aggregator
def aggregator(
    parent: pulumi.Resource, site: Site, image: pulumi.Input[str], pki: Pki, version: str
) -> AggregatorEndpoints:
    settings = site.settings
    server_tls = tls_secret(
        site, "aggregator-tls", "aggregator-tls", COMPONENT_AGGREGATOR, pki.server, parent
    )
    operator_tls = tls_secret(
        site, "operator-tls", "operator-tls", COMPONENT_AGGREGATOR, pki.operator, parent
    )
    config_data = {
        STAKES_FILE.rsplit("/", 1)[1]: to_json(settings.stake_table()),
        ATTACK_TABLE_FILE.rsplit("/", 1)[1]: to_json(settings.attack_table()),
    }
    config = _config_map(
        site, parent, "aggregator-config", "aggregator-config", COMPONENT_AGGREGATOR, config_data
    )
    certificates = _config_map(
        site,
        parent,
        "certificates",
        "certificates",
        COMPONENT_AGGREGATOR,
        pki.public_certificates(),
    )
    tls_volumes = [
        {
            "name": "tls",
            "secret": {
                "secretName": _name(server_tls),
                "defaultMode": READ_ONLY_SECRET_MODE,
                "items": [{"key": f, "path": f} for f in SERVER_FILES],
            },
        },
        {
            "name": "operator-tls",
            "secret": {
                "secretName": _name(operator_tls),
                "defaultMode": READ_ONLY_SECRET_MODE,
                "items": [{"key": f, "path": f} for f in CLIENT_FILES],
            },
        },
    ]
    pull = settings.image.pull_policy
    superlink = {
        "name": "aggregator",
        "image": image,
        "imagePullPolicy": pull,
        "command": ["sovereign-map", "aggregator"],
        "env": env(aggregator_env(settings)),
        "ports": [{"name": "superlink", "containerPort": AGGREGATOR_PORT, "protocol": "TCP"}],
        "volumeMounts": [
            {"name": STATE_CLAIM, "mountPath": AGGREGATOR_STATE_MOUNT},
            {"name": "tls", "mountPath": TLS_MOUNT, "readOnly": True},
            {"name": "operator-tls", "mountPath": OPERATOR_TLS_MOUNT, "readOnly": True},
            {"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True},
            scratch_mount(),
        ],
        "resources": resources(settings.resources.aggregator),
        "securityContext": container_security(),
        "startupProbe": startup(tcp_probe(AGGREGATOR_PORT)),
        "livenessProbe": tcp_probe(AGGREGATOR_PORT, period=20),
        "readinessProbe": tcp_probe(AGGREGATOR_PORT),
    }
    metrics_api = {
        "name": METRICS_API_HOSTNAME,
        "image": image,
        "imagePullPolicy": pull,
        "command": ["sovereign-map", "metrics-api"],
        "env": env(metrics_api_env(settings)),
        "ports": [{"name": "http", "containerPort": METRICS_API_PORT, "protocol": "TCP"}],
        "volumeMounts": [
            {"name": STATE_CLAIM, "mountPath": AGGREGATOR_STATE_MOUNT},
            {"name": "certificates", "mountPath": CERTS_MOUNT, "readOnly": True},
            {"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True},
            scratch_mount(),
        ],
        "resources": resources(settings.resources.metrics_api),
        "securityContext": container_security(),
        # TCP, not /health: /health answers 503 while the store is unreadable, and that
        # must not take the SuperLink (same pod) out of its Service or restart the API;
        # the store's state is a metric with its own alert.
        "startupProbe": startup(tcp_probe(METRICS_API_PORT), seconds=120),
        "livenessProbe": tcp_probe(METRICS_API_PORT, period=20),
        "readinessProbe": tcp_probe(METRICS_API_PORT),
    }
    volumes = [
        *tls_volumes,
        {"name": "config", "configMap": {"name": _name(config)}},
        {"name": "certificates", "configMap": {"name": _name(certificates)}},
        scratch_volume(),
    ]
    superlink_service = service(
        site,
        "aggregator-service",
        AGGREGATOR_HOSTNAME,
        COMPONENT_AGGREGATOR,
        [("superlink", AGGREGATOR_PORT)],
        parent,
    )
    service(
        site,
        "metrics-api-service",
        METRICS_API_HOSTNAME,
        COMPONENT_AGGREGATOR,
        [("http", METRICS_API_PORT)],
        parent,
        service_type=settings.kubernetes.service_type,
    )
    k8s.apps.v1.StatefulSet(
        "aggregator",
        metadata=metadata(site, AGGREGATOR_HOSTNAME, COMPONENT_AGGREGATOR, version),
        spec={
            "serviceName": superlink_service.metadata.apply(lambda m: m.name),
            "replicas": 1,
            "selector": match(site, COMPONENT_AGGREGATOR),
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Retain",
                "whenScaled": "Retain",
            },
            "template": {
                "metadata": {
                    "labels": labels(COMPONENT_AGGREGATOR, site.stack, version),
                    "annotations": {CHECKSUM_ANNOTATION: fingerprint(config_data.values())},
                },
                "spec": _pod_spec([superlink, metrics_api], volumes),
            },
            "volumeClaimTemplates": [
                volume_claim(site, STATE_CLAIM, settings.storage.aggregator, COMPONENT_AGGREGATOR)
            ],
        },
        opts=site.child_opts(parent),
    )
    # Only nodes reach the SuperLink; only Prometheus reaches the metrics API.
    allow_ingress(
        site,
        "aggregator-from-nodes",
        COMPONENT_AGGREGATOR,
        AGGREGATOR_PORT,
        [COMPONENT_NODE],
        parent,
    )
    allow_ingress(
        site,
        "metrics-api-from-prometheus",
        COMPONENT_AGGREGATOR,
        METRICS_API_PORT,
        [COMPONENT_PROMETHEUS],
        parent,
    )
    return AggregatorEndpoints(
        address=pulumi.Output.from_input(
            f"{site.service_host(AGGREGATOR_HOSTNAME)}:{AGGREGATOR_PORT}"
        ),
        metrics_api_url=pulumi.Output.from_input(
            f"http://{site.service_host(METRICS_API_HOSTNAME)}:{METRICS_API_PORT}"
        ),
    )


# ---------------------------------------------------------------------- nodes
INSTALL_IDENTITY = f"""\
src="{PKI_SOURCE_MOUNT}/${{{ENV_NODE_ID}}}"
if [ ! -d "$src" ]; then
  echo "no certificate for ${{{ENV_NODE_ID}}} in the stack's PKI (nodes.count changed?)" >&2
  exit 1
fi
install -m 0644 "$src/{TLS_CA_FILE}" "$src/{TLS_CERT_FILE}" {TLS_MOUNT}/
install -m 0600 "$src/{TLS_KEY_FILE}" {TLS_MOUNT}/
"""
RUN_NODE = (
    f'set -a && . "{PROFILE_MOUNT}/${{{ENV_NODE_ID}}}.env" && set +a && exec sovereign-map node'
)


def node_fleet(
    parent: pulumi.Resource,
    site: Site,
    image: pulumi.Input[str],
    pki: Pki,
    version: str,
    after: list[pulumi.Resource],
) -> list[str]:
    settings = site.settings
    nodes = settings.node_ids
    secrets = {
        node: tls_secret(site, f"{node}-tls", f"{node}-tls", COMPONENT_NODE, pki.node(node), parent)
        for node in nodes
    }
    profiles = {
        f"{node}.env": env_file(
            {k: v for k, v in node_profile(settings, i).items() if k != ENV_NODE_ID}
        )
        for i, node in enumerate(nodes)
    }
    profile_map = _config_map(
        site, parent, "node-profiles", "node-profiles", COMPONENT_NODE, profiles
    )
    node_id_env = {"name": ENV_NODE_ID, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    identity = {
        "name": "pki",
        "projected": {
            "defaultMode": READ_ONLY_SECRET_MODE,
            "sources": [
                {
                    "secret": {
                        "name": _name(secret),
                        "items": [{"key": f, "path": f"{node}/{f}"} for f in CLIENT_FILES],
                    }
                }
                for node, secret in secrets.items()
            ],
        },
    }
    init = {
        "name": "install-identity",
        "image": image,
        "imagePullPolicy": settings.image.pull_policy,
        "command": ["sh", "-ec", INSTALL_IDENTITY],
        "env": [node_id_env],
        "volumeMounts": [
            {"name": "pki", "mountPath": PKI_SOURCE_MOUNT, "readOnly": True},
            {"name": "tls", "mountPath": TLS_MOUNT},
        ],
        "resources": INIT_RESOURCES,
        "securityContext": container_security(),
    }
    metrics_probe = http_probe(NODE_METRICS_PORT, "/metrics")
    main = {
        "name": "node",
        "image": image,
        "imagePullPolicy": settings.image.pull_policy,
        "command": ["sh", "-c", RUN_NODE],
        "env": [node_id_env, *env(node_common_env(settings))],
        "ports": [{"name": "metrics", "containerPort": NODE_METRICS_PORT, "protocol": "TCP"}],
        "volumeMounts": [
            {"name": "tls", "mountPath": TLS_MOUNT, "readOnly": True},
            {"name": "profiles", "mountPath": PROFILE_MOUNT, "readOnly": True},
            scratch_mount(),
        ],
        "resources": resources(settings.resources.node),
        "securityContext": container_security(),
        "startupProbe": startup(metrics_probe),
        "livenessProbe": http_probe(NODE_METRICS_PORT, "/metrics", period=20),
        "readinessProbe": metrics_probe,
    }
    volumes = [
        identity,
        {"name": "tls", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
        {"name": "profiles", "configMap": {"name": _name(profile_map)}},
        scratch_volume(),
    ]
    checksum = pulumi.Output.all(*pki.public_certificates().values()).apply(
        lambda certs: fingerprint([*certs, *profiles.values()])
    )
    governing = service(
        site,
        "node-service",
        NODE_SERVICE,
        COMPONENT_NODE,
        [("metrics", NODE_METRICS_PORT)],
        parent,
        headless=True,
    )
    k8s.apps.v1.StatefulSet(
        "node-fleet",
        metadata=metadata(site, NODE_SERVICE, COMPONENT_NODE, version),
        spec={
            "serviceName": governing.metadata.apply(lambda m: m.name),
            "replicas": len(nodes),
            "podManagementPolicy": "Parallel",
            "selector": match(site, COMPONENT_NODE),
            "template": {
                "metadata": {
                    "labels": labels(COMPONENT_NODE, site.stack, version),
                    "annotations": {CHECKSUM_ANNOTATION: checksum},
                },
                "spec": _pod_spec([main], volumes, initContainers=[init]),
            },
        },
        opts=pulumi.ResourceOptions.merge(
            site.child_opts(parent), pulumi.ResourceOptions(depends_on=after)
        ),
    )
    k8s.policy.v1.PodDisruptionBudget(
        "node-fleet-pdb",
        metadata=metadata(site, NODE_SERVICE, COMPONENT_NODE),
        # Voluntary disruptions may not take the fleet below what a round needs.
        spec={"minAvailable": settings.min_fit_clients, "selector": match(site, COMPONENT_NODE)},
        opts=site.child_opts(parent),
    )
    allow_ingress(
        site,
        "node-metrics-from-prometheus",
        COMPONENT_NODE,
        NODE_METRICS_PORT,
        [COMPONENT_PROMETHEUS],
        parent,
    )
    return nodes
