"""Where a stack's workloads go: a Docker network, or a Kubernetes namespace.

Every workload component takes a :class:`Site` and builds its Docker or its Kubernetes
form from it, so ``target: docker|kubernetes`` is the only switch.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_kubernetes as k8s

from infra.components.common import labels
from infra.stacks.model import StackSettings, Target


@dataclass(frozen=True)
class Site:
    stack: str
    settings: StackSettings
    network: docker.Network | None = None  # Docker form
    namespace: pulumi.Output[str] | None = None  # Kubernetes form
    provider: k8s.Provider | None = None  # Kubernetes form, when a context is configured

    @property
    def target(self) -> Target:
        return self.settings.target

    @property
    def prefix(self) -> str:
        """Docker container and volume names: unique per stack on one daemon."""
        return f"sovereign-map-{self.stack}"

    def published_port(self, port: int) -> int:
        return port + self.settings.docker.port_offset

    def local_url(self, port: int, scheme: str = "http") -> str:
        host = self.settings.docker.publish_host
        return f"{scheme}://{host}:{self.published_port(port)}"

    def service_host(self, service: str) -> str:
        """Kubernetes: the in-cluster DNS name of a Service of this stack."""
        return f"{service}.{self.settings.kubernetes.namespace}.svc.cluster.local"

    def child_opts(self, parent: pulumi.Resource) -> pulumi.ResourceOptions:
        """Options for a Kubernetes object inside a component: the provider when there is
        one, and delete-before-replace (objects have fixed names, so a replacement cannot
        exist next to the object it replaces)."""
        return pulumi.ResourceOptions(
            parent=parent, provider=self.provider, delete_before_replace=True
        )


class Foundation(pulumi.ComponentResource):
    """The Docker network, or the namespace with its default-deny NetworkPolicy."""

    site: Site

    def __init__(
        self,
        name: str,
        stack: str,
        settings: StackSettings,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("sovereign-map:index:Foundation", name, None, opts)
        if settings.target is Target.DOCKER:
            self.site = self._docker(name, stack, settings)
        else:
            self.site = self._kubernetes(name, stack, settings)
        self.register_outputs({})

    def _docker(self, name: str, stack: str, settings: StackSettings) -> Site:
        site = Site(stack, settings)
        network = docker.Network(
            f"{name}-network",
            name=site.prefix,
            driver="bridge",
            labels=[{"label": k, "value": v} for k, v in labels("network", stack).items()],
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        return Site(stack, settings, network=network)

    def _kubernetes(self, name: str, stack: str, settings: StackSettings) -> Site:
        provider = None
        if settings.kubernetes.context:
            provider = k8s.Provider(
                f"{name}-provider",
                context=settings.kubernetes.context,
                opts=pulumi.ResourceOptions(parent=self),
            )
        site = Site(stack, settings, provider=provider)
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={
                "name": settings.kubernetes.namespace,
                "labels": {
                    **labels("namespace", stack),
                    # Pod Security Admission: every pod here meets the restricted profile.
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                },
            },
            opts=site.child_opts(self),
        )
        ns = namespace.metadata.apply(lambda m: m.name)
        k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata={
                "name": "default-deny-ingress",
                "namespace": ns,
                "labels": labels("policy", stack),
            },
            spec={"podSelector": {}, "policyTypes": ["Ingress"]},
            opts=site.child_opts(self),
        )
        return Site(stack, settings, namespace=ns, provider=provider)
