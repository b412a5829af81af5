"""Building blocks of the Docker form: containers with limits, health checks and uploads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from fl.contract import TLS_CA_FILE, TLS_CERT_FILE, TLS_CRL_FILE, TLS_KEY_FILE, TLS_MOUNT
from infra.components.common import labels
from infra.components.pki import TlsBundle
from infra.components.site import Site
from infra.stacks.model import ContainerResources
from infra.stacks.quantity import cpu_cores, memory_mib

PUBLIC_FILE_MODE = "0644"
# Docker uploads files as root; the FL containers run as uid 10001 with gid 0, so a key
# readable by owner and group (and by no one else) is readable by the process.
KEY_FILE_MODE = "0640"
RESTART_POLICY = "unless-stopped"
CPU_SHARES_PER_CORE = 1024


@dataclass(frozen=True)
class Upload:
    path: str
    content: pulumi.Input[str]
    mode: str = PUBLIC_FILE_MODE

    def args(self) -> docker.ContainerUploadArgs:
        return docker.ContainerUploadArgs(
            file=self.path, content=self.content, permissions=self.mode
        )


@dataclass(frozen=True)
class ContainerSpec:
    """What differs between the containers of a stack."""

    name: str  # logical (Pulumi) name and, prefixed with the stack, the container name
    component: str
    image: pulumi.Input[str]
    command: Sequence[str]
    resources: ContainerResources
    env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    aliases: Sequence[str] = ()
    ports: Sequence[int] = ()  # published on the host (publish_host, + port_offset)
    volumes: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)  # path -> volume name
    uploads: Sequence[Upload] = ()
    health: Sequence[str] = ()  # a CMD health check
    user: str | None = None
    entrypoint: Sequence[str] | None = None
    version: str | None = None
    extra_labels: Mapping[str, str] = field(default_factory=dict)
    group_adds: Sequence[str] = ()
    mounts: Sequence[docker.ContainerMountArgs] = ()
    capabilities: Sequence[str] = ()  # added back after dropping ALL


def tls_uploads(bundle: TlsBundle, directory: str = TLS_MOUNT) -> list[Upload]:
    files = [
        Upload(f"{directory}/{TLS_CA_FILE}", bundle.ca_cert),
        Upload(f"{directory}/{TLS_CERT_FILE}", bundle.cert),
        Upload(f"{directory}/{TLS_KEY_FILE}", bundle.key, KEY_FILE_MODE),
    ]
    if bundle.crl is not None:
        files.append(Upload(f"{directory}/{TLS_CRL_FILE}", bundle.crl))
    return files


def http_check(port: int, path: str) -> list[str]:
    """A health check for images with busybox ``wget`` (Prometheus, Alertmanager, Grafana)."""
    return ["CMD", "wget", "--quiet", "--spider", f"http://127.0.0.1:{port}{path}"]


def python_http_check(port: int, path: str) -> list[str]:
    """A health check for the FL image (Python, no curl/wget)."""
    code = f"import urllib.request as u; u.urlopen('http://127.0.0.1:{port}{path}', timeout=4)"
    return ["CMD", "python", "-c", code]


def python_tcp_check(port: int) -> list[str]:
    code = f"import socket; socket.create_connection(('127.0.0.1', {port}), 4).close()"
    return ["CMD", "python", "-c", code]


def env_list(env: Mapping[str, pulumi.Input[str]]) -> list[pulumi.Input[str]]:
    """``KEY=value`` strings (an Output only where the value is one, e.g. a secret)."""
    return [
        f"{key}={value}" if isinstance(value, str) else pulumi.Output.concat(key, "=", value)
        for key, value in sorted(env.items())
    ]


def container(
    site: Site,
    spec: ContainerSpec,
    parent: pulumi.Resource,
    after: Sequence[pulumi.Resource] = (),
) -> docker.Container:
    """A long-running container on the stack's network, limited, checked and restarted;
    created once everything in ``after`` is."""
    assert site.network is not None, "the Docker form needs the stack's network"
    limits, requests = spec.resources.limits, spec.resources.requests
    return docker.Container(
        spec.name,
        name=f"{site.prefix}-{spec.name}",
        image=spec.image,
        command=list(spec.command) or None,
        entrypoints=list(spec.entrypoint) if spec.entrypoint is not None else None,
        envs=env_list(spec.env),
        user=spec.user,
        hostname=spec.name,
        labels=[
            docker.ContainerLabelArgs(label=k, value=v)
            for k, v in {
                **labels(spec.component, site.stack, spec.version),
                **spec.extra_labels,
            }.items()
        ],
        group_adds=list(spec.group_adds) or None,
        mounts=list(spec.mounts) or None,
        networks_advanced=[
            docker.ContainerNetworksAdvancedArgs(
                name=site.network.name, aliases=[spec.name, *spec.aliases]
            )
        ],
        ports=[
            docker.ContainerPortArgs(
                internal=port,
                external=site.published_port(port),
                ip=site.settings.docker.publish_host,
            )
            for port in spec.ports
        ],
        volumes=[
            docker.ContainerVolumeArgs(volume_name=volume, container_path=path)
            for path, volume in sorted(spec.volumes.items())
        ],
        uploads=[upload.args() for upload in spec.uploads],
        healthcheck=docker.ContainerHealthcheckArgs(
            tests=list(spec.health), interval="15s", timeout="5s", retries=5, start_period="60s"
        )
        if spec.health
        else None,
        memory=memory_mib(limits.memory),
        memory_reservation=memory_mib(requests.memory),
        cpus=str(cpu_cores(limits.cpu)),
        cpu_shares=max(2, int(cpu_cores(requests.cpu) * CPU_SHARES_PER_CORE)),
        restart=RESTART_POLICY,
        capabilities=docker.ContainerCapabilitiesArgs(
            drops=["ALL"], adds=list(spec.capabilities) or None
        ),
        security_opts=["no-new-privileges:true"],
        init=True,
        log_driver="json-file",
        log_opts={"max-size": "10m", "max-file": "3"},  # 100 nodes must not fill the disk
        must_run=True,
        destroy_grace_seconds=30,
        # the name is fixed, so the old container must go before its replacement starts
        # (uploads, e.g. rotated certificates, replace the container)
        opts=pulumi.ResourceOptions(
            parent=parent, delete_before_replace=True, depends_on=list(after)
        ),
    )


def volume(site: Site, name: str, component: str, parent: pulumi.Resource) -> docker.Volume:
    """A named volume that outlives its containers (``pulumi destroy`` removes it)."""
    return docker.Volume(
        name,
        name=f"{site.prefix}-{name}",
        labels=[
            docker.VolumeLabelArgs(label=k, value=v)
            for k, v in labels(component, site.stack).items()
        ],
        opts=pulumi.ResourceOptions(parent=parent, delete_before_replace=True),
    )


def remote_image(name: str, reference: str, parent: pulumi.Resource) -> docker.RemoteImage:
    """A pinned third-party image, pulled once and kept on ``destroy``."""
    return docker.RemoteImage(
        name, name=reference, keep_locally=True, opts=pulumi.ResourceOptions(parent=parent)
    )
