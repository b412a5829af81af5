"""Docker form of the FL workloads: the aggregator (+ metrics API) and the node fleet."""

from __future__ import annotations

import pulumi

from fl.contract import (
    AGGREGATOR_PORT,
    AGGREGATOR_STATE_MOUNT,
    COMPONENT_AGGREGATOR,
    COMPONENT_METRICS_API,
    COMPONENT_NODE,
    LABEL_NODE_ID,
    METRICS_API_PORT,
    NODE_METRICS_PORT,
    OPERATOR_TLS_MOUNT,
)
from infra.components.common import (
    AGGREGATOR_HOSTNAME,
    APP_UID,
    ATTACK_TABLE_FILE,
    CERTS_MOUNT,
    METRICS_API_HOSTNAME,
    STAKES_FILE,
    aggregator_env,
    metrics_api_env,
    node_common_env,
    node_profile,
    to_json,
)
from infra.components.docker.base import (
    ContainerSpec,
    Upload,
    container,
    python_http_check,
    python_tcp_check,
    tls_uploads,
    volume,
)
from infra.components.endpoints import AggregatorEndpoints
from infra.components.pki import Pki
from infra.components.site import Site

ENTRYPOINT = ["sovereign-map"]
# uid of the image's user, gid 0: the group that owns the uploaded files (see KEY_FILE_MODE)
FL_USER = f"{APP_UID}:0"


def aggregator(
    parent: pulumi.Resource, site: Site, image: pulumi.Input[str], pki: Pki, version: str
) -> AggregatorEndpoints:
    settings = site.settings
    state = volume(site, "aggregator-state", COMPONENT_AGGREGATOR, parent)
    container(
        site,
        ContainerSpec(
            name=AGGREGATOR_HOSTNAME,
            component=COMPONENT_AGGREGATOR,
            image=image,
            entrypoint=ENTRYPOINT,
            command=["aggregator"],
            env=aggregator_env(settings),
            user=FL_USER,
            resources=settings.resources.aggregator,
            ports=[AGGREGATOR_PORT],
            volumes={AGGREGATOR_STATE_MOUNT: state.name},
            uploads=[
                *tls_uploads(pki.server),
                *tls_uploads(pki.operator, OPERATOR_TLS_MOUNT),
                Upload(STAKES_FILE, to_json(settings.stake_table())),
            ],
            health=python_tcp_check(AGGREGATOR_PORT),
            version=version,
        ),
        parent,
    )
    container(
        site,
        ContainerSpec(
            name=METRICS_API_HOSTNAME,
            component=COMPONENT_METRICS_API,
            image=image,
            entrypoint=ENTRYPOINT,
            command=["metrics-api"],
            env=metrics_api_env(settings),
            user=FL_USER,
            resources=settings.resources.metrics_api,
            ports=[METRICS_API_PORT],
            volumes={AGGREGATOR_STATE_MOUNT: state.name},
            uploads=[
                *(
                    Upload(f"{CERTS_MOUNT}/{name}", pem)
                    for name, pem in pki.public_certificates().items()
                ),
                Upload(ATTACK_TABLE_FILE, to_json(settings.attack_table())),
            ],
            health=python_http_check(METRICS_API_PORT, "/health"),
            version=version,
        ),
        parent,
    )
    host = settings.docker.publish_host
    return AggregatorEndpoints(
        address=pulumi.Output.from_input(f"{host}:{site.published_port(AGGREGATOR_PORT)}"),
        metrics_api_url=pulumi.Output.from_input(site.local_url(METRICS_API_PORT)),
    )


def nodes(
    parent: pulumi.Resource,
    site: Site,
    image: pulumi.Input[str],
    pki: Pki,
    version: str,
    after: list[pulumi.Resource],
) -> list[str]:
    """One container per node, ``node-<i>``, each with its own certificate and profile."""
    settings = site.settings
    common = node_common_env(settings)
    names: list[str] = []
    for ordinal, node in enumerate(settings.node_ids):
        container(
            site,
            ContainerSpec(
                name=node,
                component=COMPONENT_NODE,
                image=image,
                entrypoint=ENTRYPOINT,
                command=["node"],
                env={**common, **node_profile(settings, ordinal)},
                user=FL_USER,
                resources=settings.resources.node,
                uploads=tls_uploads(pki.node(node)),
                health=python_http_check(NODE_METRICS_PORT, "/metrics"),
                version=version,
                extra_labels={LABEL_NODE_ID: node},
            ),
            parent,
            after,
        )
        names.append(node)
    return names
