"""The stack's workloads as components with one interface and two forms each
(Docker containers or Kubernetes objects), chosen by ``target``."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from infra.components.docker import fl as docker_fl
from infra.components.docker import monitoring as docker_monitoring
from infra.components.kubernetes import fl as kubernetes_fl
from infra.components.kubernetes import monitoring as kubernetes_monitoring
from infra.components.pki import Pki
from infra.components.site import Site
from infra.stacks.model import Target


class Aggregator(pulumi.ComponentResource):
    """SuperLink + ServerApp (port 8080, mTLS) and the metrics API (port 8000) on one
    persistent volume."""

    address: pulumi.Output[str]
    metrics_api_url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        site: Site,
        image: pulumi.Input[str],
        pki: Pki,
        version: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("sovereign-map:index:Aggregator", name, None, opts)
        form = docker_fl.aggregator if site.target is Target.DOCKER else kubernetes_fl.aggregator
        endpoints = form(self, site, image, pki, version)
        self.address = endpoints.address
        self.metrics_api_url = endpoints.metrics_api_url
        self.register_outputs({"address": self.address, "metricsApiUrl": self.metrics_api_url})


class NodeFleet(pulumi.ComponentResource):
    """``node-0`` … ``node-<n-1>``, each with its own certificate, partition, stake and
    attack mode. ``after``: what must run before any node starts (the aggregator)."""

    node_ids: list[str]

    def __init__(
        self,
        name: str,
        site: Site,
        image: pulumi.Input[str],
        pki: Pki,
        version: str,
        after: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("sovereign-map:index:NodeFleet", name, None, opts)
        form = docker_fl.nodes if site.target is Target.DOCKER else kubernetes_fl.node_fleet
        self.node_ids = form(self, site, image, pki, version, list(after))
        self.register_outputs({"nodeCount": len(self.node_ids)})


class Monitoring(pulumi.ComponentResource):
    """Prometheus, Alertmanager and Grafana with the generated configuration and dashboards,
    each on a persistent volume."""

    prometheus_url: pulumi.Output[str]
    alertmanager_url: pulumi.Output[str]
    grafana_url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        site: Site,
        grafana_password: pulumi.Output[str],
        webhook_url: pulumi.Output[str] | None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("sovereign-map:index:Monitoring", name, None, opts)
        form = (
            docker_monitoring.monitoring
            if site.target is Target.DOCKER
            else kubernetes_monitoring.monitoring
        )
        endpoints = form(self, site, grafana_password, webhook_url)
        self.prometheus_url = endpoints.prometheus_url
        self.alertmanager_url = endpoints.alertmanager_url
        self.grafana_url = endpoints.grafana_url
        self.register_outputs(
            {
                "prometheusUrl": self.prometheus_url,
                "alertmanagerUrl": self.alertmanager_url,
                "grafanaUrl": self.grafana_url,
            }
        )
