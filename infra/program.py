"""The Pulumi program: settings in, components built, stack outputs out."""

from __future__ import annotations

import pulumi

from infra.components.common import AGGREGATOR_HOSTNAME
from infra.components.image import FlImage
from infra.components.pki import Pki
from infra.components.site import Foundation
from infra.components.workloads import Aggregator, Monitoring, NodeFleet
from infra.stacks import StackSecrets, StackSettings, Target


def server_dns_names(settings: StackSettings) -> list[str]:
    """Every name nodes and operators use for the aggregator on this target."""
    if settings.target is Target.DOCKER:
        return [AGGREGATOR_HOSTNAME]
    namespace = settings.kubernetes.namespace
    return [
        AGGREGATOR_HOSTNAME,
        f"{AGGREGATOR_HOSTNAME}.{namespace}",
        f"{AGGREGATOR_HOSTNAME}.{namespace}.svc",
        f"{AGGREGATOR_HOSTNAME}.{namespace}.svc.cluster.local",
    ]


def build(
    stack: str, settings: StackSettings, secrets: StackSecrets
) -> dict[str, pulumi.Input[object]]:
    """Create the stack's resources; return its outputs (name → value)."""
    site = Foundation("foundation", stack, settings).site
    pki = Pki("pki", settings, server_dns_names(settings))
    image = FlImage("fl-image", settings, secrets.registry_password)
    version = settings.image.tag
    aggregator = Aggregator("aggregator", site, image.ref, pki, version)
    # nodes start once the aggregator runs (Docker: its container; Kubernetes: its pod ready)
    fleet = NodeFleet("nodes", site, image.ref, pki, version, after=[aggregator])
    monitoring = Monitoring(
        "monitoring", site, secrets.grafana_admin_password, secrets.alert_webhook_url
    )
    return {
        "target": settings.target.value,
        "metricsApiUrl": aggregator.metrics_api_url,
        "aggregatorAddress": aggregator.address,
        "grafanaUrl": monitoring.grafana_url,
        "prometheusUrl": monitoring.prometheus_url,
        "alertmanagerUrl": monitoring.alertmanager_url,
        "caCertificate": pki.ca_certificate,
        "operatorCertificate": pki.operator.cert,
        "operatorKey": pki.operator.key,  # secret
        "nodeCount": len(fleet.node_ids),
        "certificateExpiry": pki.earliest_expiry,
        "image": image.ref,
    }
