"""``sovereign-map aggregator``: the SuperLink with mutual TLS, and the run it submits.

What it does, in order:

1. reads its configuration from flags or environment variables (``fl.contract`` names;
   flags win) and validates all of it: the run settings (``fl.settings.RunSettings``),
   the server and operator certificates (the server's must be valid for the address the
   launcher itself uses), the port;
2. starts the Flower SuperLink (``fl.launch.mtls``: the port requires a client
   certificate from the stack CA that is not revoked; refusals are logged) with
   ``SM_STATE_DIR`` set, so the ServerApp keeps its checkpoints and the metrics store
   there;
3. submits the run itself — ``flwr run`` with the operator certificate, the app generated
   from the settings (``fl.launch.submit``) — records it in ``STATE/run.json`` and streams
   the run's log (ServerApp output, one line per round) into its own output. The
   ServerApp waits until ``MIN_FIT_CLIENTS`` nodes are connected before each round.
   After a restart it submits again and the ServerApp resumes from the last checkpoint;
   when the checkpoints already hold every round, it only serves;
4. stays in the foreground until SIGTERM/SIGINT, then stops the SuperLink and everything
   it started.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from fl.checkpoints import Checkpoints
from fl.contract import (
    AGGREGATOR_PORT,
    CHECKPOINT_DIR,
    ENV_AGGREGATOR_PORT,
    ENV_ALPHA,
    ENV_DATA_DIR,
    ENV_DP_DELTA,
    ENV_DP_ENABLED,
    ENV_DP_EPSILON_BUDGET,
    ENV_DP_MAX_GRAD_NORM,
    ENV_DP_NOISE_MULTIPLIER,
    ENV_MIN_FIT_CLIENTS,
    ENV_NUM_NODES,
    ENV_NUM_ROUNDS,
    ENV_OPERATOR_TLS_DIR,
    ENV_PARTITION,
    ENV_RULE,
    ENV_SAMPLES_PER_NODE,
    ENV_SEED,
    ENV_STAKES_FILE,
    ENV_STATE_DIR,
    ENV_TLS_DIR,
)
from fl.launch.config_options import (
    PORT,
    check_listen,
    clear_errors,
    data_dir_option,
    parse_pairs,
)
from fl.launch.proc import configure_logging, local_address, pythonpath_with_our_packages
from fl.launch.run_info import write_run_info
from fl.launch.supervise import Child, Children, Stop, shielded, stop_signals

__all__ = ["aggregator"]

log = logging.getLogger("sovereign_map.aggregator")

READY_TIMEOUT_S = 120.0
OPERATOR_HOME = "operator-flwr-home"  # under the state dir: the flwr CLI's connection
APP_DIR = "app"  # under the state dir: the generated Flower app

# Run-config key -> where the value comes from (for error messages).
SOURCES: dict[str, str] = {
    "num-server-rounds": f"--rounds / {ENV_NUM_ROUNDS}",
    "num-nodes": f"--nodes / {ENV_NUM_NODES}",
    "min-train-nodes": f"--min-fit-clients / {ENV_MIN_FIT_CLIENTS}",
    "rule": f"--rule / {ENV_RULE}",
    "stakes": f"--stakes-file / {ENV_STAKES_FILE}",
    "partition": f"--partition / {ENV_PARTITION}",
    "alpha": f"--dirichlet-alpha / {ENV_ALPHA}",
    "seed": f"--seed / {ENV_SEED}",
    "samples-per-node": f"--samples-per-node / {ENV_SAMPLES_PER_NODE}",
    "dp": f"--dp/--no-dp / {ENV_DP_ENABLED}",
    "noise-multiplier": f"--noise-multiplier / {ENV_DP_NOISE_MULTIPLIER}",
    "max-grad-norm": f"--max-grad-norm / {ENV_DP_MAX_GRAD_NORM}",
    "delta": f"--delta / {ENV_DP_DELTA}",
    "epsilon-budget": f"--epsilon-budget / {ENV_DP_EPSILON_BUDGET}",
    "data-dir": f"--data-dir / {ENV_DATA_DIR}",
}


def _defaults() -> Any:
    from fl.settings import RunSettings

    return RunSettings()


_D = _defaults()
_dir = click.Path(path_type=Path, file_okay=False)
_existing_dir = click.Path(path_type=Path, file_okay=False, exists=True)


def build_settings(values: Mapping[str, bool | int | float | str]) -> Any:
    """Validated ``RunSettings``; a bad value names its flag and variable."""
    from fl.settings import RunSettings, SettingsError

    known = set(RunSettings().to_run_config())
    unknown = sorted(set(values) - known)
    if unknown:
        raise click.BadParameter(
            f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}",
            param_hint="--run-config",
        )
    try:
        return RunSettings.from_run_config(values)
    except SettingsError as exc:
        message = str(exc)
        hints = [f"{key}: {SOURCES[key]}" for key in SOURCES if message.startswith(key)]
        suffix = f" ({'; '.join(hints)})" if hints else ""
        raise click.ClickException(f"invalid configuration: {message}{suffix}") from None


def _wait_ready(address: str, port: int, operator_dir: Path, superlink: Child) -> None:
    """Wait until the SuperLink completes a TLS handshake with the operator certificate
    (a bare TCP probe would show up in the log as a refused handshake)."""
    from fl.launch.tls_material import ClientIdentity

    context = ClientIdentity.from_dir(operator_dir).ssl_context(True)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if (code := superlink.exited()) is not None:
            raise click.ClickException(f"the SuperLink exited during start-up (status {code})")
        try:
            with (
                socket.create_connection((address, port), timeout=2) as raw,
                context.wrap_socket(raw, server_hostname=address),
            ):
                return
        except (OSError, ssl.SSLError):
            time.sleep(0.3)
    raise click.ClickException(
        f"the SuperLink did not answer on port {port} within {READY_TIMEOUT_S:.0f} s"
    )


@click.command(name="aggregator")
@click.option(
    "--tls-dir",
    envvar=ENV_TLS_DIR,
    show_envvar=True,
    required=True,
    type=_existing_dir,
    help="The aggregator's TLS bundle: ca.crt, tls.crt, tls.key and ca.crl (the "
    "`aggregator` directory made by `sovereign-map certs init`).",
)
@click.option(
    "--operator-tls-dir",
    envvar=ENV_OPERATOR_TLS_DIR,
    show_envvar=True,
    type=_existing_dir,
    help="Operator client bundle presented by the ServerApp process and by the "
    "`flwr` commands that submit the run. [default: TLS_DIR/../operator]",
)
@click.option(
    "--state-dir",
    envvar=ENV_STATE_DIR,
    show_envvar=True,
    required=True,
    type=_dir,
    help="Persistent data: SuperLink database, checkpoints, metrics store "
    "(metrics.sqlite, read by `sovereign-map metrics-api`), run.json.",
)
@click.option(
    "--host",
    default="0.0.0.0",
    show_default=True,
    help="Address to listen on (127.0.0.1: this machine only).",
)
@click.option(
    "--port",
    envvar=ENV_AGGREGATOR_PORT,
    show_envvar=True,
    type=PORT,
    default=AGGREGATOR_PORT,
    show_default=True,
    help="The SuperLink's one port (Fleet, Control and Runtime APIs; mTLS).",
)
@click.option(
    "--rounds",
    envvar=ENV_NUM_ROUNDS,
    show_envvar=True,
    type=click.IntRange(min=1),
    default=_D.num_server_rounds,
    show_default=True,
    help="Federated rounds.",
)
@click.option(
    "--nodes",
    envvar=ENV_NUM_NODES,
    show_envvar=True,
    type=click.IntRange(min=1),
    default=_D.num_nodes,
    show_default=True,
    help="Nodes of the federation (partitions of the training set).",
)
@click.option(
    "--min-fit-clients",
    envvar=ENV_MIN_FIT_CLIENTS,
    show_envvar=True,
    type=click.IntRange(min=0),
    default=0,
    help="Nodes that must be connected (and are sampled) for a round. [default: all --nodes]",
)
@click.option(
    "--rule",
    envvar=ENV_RULE,
    show_envvar=True,
    default=_D.rule,
    show_default=True,
    help="Aggregation rule (see `sovereign-map simulate --help`).",
)
@click.option(
    "--stakes-file",
    envvar=ENV_STAKES_FILE,
    show_envvar=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="YAML/JSON table node id -> stake; unlisted nodes have stake 1.",
)
@click.option(
    "--partition",
    envvar=ENV_PARTITION,
    show_envvar=True,
    type=click.Choice(["iid", "dirichlet"]),
    default=_D.partition,
    show_default=True,
    help="How the training set is split between nodes.",
)
@click.option(
    "--dirichlet-alpha",
    envvar=ENV_ALPHA,
    show_envvar=True,
    type=click.FloatRange(min=0, min_open=True),
    default=_D.alpha,
    show_default=True,
    help="Concentration of the dirichlet partition (smaller: more skewed).",
)
@click.option(
    "--seed",
    envvar=ENV_SEED,
    show_envvar=True,
    type=int,
    default=_D.seed,
    show_default=True,
    help="Seed of the partition, the model and the sampling.",
)
@click.option(
    "--samples-per-node",
    envvar=ENV_SAMPLES_PER_NODE,
    show_envvar=True,
    type=click.IntRange(min=0),
    default=_D.samples_per_node,
    show_default=True,
    help="Training examples per node (0: the node's whole partition).",
)
@click.option(
    "--dp/--no-dp",
    envvar=ENV_DP_ENABLED,
    show_envvar=True,
    default=_D.dp,
    show_default=True,
    help="Differentially private training on the nodes.",
)
@click.option(
    "--noise-multiplier",
    envvar=ENV_DP_NOISE_MULTIPLIER,
    show_envvar=True,
    type=click.FloatRange(min=0),
    default=_D.noise_multiplier,
    show_default=True,
    help="DP-SGD noise multiplier.",
)
@click.option(
    "--max-grad-norm",
    envvar=ENV_DP_MAX_GRAD_NORM,
    show_envvar=True,
    type=click.FloatRange(min=0, min_open=True),
    default=_D.max_grad_norm,
    show_default=True,
    help="DP-SGD per-sample clipping norm.",
)
@click.option(
    "--delta",
    envvar=ENV_DP_DELTA,
    show_envvar=True,
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=_D.delta,
    show_default=True,
    help="DP δ.",
)
@click.option(
    "--epsilon-budget",
    envvar=ENV_DP_EPSILON_BUDGET,
    show_envvar=True,
    type=click.FloatRange(min=0),
    default=_D.epsilon_budget,
    show_default=True,
    help="Per-node ε budget; a node that would exceed it stops training (0: none).",
)
@data_dir_option(" for the server-side evaluation")
@click.option(
    "--run-config",
    "extra",
    multiple=True,
    metavar="KEY=VALUE ...",
    help="Other run-config keys of fl.settings (e.g. 'lr=0.5 local-epochs=2').",
)
@click.option(
    "--submit/--no-submit",
    default=True,
    show_default=True,
    help="Submit the run (else only serve; submit with `flwr run` yourself).",
)
def aggregator(
    tls_dir: Path,
    operator_tls_dir: Path | None,
    state_dir: Path,
    host: str,
    port: int,
    rounds: int,
    nodes: int,
    min_fit_clients: int,
    rule: str,
    stakes_file: Path | None,
    partition: str,
    dirichlet_alpha: float,
    seed: int,
    samples_per_node: int,
    dp: bool,
    noise_multiplier: float,
    max_grad_norm: float,
    delta: float,
    epsilon_budget: float,
    data_dir: Path | None,
    extra: tuple[str, ...],
    submit: bool,
) -> None:
    """Run the aggregator: a Flower SuperLink on PORT requiring client certificates signed
    by the stack CA (and not revoked), and the federation's run, which it submits itself.

    Every option can be given as an environment variable (shown below); flags win.
    The ServerApp waits for MIN_FIT_CLIENTS nodes before each round, keeps one checkpoint
    per round in STATE_DIR and resumes from the last one when the aggregator restarts.

    \b
    Example:
      sovereign-map aggregator --tls-dir pki/aggregator --state-dir state --rounds 5 --nodes 3
    """
    configure_logging()
    explicit = parse_pairs(extra, "--run-config")
    clash = sorted(set(explicit) & set(SOURCES))
    if clash:
        raise click.BadParameter(
            f"set {', '.join(clash)} with its own option ({'; '.join(SOURCES[k] for k in clash)})",
            param_hint="--run-config",
        )
    settings = build_settings(
        {
            **explicit,
            "num-server-rounds": rounds,
            "num-nodes": nodes,
            "min-train-nodes": min_fit_clients,
            "rule": rule,
            "stakes": str(stakes_file.resolve()) if stakes_file else "",
            "partition": partition,
            "alpha": dirichlet_alpha,
            "seed": seed,
            "samples-per-node": samples_per_node,
            "dp": dp,
            "noise-multiplier": noise_multiplier,
            "max-grad-norm": max_grad_norm,
            "delta": delta,
            "epsilon-budget": epsilon_budget,
            "data-dir": str(data_dir.resolve()) if data_dir else "",
        }
    )
    operator_dir = _operator_dir(tls_dir, operator_tls_dir)
    address = local_address(host)
    with clear_errors():
        from fl.launch.tls_material import ClientIdentity, ServerTLS

        ServerTLS(tls_dir).check(name=address)
        ClientIdentity.from_dir(operator_dir)
    check_listen(host, port)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(f"cannot create the state dir {state_dir}: {exc}") from None
    state_dir = state_dir.resolve()
    done = (Checkpoints(state_dir / CHECKPOINT_DIR).rounds() or [0])[-1]
    log.info(
        "aggregator on %s:%d, %d round(s) of %d node(s), rule %s; state in %s",
        host,
        port,
        settings.num_server_rounds,
        settings.num_nodes,
        settings.rule,
        state_dir,
    )
    code = _serve(settings, tls_dir, operator_dir, state_dir, host, port, done, submit)
    if code:
        raise SystemExit(code)


def _operator_dir(tls_dir: Path, given: Path | None) -> Path:
    if given is not None:
        return given
    sibling = tls_dir.resolve().parent / "operator"
    if not sibling.is_dir():
        raise click.UsageError(
            f"no operator bundle: give --operator-tls-dir or set {ENV_OPERATOR_TLS_DIR} "
            f"(looked for {sibling})"
        )
    return sibling


def _serve(
    settings: Any,
    tls_dir: Path,
    operator_dir: Path,
    state_dir: Path,
    host: str,
    port: int,
    done: int,
    submit: bool,
) -> int:
    from fl.launch.mtls import superlink_command
    from fl.launch.submit import (
        SubmitError,
        flwr_argv,
        operator_env,
        run_status,
        submit_run,
        write_app,
    )

    env = dict(os.environ)
    env[ENV_STATE_DIR] = str(state_dir)
    env["PYTHONPATH"] = pythonpath_with_our_packages(env.get("PYTHONPATH"))
    env.setdefault("PYTHONUNBUFFERED", "1")
    children = Children()
    address = f"{local_address(host)}:{port}"
    try:
        with stop_signals():
            superlink = children.start(
                "superlink",
                superlink_command(
                    tls_dir, state_dir, port=port, host=host, client_tls_dir=operator_dir
                ),
                env,
            )
            _wait_ready(local_address(host), port, operator_dir, superlink)
            op_env = {
                **operator_env(state_dir / OPERATOR_HOME, address, operator_dir),
                "PYTHONPATH": env["PYTHONPATH"],
            }
            follower: Child | None = None
            run_id: int | None = None
            rounds = settings.num_server_rounds
            if not submit:
                log.info("not submitting a run (--no-submit)")
            elif done >= rounds:
                log.info(
                    "the checkpoints hold all %d rounds: the run is complete; serving only", rounds
                )
                write_run_info(
                    state_dir, run_id=None, status="complete", start_round=done, rounds=rounds
                )
            else:
                app = write_app(state_dir / APP_DIR, settings.to_run_config())
                try:
                    run_id = submit_run(operator_dir, app, op_env)
                except SubmitError as exc:
                    log.error("%s", exc)
                    return 1
                log.info("submitted run %d (rounds %d..%d)", run_id, done + 1, rounds)
                write_run_info(
                    state_dir, run_id=run_id, status="submitted", start_round=done, rounds=rounds
                )
                follower = children.start(
                    "run log", flwr_argv(operator_dir, "log", str(run_id), "--stream"), op_env
                )
            while True:
                if (code := superlink.exited()) is not None:
                    log.error("the SuperLink exited (status %d)", code)
                    return code or 1
                if follower is not None and follower.exited() is not None:
                    children.stop(follower)
                    follower = None
                    status = run_status(operator_dir, op_env, run_id) if run_id else None
                    log.info("run %s ended: %s", run_id, status or "unknown status")
                    write_run_info(
                        state_dir,
                        run_id=run_id,
                        status=status or "ended",
                        start_round=done,
                        rounds=rounds,
                    )
                time.sleep(1)
    except Stop as stop:
        log.info("%s: stopping", stop)
        return 0
    finally:
        with shielded():
            children.stop_all()
        sys.stdout.flush()
