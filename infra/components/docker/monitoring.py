"""Docker form of monitoring: Prometheus (Docker service discovery), Alertmanager, Grafana,
each with a named volume, its generated configuration uploaded into the container."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

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
from infra.components.docker.base import (
    KEY_FILE_MODE,
    ContainerSpec,
    Upload,
    container,
    http_check,
    remote_image,
    volume,
)
from infra.components.endpoints import MonitoringEndpoints
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
    grafana_dashboards,
    grafana_env,
    grafana_provisioning,
    prometheus_args,
    prometheus_files,
)
from infra.components.site import Site
from infra.stacks.model import Target

NOBODY = 65534
DOCKER_SOCKET_IN_CONTAINER = "/var/run/docker.sock"


def monitoring(
    parent: pulumi.Resource,
    site: Site,
    grafana_password: pulumi.Output[str],
    webhook_url: pulumi.Output[str] | None,
) -> MonitoringEndpoints:
    settings = site.settings
    images = settings.monitoring
    prom_files = prometheus_files(Target.DOCKER, site.stack, network=site.prefix)
    socket_gid = settings.docker.socket_gid
    container(
        site,
        ContainerSpec(
            name=PROMETHEUS_HOST,
            component=COMPONENT_PROMETHEUS,
            image=remote_image("prometheus-image", images.prometheus_image, parent).image_id,
            command=prometheus_args(images.retention),
            resources=settings.resources.prometheus,
            ports=[PROMETHEUS_PORT],
            volumes={
                PROMETHEUS_DATA: volume(site, "prometheus-data", COMPONENT_PROMETHEUS, parent).name
            },
            uploads=[
                Upload(f"{PROMETHEUS_CONFIG_DIR}/{path}", text)
                for path, text in prom_files.by_path().items()
            ],
            mounts=[
                docker.ContainerMountArgs(
                    type="bind",
                    source=settings.docker.socket_path,
                    target=DOCKER_SOCKET_IN_CONTAINER,
                    read_only=True,
                )
            ],
            user=f"{NOBODY}:{NOBODY}" if socket_gid is not None else "0:0",
            group_adds=[str(socket_gid)] if socket_gid is not None else (),
            # as root without capabilities it could not write its data directory (owned by
            # nobody in the image): give back only DAC_OVERRIDE
            capabilities=() if socket_gid is not None else ("DAC_OVERRIDE",),
            health=http_check(PROMETHEUS_PORT, "/-/healthy"),
        ),
        parent,
    )
    am_config: pulumi.Input[str] = (
        webhook_url.apply(alertmanager_file) if webhook_url is not None else alertmanager_file(None)
    )
    container(
        site,
        ContainerSpec(
            name=ALERTMANAGER_HOST,
            component=COMPONENT_ALERTMANAGER,
            image=remote_image("alertmanager-image", images.alertmanager_image, parent).image_id,
            command=alertmanager_args(),
            resources=settings.resources.alertmanager,
            ports=[ALERTMANAGER_PORT],
            volumes={
                ALERTMANAGER_DATA: volume(
                    site, "alertmanager-data", COMPONENT_ALERTMANAGER, parent
                ).name
            },
            # may hold a webhook URL with a token: not world-readable
            uploads=[
                Upload(
                    f"{ALERTMANAGER_CONFIG_DIR}/{ALERTMANAGER_CONFIG_FILE}",
                    am_config,
                    KEY_FILE_MODE,
                )
            ],
            user=f"{NOBODY}:0",
            health=http_check(ALERTMANAGER_PORT, "/-/healthy"),
        ),
        parent,
    )
    provisioning = grafana_provisioning(PROMETHEUS_URL_IN_STACK, ALERTMANAGER_URL_IN_STACK)
    container(
        site,
        ContainerSpec(
            name=GRAFANA_HOST,
            component=COMPONENT_GRAFANA,
            image=remote_image("grafana-image", images.grafana_image, parent).image_id,
            command=(),
            env={
                **grafana_env(),
                GRAFANA_ADMIN_USER_ENV: images.grafana_admin_user,
                GRAFANA_ADMIN_PASSWORD_ENV: grafana_password,
            },
            resources=settings.resources.grafana,
            ports=[GRAFANA_PORT],
            volumes={GRAFANA_DATA: volume(site, "grafana-data", COMPONENT_GRAFANA, parent).name},
            uploads=[
                *(
                    Upload(f"{GRAFANA_PROVISIONING_MOUNT}/{path}", text)
                    for path, text in provisioning.items()
                ),
                *(
                    Upload(f"{GRAFANA_DASHBOARDS_MOUNT}/{name}", text)
                    for name, text in grafana_dashboards().items()
                ),
            ],
            health=http_check(GRAFANA_PORT, "/api/health"),
        ),
        parent,
    )
    return MonitoringEndpoints(
        prometheus_url=pulumi.Output.from_input(site.local_url(PROMETHEUS_PORT)),
        alertmanager_url=pulumi.Output.from_input(site.local_url(ALERTMANAGER_PORT)),
        grafana_url=pulumi.Output.from_input(site.local_url(GRAFANA_PORT)),
    )
