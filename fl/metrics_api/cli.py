"""``sovereign-map metrics-api``: serve the metrics store over HTTP with waitress."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from fl.contract import (
    ENV_ATTACK_TABLE,
    ENV_DP_EPSILON_BUDGET,
    ENV_METRICS_API_HOST,
    ENV_METRICS_API_PORT,
    ENV_METRICS_CERT_DIR,
    ENV_METRICS_DB,
    ENV_NUM_NODES,
    ENV_NUM_ROUNDS,
    ENV_STATE_DIR,
    ENV_TLS_DIR,
    METRICS_API_PORT,
    METRICS_DB_FILE,
)
from fl.metrics_api.app import create_app
from fl.metrics_api.config import ConfigError, RunConfig, load_attack_table
from fl.metrics_api.server import DEFAULT_THREADS, make_server

POSITIVE = click.IntRange(min=1)


def resolve_store(store_path: Path | None, state_dir: str | None) -> Path:
    """--store / $SM_METRICS_DB, else the store in the aggregator's state dir."""
    if store_path is not None:
        return store_path
    if not state_dir:
        raise click.UsageError(f"give --store, or set {ENV_METRICS_DB} or {ENV_STATE_DIR}")
    return Path(state_dir) / METRICS_DB_FILE


@click.command(name="metrics-api")
@click.option(
    "--store",
    "store_path",
    envvar=ENV_METRICS_DB,
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"The aggregator's metrics store (SQLite). It may not exist yet: the API then "
    f"reports the empty state before round 1. [env: {ENV_METRICS_DB}; else "
    f"${ENV_STATE_DIR}/{METRICS_DB_FILE}]",
)
@click.option(
    "--host",
    envvar=ENV_METRICS_API_HOST,
    default="0.0.0.0",
    show_default=True,
    help=f"Address to listen on; 127.0.0.1 for this machine only. [env: {ENV_METRICS_API_HOST}]",
)
@click.option(
    "--port",
    envvar=ENV_METRICS_API_PORT,
    default=METRICS_API_PORT,
    show_default=True,
    type=click.IntRange(1, 65535),
    help=f"TCP port. [env: {ENV_METRICS_API_PORT}]",
)
@click.option(
    "--cert-dir",
    envvar=[ENV_METRICS_CERT_DIR, ENV_TLS_DIR],
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help=f"Directory of PEM certificates (*.crt, *.pem; searched recursively) whose "
    f"days to expiry /metrics reports. [env: {ENV_METRICS_CERT_DIR}, "
    f"then {ENV_TLS_DIR}]",
)
@click.option(
    "--attack-table",
    envvar=ENV_ATTACK_TABLE,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help=f"YAML/JSON mapping node id -> attack mode (or -> {{attack: mode, ...}}) of "
    f"the nodes configured to attack; unlisted nodes are honest. "
    f"[env: {ENV_ATTACK_TABLE}]",
)
@click.option(
    "--num-rounds",
    envvar=ENV_NUM_ROUNDS,
    type=POSITIVE,
    help=f"Rounds the run is configured for; silences the no-progress alert once "
    f"reached. [env: {ENV_NUM_ROUNDS}]",
)
@click.option(
    "--num-nodes",
    envvar=ENV_NUM_NODES,
    type=POSITIVE,
    help=f"Nodes in the run; the participation alert compares against it. [env: {ENV_NUM_NODES}]",
)
@click.option(
    "--epsilon-budget",
    envvar=ENV_DP_EPSILON_BUDGET,
    type=click.FloatRange(min=0, min_open=True),
    help=f"Per-node ε budget; the privacy alert compares the largest ε against it. "
    f"[env: {ENV_DP_EPSILON_BUDGET}]",
)
@click.option(
    "--threads",
    default=DEFAULT_THREADS,
    show_default=True,
    type=POSITIVE,
    help="Waitress worker threads.",
)
def metrics_api(
    store_path: Path | None,
    host: str,
    port: int,
    cert_dir: Path | None,
    attack_table: Path | None,
    num_rounds: int | None,
    num_nodes: int | None,
    epsilon_budget: float | None,
    threads: int,
) -> None:
    """Serve the metrics store: /health, /convergence, /metrics_summary and Prometheus /metrics.

    \b
    Example:
      sovereign-map metrics-api --store state/metrics.sqlite --host 127.0.0.1
      curl http://127.0.0.1:8000/convergence | jq .current_accuracy
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    store_path = resolve_store(store_path, os.environ.get(ENV_STATE_DIR))
    if store_path.parent.exists() and not store_path.parent.is_dir():
        raise click.BadParameter(f"{store_path.parent} is not a directory", param_hint="--store")
    try:
        attacks = load_attack_table(attack_table) if attack_table else {}
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    config = RunConfig(
        rounds_planned=num_rounds,
        nodes_expected=num_nodes,
        epsilon_budget=epsilon_budget,
        attacks=attacks,
    )
    app = create_app(store_path, cert_dir, run_config=config)
    try:
        server = make_server(app, host, port, threads)
    except OSError as exc:
        reason = exc.strerror or exc
        raise click.ClickException(f"cannot listen on {host}:{port}: {reason}") from exc
    click.echo(f"metrics API on http://{host}:{server.effective_port} serving {store_path}")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
