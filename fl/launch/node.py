"""``sovereign-map node``: one node — a SuperNode presenting its client certificate, the
ClientApp it runs, and a Prometheus endpoint with the node's metrics.

Identity: ``NODE_ID`` (``node-3``) names the node; its ordinal is its data partition
unless ``SM_PARTITION_ID`` says otherwise; ``SM_NUM_NODES`` is the number of partitions
and must match the aggregator's. The certificate in ``SM_TLS_DIR`` must be a client
certificate for that node id. Stake and attack mode come from ``SM_NODE_STAKE`` and
``SM_NODE_ATTACK`` (the aggregator weighs nodes by its own stake table; the node reports
its stake as a metric).

Metrics (``NODE_METRICS_PORT``, ``/metrics``): CPU and memory of the node's processes
and its training metrics — fits, training time, loss, examples, bytes sent, ε — which the
ClientApp process appends to a fit log in the node's state dir (``fl.node_metrics``).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import click

from fl.contract import (
    AGGREGATOR_PORT,
    ATTACK_MODES,
    ENV_AGGREGATOR_HOST,
    ENV_AGGREGATOR_PORT,
    ENV_ATTACK_SCALE,
    ENV_NODE_ATTACK,
    ENV_NODE_ID,
    ENV_NODE_METRICS_PORT,
    ENV_NODE_STAKE,
    ENV_NODE_STATE_DIR,
    ENV_NUM_NODES,
    ENV_PARTITION_ID,
    ENV_TLS_DIR,
    NODE_FIT_LOG_FILE,
    NODE_METRICS_PORT,
)
from fl.launch.config_options import PORT, check_listen, clear_errors, data_dir_option
from fl.launch.proc import configure_logging, pythonpath_with_our_packages
from fl.launch.supervise import Children, Stop, shielded, stop_signals

__all__ = ["node", "node_config_for"]

log = logging.getLogger("sovereign_map.node")


def node_config_for(
    *,
    node_id: str,
    partition_id: int,
    num_nodes: int,
    attack: str,
    attack_scale: float,
    stake: float,
    data_dir: Path | None,
    fit_log: Path,
) -> dict[str, str | int | float]:
    """The Flower node config the ClientApp reads (see ``fl.client_app.identity``)."""
    config: dict[str, str | int | float] = {
        "node-id": node_id,
        "partition-id": partition_id,
        "num-partitions": num_nodes,
        "attack": attack,
        "attack-scale": attack_scale,
        "stake": stake,
        "data-dir": str(data_dir.resolve()) if data_dir else "",  # "": the download cache
        "metrics-file": str(fit_log.resolve()),
    }
    for key, value in config.items():
        if isinstance(value, str) and any(c.isspace() or c in "\"'\\" for c in value):
            raise click.ClickException(
                f"{key} {value!r}: paths with spaces or quotes cannot be passed to Flower"
            )
    return config


def _partition_of(node_id: str, override: int | None) -> int:
    from certs.layout import validate_node_id

    with clear_errors():
        validate_node_id(node_id)
    return int(node_id.rsplit("-", 1)[1]) if override is None else override


@click.command(name="node")
@click.option(
    "--tls-dir",
    envvar=ENV_TLS_DIR,
    show_envvar=True,
    required=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="The node's TLS bundle: ca.crt, tls.crt (a client certificate whose CN is "
    "the node id), tls.key.",
)
@click.option(
    "--node-id",
    envvar=ENV_NODE_ID,
    show_envvar=True,
    required=True,
    help="The node id, e.g. node-3; the ordinal after the last '-' is the node's data partition.",
)
@click.option(
    "--partition-id",
    envvar=ENV_PARTITION_ID,
    show_envvar=True,
    type=click.IntRange(min=0),
    help="Data partition. [default: the node id's ordinal]",
)
@click.option(
    "--nodes",
    envvar=ENV_NUM_NODES,
    show_envvar=True,
    required=True,
    type=click.IntRange(min=1),
    help="Number of partitions (nodes) of the federation; as on the aggregator.",
)
@click.option(
    "--aggregator-host",
    envvar=ENV_AGGREGATOR_HOST,
    show_envvar=True,
    default="127.0.0.1",
    show_default=True,
    help="Aggregator host name or address (one of the names on its certificate).",
)
@click.option(
    "--aggregator-port",
    envvar=ENV_AGGREGATOR_PORT,
    show_envvar=True,
    type=PORT,
    default=AGGREGATOR_PORT,
    show_default=True,
    help="Aggregator port.",
)
@click.option(
    "--stake",
    envvar=ENV_NODE_STAKE,
    show_envvar=True,
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="The node's stake (reported as a metric; the aggregator's stake table "
    "decides the weights).",
)
@click.option(
    "--attack",
    envvar=ENV_NODE_ATTACK,
    show_envvar=True,
    type=click.Choice(ATTACK_MODES),
    default="honest",
    show_default=True,
    help="Behaviour of the node: honest, or a Byzantine attack on its updates/labels.",
)
@click.option(
    "--attack-scale",
    envvar=ENV_ATTACK_SCALE,
    show_envvar=True,
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Strength of the attack (sign-flip and gaussian).",
)
@data_dir_option()
@click.option(
    "--state-dir",
    envvar=ENV_NODE_STATE_DIR,
    show_envvar=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Scratch space: the fit log the metrics come from and Flower's app "
    "cache. [default: a new temporary directory]",
)
@click.option(
    "--metrics-host", default="0.0.0.0", show_default=True, help="Address of the metrics endpoint."
)
@click.option(
    "--metrics-port",
    envvar=ENV_NODE_METRICS_PORT,
    show_envvar=True,
    type=click.IntRange(0, 65535),
    default=NODE_METRICS_PORT,
    show_default=True,
    help="Port of the Prometheus /metrics endpoint (0: none).",
)
def node(
    tls_dir: Path,
    node_id: str,
    partition_id: int | None,
    nodes: int,
    aggregator_host: str,
    aggregator_port: int,
    stake: float,
    attack: str,
    attack_scale: float,
    data_dir: Path | None,
    state_dir: Path | None,
    metrics_host: str,
    metrics_port: int,
) -> None:
    """Run one node: a Flower SuperNode that presents the client certificate in TLS_DIR to
    the aggregator, runs the ClientApp (local DP-SGD on its MNIST partition, honest or
    attacking) and serves Prometheus metrics.

    Every option can be given as an environment variable (shown below); flags win.

    \b
    Example:
      sovereign-map node --tls-dir pki/nodes/node-0 --node-id node-0 --nodes 3 \\
          --aggregator-host 127.0.0.1 --aggregator-port 8080 --metrics-port 9101
    """
    configure_logging()
    partition = _partition_of(node_id, partition_id)
    if partition >= nodes:
        raise click.BadParameter(
            f"partition {partition} of {node_id} does not exist with {nodes} node(s) "
            f"(partitions 0..{nodes - 1}; set {ENV_NUM_NODES} / --nodes)",
            param_hint="--node-id / --partition-id",
        )
    with clear_errors():
        from fl.launch.tls_material import ClientIdentity

        identity = ClientIdentity.from_dir(tls_dir)
    if identity.subject != f"CN={node_id}":
        raise click.ClickException(
            f"the certificate in {tls_dir} is for {identity.subject}, not for {node_id}"
        )
    if state_dir is None:
        state_dir = Path(tempfile.mkdtemp(prefix=f"sovereign-map-{node_id}-"))
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(f"cannot create the state dir {state_dir}: {exc}") from None
    fit_log = state_dir / NODE_FIT_LOG_FILE
    config = node_config_for(
        node_id=node_id,
        partition_id=partition,
        num_nodes=nodes,
        attack=attack,
        attack_scale=attack_scale,
        stake=stake,
        data_dir=data_dir,
        fit_log=fit_log,
    )
    if metrics_port:
        check_listen(metrics_host, metrics_port)
    code = _run(
        tls_dir,
        f"{aggregator_host}:{aggregator_port}",
        config,
        state_dir,
        fit_log,
        metrics_host,
        metrics_port,
        stake,
    )
    if code:
        raise SystemExit(code)


def _run(
    tls_dir: Path,
    superlink: str,
    config: dict[str, str | int | float],
    state_dir: Path,
    fit_log: Path,
    metrics_host: str,
    metrics_port: int,
    stake: float,
) -> int:
    from prometheus_client import start_http_server

    from fl.launch.mtls import supernode_command
    from fl.node_metrics import node_registry

    server = None
    if metrics_port:
        server, _ = start_http_server(
            metrics_port, metrics_host, registry=node_registry(fit_log, stake=stake)
        )
        log.info("metrics on http://%s:%d/metrics", metrics_host, metrics_port)
    env = dict(os.environ)
    env["FLWR_HOME"] = str((state_dir / "flwr-home").resolve())
    env["PYTHONPATH"] = pythonpath_with_our_packages(env.get("PYTHONPATH"))
    env.setdefault("PYTHONUNBUFFERED", "1")
    log.info(
        "%s (partition %s of %s, %s) connecting to %s",
        config["node-id"],
        config["partition-id"],
        config["num-partitions"],
        config["attack"],
        superlink,
    )
    children = Children()
    try:
        with stop_signals():
            supernode = children.start(
                "supernode", supernode_command(tls_dir, superlink, config), env
            )
            while (code := supernode.exited()) is None:
                time.sleep(0.5)
            log.log(
                logging.ERROR if code else logging.INFO, "the SuperNode exited (status %d)", code
            )
            return code
    except Stop as stop:
        log.info("%s: stopping", stop)
        return 0
    finally:
        with shielded():
            children.stop_all()
        if server is not None:
            server.shutdown()
