"""Building blocks of the Kubernetes form: metadata, restricted security contexts, probes,
resources, TLS Secrets and the NetworkPolicy shapes the workloads use.

Objects are written as plain camelCase dicts, exactly as in a manifest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from fl.contract import TLS_CA_FILE, TLS_CERT_FILE, TLS_CRL_FILE, TLS_KEY_FILE
from infra.components.common import SCRATCH_MOUNT, labels, selector
from infra.components.pki import TlsBundle
from infra.components.site import Site
from infra.stacks.model import ContainerResources

Manifest = dict[str, Any]
SCRATCH_VOLUME = "scratch"
CHECKSUM_ANNOTATION = "sovereign-map.io/config-checksum"


def metadata(
    site: Site, name: str, component: str, version: str | None = None, **extra: Any
) -> Manifest:
    return {
        "name": name,
        "namespace": site.namespace,
        "labels": labels(component, site.stack, version),
        **extra,
    }


def match(site: Site, component: str) -> Manifest:
    return {"matchLabels": selector(component, site.stack)}


def pod_security(uid: int, gid: int | None = None) -> Manifest:
    """Pod-level part of the ``restricted`` Pod Security Standard."""
    group = gid if gid is not None else uid
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": group,
        "fsGroup": group,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> Manifest:
    """Container-level part: no privilege escalation, read-only root, no capabilities."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(spec: ContainerResources) -> Manifest:
    return {
        "requests": {"cpu": spec.requests.cpu, "memory": spec.requests.memory},
        "limits": {"cpu": spec.limits.cpu, "memory": spec.limits.memory},
    }


def env(values: Mapping[str, pulumi.Input[str]]) -> list[Manifest]:
    return [{"name": key, "value": value} for key, value in sorted(values.items())]


def http_probe(port: int, path: str, *, period: int = 10, failures: int = 3) -> Manifest:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def tcp_probe(port: int, *, period: int = 10, failures: int = 3) -> Manifest:
    return {
        "tcpSocket": {"port": port},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def startup(probe: Manifest, *, seconds: int = 300) -> Manifest:
    """A startup probe that allows ``seconds`` before liveness takes over."""
    period = int(probe.get("periodSeconds", 10))
    return {**probe, "failureThreshold": max(1, seconds // period)}


def scratch_volume() -> Manifest:
    return {"name": SCRATCH_VOLUME, "emptyDir": {"sizeLimit": "1Gi"}}


def scratch_mount() -> Manifest:
    return {"name": SCRATCH_VOLUME, "mountPath": SCRATCH_MOUNT}


def tls_secret(
    site: Site,
    logical: str,
    name: str,
    component: str,
    bundle: TlsBundle,
    parent: pulumi.Resource,
) -> k8s.core.v1.Secret:
    """A ``kubernetes.io/tls`` Secret: ``tls.crt``, ``tls.key``, ``ca.crt`` (+ ``ca.crl``)."""
    data: dict[str, pulumi.Input[str]] = {
        TLS_CERT_FILE: bundle.cert,
        TLS_KEY_FILE: bundle.key,
        TLS_CA_FILE: bundle.ca_cert,
    }
    if bundle.crl is not None:
        data[TLS_CRL_FILE] = bundle.crl
    return k8s.core.v1.Secret(
        logical,
        metadata=metadata(site, name, component),
        type="kubernetes.io/tls",
        string_data=data,
        opts=site.child_opts(parent),
    )


def service(
    site: Site,
    logical: str,
    name: str,
    component: str,
    ports: Sequence[tuple[str, int]],
    parent: pulumi.Resource,
    *,
    headless: bool = False,
    service_type: str = "ClusterIP",
) -> k8s.core.v1.Service:
    spec: Manifest = {
        "selector": selector(component, site.stack),
        "ports": [
            {"name": port_name, "port": port, "targetPort": port, "protocol": "TCP"}
            for port_name, port in ports
        ],
    }
    if headless:
        spec["clusterIP"] = "None"
        spec["publishNotReadyAddresses"] = True
    else:
        spec["type"] = service_type
    return k8s.core.v1.Service(
        logical, metadata=metadata(site, name, component), spec=spec, opts=site.child_opts(parent)
    )


def allow_ingress(
    site: Site,
    logical: str,
    component: str,
    port: int,
    from_components: Sequence[str] | None,
    parent: pulumi.Resource,
) -> k8s.networking.v1.NetworkPolicy:
    """Allow traffic to ``component`` on ``port`` from pods of ``from_components`` (of this
    stack), or from anywhere when ``from_components`` is None. Everything else stays denied
    by the namespace's default-deny policy."""
    rule: Manifest = {"ports": [{"port": port, "protocol": "TCP"}]}
    if from_components is not None:
        rule["from"] = [
            {"podSelector": {"matchLabels": selector(c, site.stack)}} for c in from_components
        ]
    return k8s.networking.v1.NetworkPolicy(
        logical,
        metadata=metadata(site, logical, component),
        spec={
            "podSelector": match(site, component),
            "policyTypes": ["Ingress"],
            "ingress": [rule],
        },
        opts=site.child_opts(parent),
    )


def volume_claim(site: Site, name: str, size: str, component: str) -> Manifest:
    """A StatefulSet volumeClaimTemplate (ReadWriteOnce, the stack's storage class)."""
    spec: Manifest = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }
    if site.settings.kubernetes.storage_class:
        spec["storageClassName"] = site.settings.kubernetes.storage_class
    return {"metadata": {"name": name, "labels": labels(component, site.stack)}, "spec": spec}
