"""Kubernetes form of monitoring: Prometheus (pod discovery in the namespace, with the RBAC
it needs), Alertmanager and Grafana as StatefulSets with PVCs; configuration in ConfigMaps
(Alertmanager's, which may hold a webhook token, and Grafana's password in Secrets); the
dashboards as ConfigMaps labelled ``grafana_dashboard: "1"`` and also mounted into Grafana.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from dashboards.grafana import dashboard_configmaps
from fl.contract import (
    ALERTMANAGER_PORT,
    COMPONENT_ALERTMANAGER,
    COMPONENT_GRAFANA,
    COMPONENT_PROMETHEUS,
    GRAFANA_DASHBOARDS_MOUNT,
    GRAFANA_PORT,
    GRAFANA_PROVISIONING_MOUNT,
    PROMETHEUS_PORT,
)
from infra.components.common import fingerprint, labels
from infra.components.endpoints import MonitoringEndpoints
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
    volume_claim,
)
from infra.components.monitoring_config import (
    ALERTMANAGER_CONFIG_DIR,
    ALERTMANAGER_CONFIG_FILE,
    ALERTMANAGER_DATA,
    ALERTMANAGER_HOST,
    ALERTMANAGER_URL_IN_STACK,
    GRAFANA_ADMIN_PASSWORD_ENV,
    GRAFANA_ADMIN_USER_ENV,
    GRAFANA_DATA,
    GRAFANA_HOST,
    PROMETHEUS_CONFIG_DIR,
    PROMETHEUS_DATA,
    PROMETHEUS_HOST,
    PROMETHEUS_URL_IN_STACK,
    alertmanager_args,
    alertmanager_file,
    grafana_env,
    grafana_provisioning,
    prometheus_args,
    prometheus_files,
)
from infra.components.site import Site
from infra.stacks.model import ContainerResources, Target

NOBODY = 65534
GRAFANA_UID = 472  # the grafana/grafana image's user
DATA_CLAIM = "data"


def _key(path: str) -> str:
    """ConfigMap keys cannot hold '/': ``rules/x.yml`` → ``rules_x.yml``."""
    return path.replace("/", "_")


def _statefulset(
    site: Site,
    parent: pulumi.Resource,
    *,
    name: str,
    component: str,
    uid: int,
    container: Manifest,
    volumes: list[Manifest],
    data_size: str,
    checksum: pulumi.Input[str],
    service_account: pulumi.Input[str] | None = None,
) -> k8s.apps.v1.StatefulSet:
    pod: dict[str, Any] = {
        "securityContext": pod_security(uid),
        "automountServiceAccountToken": service_account is not None,
        "enableServiceLinks": False,
        "containers": [container],
        "volumes": [*volumes, scratch_volume()],
    }
    if service_account is not None:
        pod["serviceAccountName"] = service_account
    return k8s.apps.v1.StatefulSet(
        name,
        metadata=metadata(site, name, component),
        spec={
            "serviceName": name,
            "replicas": 1,
            "selector": match(site, component),
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Retain",
                "whenScaled": "Retain",
            },
            "template": {
                "metadata": {
                    "labels": labels(component, site.stack),
                    "annotations": {CHECKSUM_ANNOTATION: checksum},
                },
                "spec": pod,
            },
            "volumeClaimTemplates": [volume_claim(site, DATA_CLAIM, data_size, component)],
        },
        opts=site.child_opts(parent),
    )


def _container(
    name: str,
    image: str,
    spec: ContainerResources,
    port: int,
    ready: str,
    live: str,
    mounts: list[Manifest],
    **extra: Any,
) -> Manifest:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "volumeMounts": [*mounts, scratch_mount()],
        "resources": resources(spec),
        "securityContext": container_security(),
        "startupProbe": startup(http_probe(port, ready), seconds=180),
        "readinessProbe": http_probe(port, ready),
        "livenessProbe": http_probe(port, live, period=20),
        **extra,
    }


def monitoring(
    parent: pulumi.Resource,
    site: Site,
    grafana_password: pulumi.Output[str],
    webhook_url: pulumi.Output[str] | None,
) -> MonitoringEndpoints:
    settings = site.settings
    opts = site.child_opts(parent)
    images = settings.monitoring
    storage = settings.storage

    # ------------------------------------------------------------ Prometheus
    account = k8s.core.v1.ServiceAccount(
        "prometheus-sa", metadata=metadata(site, PROMETHEUS_HOST, COMPONENT_PROMETHEUS), opts=opts
    )
    role = k8s.rbac.v1.Role(
        "prometheus-discovery",
        metadata=metadata(site, "prometheus-discovery", COMPONENT_PROMETHEUS),
        rules=[{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
        opts=opts,
    )
    k8s.rbac.v1.RoleBinding(
        "prometheus-discovery",
        metadata=metadata(site, "prometheus-discovery", COMPONENT_PROMETHEUS),
        role_ref={
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": role.metadata.apply(lambda m: m.name),
        },
        subjects=[
            {
                "kind": "ServiceAccount",
                "name": account.metadata.apply(lambda m: m.name),
                "namespace": site.namespace,
            }
        ],
        opts=opts,
    )
    prom = prometheus_files(Target.KUBERNETES, site.stack, namespace=settings.kubernetes.namespace)
    prom_config = k8s.core.v1.ConfigMap(
        "prometheus-config",
        metadata=metadata(site, "prometheus-config", COMPONENT_PROMETHEUS),
        data={_key(path): text for path, text in prom.by_path().items()},
        opts=opts,
    )
    _statefulset(
        site,
        parent,
        name=PROMETHEUS_HOST,
        component=COMPONENT_PROMETHEUS,
        uid=NOBODY,
        container=_container(
            PROMETHEUS_HOST,
            images.prometheus_image,
            settings.resources.prometheus,
            PROMETHEUS_PORT,
            "/-/ready",
            "/-/healthy",
            [
                {"name": "config", "mountPath": PROMETHEUS_CONFIG_DIR, "readOnly": True},
                {"name": DATA_CLAIM, "mountPath": PROMETHEUS_DATA},
            ],
            args=prometheus_args(images.retention),
        ),
        volumes=[
            {
                "name": "config",
                "configMap": {
                    "name": prom_config.metadata.apply(lambda m: m.name),
                    "items": [{"key": _key(p), "path": p} for p in prom.by_path()],
                },
            }
        ],
        data_size=storage.prometheus,
        checksum=fingerprint(prom.by_path().values()),
        service_account=account.metadata.apply(lambda m: m.name),
    )
    service(
        site,
        "prometheus-service",
        PROMETHEUS_HOST,
        COMPONENT_PROMETHEUS,
        [("http", PROMETHEUS_PORT)],
        parent,
    )
    allow_ingress(
        site,
        "prometheus-from-grafana",
        COMPONENT_PROMETHEUS,
        PROMETHEUS_PORT,
        [COMPONENT_GRAFANA],
        parent,
    )

    # ------------------------------------------------------------ Alertmanager
    am_text: pulumi.Input[str] = (
        webhook_url.apply(alertmanager_file) if webhook_url is not None else alertmanager_file(None)
    )
    am_secret = k8s.core.v1.Secret(
        "alertmanager-config",
        metadata=metadata(site, "alertmanager-config", COMPONENT_ALERTMANAGER),
        type="Opaque",
        string_data={ALERTMANAGER_CONFIG_FILE: am_text},
        opts=opts,
    )
    _statefulset(
        site,
        parent,
        name=ALERTMANAGER_HOST,
        component=COMPONENT_ALERTMANAGER,
        uid=NOBODY,
        container=_container(
            ALERTMANAGER_HOST,
            images.alertmanager_image,
            settings.resources.alertmanager,
            ALERTMANAGER_PORT,
            "/-/ready",
            "/-/healthy",
            [
                {"name": "config", "mountPath": ALERTMANAGER_CONFIG_DIR, "readOnly": True},
                {"name": DATA_CLAIM, "mountPath": ALERTMANAGER_DATA},
            ],
            args=alertmanager_args(),
        ),
        volumes=[
            {
                "name": "config",
                "secret": {
                    "secretName": am_secret.metadata.apply(lambda m: m.name),
                    "defaultMode": 0o440,
                },
            }
        ],
        data_size=storage.alertmanager,
        checksum=pulumi.Output.secret(
            pulumi.Output.from_input(am_text).apply(lambda t: fingerprint([t]))
        ),
    )
    service(
        site,
        "alertmanager-service",
        ALERTMANAGER_HOST,
        COMPONENT_ALERTMANAGER,
        [("http", ALERTMANAGER_PORT)],
        parent,
    )
    allow_ingress(
        site,
        "alertmanager-from-monitoring",
        COMPONENT_ALERTMANAGER,
        ALERTMANAGER_PORT,
        [COMPONENT_PROMETHEUS, COMPONENT_GRAFANA],
        parent,
    )

    # ------------------------------------------------------------ Grafana
    admin = k8s.core.v1.Secret(
        "grafana-admin",
        metadata=metadata(site, "grafana-admin", COMPONENT_GRAFANA),
        type="Opaque",
        string_data={"admin-user": images.grafana_admin_user, "admin-password": grafana_password},
        opts=opts,
    )
    provisioning = grafana_provisioning(PROMETHEUS_URL_IN_STACK, ALERTMANAGER_URL_IN_STACK)
    provisioning_map = k8s.core.v1.ConfigMap(
        "grafana-provisioning",
        metadata=metadata(site, "grafana-provisioning", COMPONENT_GRAFANA),
        data={_key(path): text for path, text in provisioning.items()},
        opts=opts,
    )
    dashboard_maps: list[tuple[k8s.core.v1.ConfigMap, list[str]]] = []
    dashboard_texts: list[str] = []
    for manifest in dashboard_configmaps(settings.kubernetes.namespace):
        meta = manifest["metadata"]
        data: dict[str, str] = manifest["data"]
        dashboard_texts.extend(data.values())
        config_map = k8s.core.v1.ConfigMap(
            f"dashboard-{meta['name']}",
            metadata={
                **meta,
                "namespace": site.namespace,
                "labels": {**meta.get("labels", {}), **labels(COMPONENT_GRAFANA, site.stack)},
            },
            data=data,
            opts=opts,
        )
        dashboard_maps.append((config_map, sorted(data)))
    admin_name = admin.metadata.apply(lambda m: m.name)
    secret_env = [
        {"name": variable, "valueFrom": {"secretKeyRef": {"name": admin_name, "key": key}}}
        for variable, key in (
            (GRAFANA_ADMIN_USER_ENV, "admin-user"),
            (GRAFANA_ADMIN_PASSWORD_ENV, "admin-password"),
        )
    ]
    _statefulset(
        site,
        parent,
        name=GRAFANA_HOST,
        component=COMPONENT_GRAFANA,
        uid=GRAFANA_UID,
        container=_container(
            GRAFANA_HOST,
            images.grafana_image,
            settings.resources.grafana,
            GRAFANA_PORT,
            "/api/health",
            "/api/health",
            [
                {"name": DATA_CLAIM, "mountPath": GRAFANA_DATA},
                {"name": "provisioning", "mountPath": GRAFANA_PROVISIONING_MOUNT, "readOnly": True},
                {"name": "dashboards", "mountPath": GRAFANA_DASHBOARDS_MOUNT, "readOnly": True},
            ],
            env=[*secret_env, *env({**grafana_env(), "GF_PATHS_LOGS": "/tmp/grafana-logs"})],
        ),
        volumes=[
            {
                "name": "provisioning",
                "configMap": {
                    "name": provisioning_map.metadata.apply(lambda m: m.name),
                    "items": [{"key": _key(p), "path": p} for p in provisioning],
                },
            },
            {
                "name": "dashboards",
                "projected": {
                    "sources": [
                        {
                            "configMap": {
                                "name": cm.metadata.apply(lambda m: m.name),
                                "items": [{"key": k, "path": k} for k in keys],
                            }
                        }
                        for cm, keys in dashboard_maps
                    ]
                },
            },
        ],
        data_size=storage.grafana,
        checksum=fingerprint([*provisioning.values(), *dashboard_texts]),
    )
    service(
        site,
        "grafana-service",
        GRAFANA_HOST,
        COMPONENT_GRAFANA,
        [("http", GRAFANA_PORT)],
        parent,
        service_type=settings.kubernetes.service_type,
    )
    allow_ingress(site, "grafana-from-anywhere", COMPONENT_GRAFANA, GRAFANA_PORT, None, parent)

    def url(host: str, port: int) -> pulumi.Output[str]:
        return pulumi.Output.from_input(f"http://{site.service_host(host)}:{port}")

    return MonitoringEndpoints(
        prometheus_url=url(PROMETHEUS_HOST, PROMETHEUS_PORT),
        alertmanager_url=url(ALERTMANAGER_HOST, ALERTMANAGER_PORT),
        grafana_url=url(GRAFANA_HOST, GRAFANA_PORT),
    )
