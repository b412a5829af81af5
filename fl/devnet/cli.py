"""``sovereign-map devnet up|status|down``: a whole testnet as local processes on 127.0.0.1."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import click

from fl.contract import ATTACK_MODES, CHECKPOINT_DIR, DEFAULT_RULE
from fl.devnet.layout import DevnetRecord, Layout, RecordError
from fl.devnet.plan import (
    DEFAULT_PORTS,
    HOST,
    DevnetOptions,
    Ports,
    aggregator_argv,
    byzantine_count,
    child_env,
    metrics_api_argv,
    node_argv,
    prometheus_argv,
    resolve_ports,
    write_attack_table,
)
from fl.devnet.processes import alive, stop
from fl.devnet.progress import completed_rounds, round_line, run_info, run_line
from fl.launch.config_options import check_listen, data_dir_option

__all__ = ["devnet"]

# `up` parameters a `--resume` takes from the previous `up` when not given again.
INHERITED = (
    "nodes",
    "byzantine",
    "attack",
    "attack_scale",
    "rounds",
    "rule",
    "samples_per_node",
    "epsilon_budget",
    "data_dir",
    "monitoring",
    "run_config",
    "aggregator_port",
    "metrics_api_port",
    "node_metrics_port",
    "prometheus_port",
)

_state_dir = click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path(".devnet"),
    show_default=True,
    help="Where the devnet keeps its certificates, state, logs and PIDs.",
)


def _port_option(name: str, key: str, what: str) -> Any:
    default = DEFAULT_PORTS[key.removesuffix("_port")]
    return click.option(
        name,
        key,
        type=click.IntRange(0, 65535),
        default=default,
        show_default=True,
        help=f"{what} (0: any free port).",
    )


@click.group(name="devnet")
def devnet() -> None:
    """A whole testnet as local processes on 127.0.0.1: the aggregator (SuperLink +
    ServerApp, mTLS), N nodes (SuperNode + ClientApp), the metrics API and, with
    --monitoring, Prometheus. One log per process under STATE_DIR/logs.

    \b
    Example:
      sovereign-map devnet up --nodes 3 --rounds 3 --detach
      sovereign-map devnet status
      curl http://127.0.0.1:8000/convergence
      sovereign-map devnet down
    """


@devnet.command()
@click.option(
    "--nodes",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Number of nodes (node-0 … node-N-1), one data partition each.",
)
@click.option(
    "--byzantine",
    default="0",
    show_default=True,
    metavar="COUNT|FRACTION",
    help="Byzantine nodes: a whole number is a count (2), a number with a decimal "
    "point a fraction of --nodes (0.2), rounded to the nearest node. The first "
    "ones (node-0, node-1, …) attack.",
)
@click.option(
    "--attack",
    type=click.Choice([m for m in ATTACK_MODES if m != "honest"]),
    default="sign-flip",
    show_default=True,
    help="What the Byzantine nodes do.",
)
@click.option(
    "--attack-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Strength of the attack (sign-flip, gaussian).",
)
@click.option(
    "--rounds", type=click.IntRange(min=1), default=3, show_default=True, help="Federated rounds."
)
@click.option(
    "--rule",
    default=DEFAULT_RULE,
    show_default=True,
    help="Aggregation rule (see `sovereign-map simulate --help`).",
)
@click.option(
    "--samples-per-node",
    type=click.IntRange(min=0),
    default=2000,
    show_default=True,
    help="Training examples per node (0: the node's whole partition).",
)
@click.option(
    "--epsilon-budget",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Per-node differential-privacy budget: a node whose next round would take its "
    "cumulative ε past it stops contributing (0: no budget). The metrics API and the "
    "privacy alert compare against it.",
)
@click.option(
    "--run-config",
    multiple=True,
    metavar="KEY=VALUE ...",
    help="Other run-config keys for the aggregator (e.g. 'lr=0.5').",
)
@_state_dir
@data_dir_option()
@click.option(
    "--monitoring",
    is_flag=True,
    help="Also run Prometheus (the Debian/upstream `prometheus` binary) on the "
    "rendered devnet configuration.",
)
@_port_option("--aggregator-port", "aggregator_port", "The aggregator's port (mTLS)")
@_port_option("--metrics-api-port", "metrics_api_port", "The metrics API's port")
@_port_option(
    "--node-metrics-port", "node_metrics_port", "Metrics port of node-0; node-i uses this + i"
)
@_port_option("--prometheus-port", "prometheus_port", "Prometheus' port (--monitoring)")
@click.option(
    "--detach",
    is_flag=True,
    help="Return once the run is submitted; the testnet keeps running "
    "(`devnet status`, `devnet down`).",
)
@click.option(
    "--stop-when-done",
    is_flag=True,
    help="Stop the testnet and return when the run ends (default: keep serving until Ctrl-C).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the run in STATE_DIR from its last checkpoint (e.g. after "
    "`devnet down` and `certs rotate --dir STATE_DIR/pki`); options not given "
    "again are those of the previous `up`.",
)
@click.option(
    "--fresh",
    is_flag=True,
    help="Discard the previous run's state (checkpoints, metrics) and start over; "
    "the certificates are kept.",
)
@click.option(
    "--start-timeout",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Seconds to wait for the aggregator to submit the run.",
)
@click.pass_context
def up(ctx: click.Context, **params: Any) -> None:
    """Start the testnet: certificates, aggregator, nodes, metrics API (and Prometheus),
    submit the run and show each round (round, accuracy, participants) as it completes.

    Ctrl-C stops every process it started. Ports default to the documented ones (aggregator
    8080, metrics API 8000, nodes 9101+, Prometheus 9090); give other ports (or 0) to run
    several devnets side by side, each with its own --state-dir.
    """
    layout = Layout(params["state_dir"])
    previous = _previous_record(layout)
    if params["resume"] and params["fresh"]:
        raise click.UsageError("give --resume or --fresh, not both")
    if params["resume"] and previous is not None:
        for name in INHERITED:
            if ctx.get_parameter_source(name) is click.core.ParameterSource.DEFAULT:
                params[name] = previous.options.get(name, params[name])
    options = _options(params)
    prometheus = _prometheus_binary(options)
    ports = resolve_ports(
        {k: params[f"{k}_port"] for k in DEFAULT_PORTS}, options.nodes, options.monitoring
    )
    _check_ports(ports)
    planned = _check_previous_run(layout, options, resume=params["resume"], fresh=params["fresh"])
    _prepare(layout, options, ports)
    record = DevnetRecord(options=_saved(params), ports=ports.to_dict())
    record.save(layout)
    _start(layout, record, options, ports, prometheus, planned, params)


def _previous_record(layout: Layout) -> DevnetRecord | None:
    try:
        previous = DevnetRecord.load(layout)
    except RecordError:
        return None
    running = [p for p in previous.processes if alive(p)]
    if running:
        names = ", ".join(f"{p.name} (pid {p.pid})" for p in running)
        raise click.ClickException(
            f"a devnet is already running in {layout.root}: {names}. Stop it with "
            f"`sovereign-map devnet down --state-dir {layout.root}`, or use another --state-dir "
            "and other ports."
        )
    return previous


def _options(params: dict[str, Any]) -> DevnetOptions:
    try:
        byzantine = byzantine_count(str(params["byzantine"]), params["nodes"])
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--byzantine") from None
    data_dir = params["data_dir"]
    options = DevnetOptions(
        nodes=params["nodes"],
        byzantine=byzantine,
        attack=params["attack"],
        attack_scale=params["attack_scale"],
        rounds=params["rounds"],
        rule=params["rule"],
        samples_per_node=params["samples_per_node"],
        data_dir=str(Path(data_dir).resolve()) if data_dir else None,
        run_config=tuple(params["run_config"]),
        monitoring=params["monitoring"],
        epsilon_budget=params["epsilon_budget"],
    )
    _validate_run_config(options)
    return options


def _validate_run_config(options: DevnetOptions) -> None:
    """The aggregator's own validation, now, rather than in its log a few seconds later."""
    from fl.launch.aggregator import build_settings
    from fl.launch.config_options import parse_pairs

    extra = parse_pairs(options.run_config, "--run-config")
    build_settings(
        {
            **extra,
            "num-server-rounds": options.rounds,
            "num-nodes": options.nodes,
            "rule": options.rule,
            "samples-per-node": options.samples_per_node,
            "epsilon-budget": options.epsilon_budget,
        }
    )


def _check_previous_run(
    layout: Layout, options: DevnetOptions, *, resume: bool, fresh: bool
) -> int:
    """Refuse to mix runs by accident; return the number of rounds the run will have."""
    from fl.checkpoints import Checkpoints

    done = (Checkpoints(layout.aggregator / CHECKPOINT_DIR).rounds() or [0])[-1]
    if done and not resume and not fresh:
        raise click.ClickException(
            f"{layout.root} holds a run that reached round {done}: add --resume to continue "
            "it from its last checkpoint, or --fresh to discard it and start over"
        )
    if fresh:
        for path in (layout.aggregator, layout.root / "nodes", layout.prometheus_data):
            shutil.rmtree(path, ignore_errors=True)
        done = 0
    if resume and not done:
        click.echo(f"nothing to resume in {layout.root}: starting a new run")
    elif resume and done >= options.rounds:
        click.echo(
            f"the run already has all {options.rounds} rounds (raise --rounds to train "
            "on); serving its results"
        )
    elif resume:
        click.echo(f"resuming after round {done} of {options.rounds}")
    return options.rounds


def _prometheus_binary(options: DevnetOptions) -> str | None:
    if not options.monitoring:
        return None
    binary = shutil.which("prometheus")
    if binary is None:
        raise click.ClickException(
            "--monitoring needs the `prometheus` binary on PATH (e.g. `apt install "
            "prometheus`, or a release from prometheus.io)"
        )
    return binary


def _check_ports(ports: Ports) -> None:
    seen: dict[int, str] = {}
    problems = []
    for what, port in ports.all().items():
        if port in seen:
            problems.append(f"{what} and {seen[port]} would both use port {port}")
            continue
        seen[port] = what
        try:
            check_listen(HOST, port)
        except click.ClickException as exc:
            problems.append(f"{what}: {exc.message}")
    if problems:
        raise click.ClickException(
            "ports unavailable: " + "; ".join(problems) + ". Choose others with "
            "--aggregator-port/--metrics-api-port/--node-metrics-port/--prometheus-port "
            "(0: any free port)."
        )


def _prepare(layout: Layout, options: DevnetOptions, ports: Ports) -> None:
    from certs.pki import CertificateError
    from fl.devnet.pki import ensure_pki

    try:
        authority, notes = ensure_pki(layout, options.nodes)
    except CertificateError as exc:
        raise click.ClickException(f"certificates in {layout.pki}: {exc.reason}") from None
    for note in notes:
        click.echo(note)
    holders = authority.state.holders
    for node in sorted(ports.nodes):
        if holders[node].revoked:
            click.echo(
                f"warning: {node}'s certificate is revoked: the aggregator will refuse it "
                f"(`certs issue --dir {layout.pki} --node {node}` re-admits it)"
            )
    write_attack_table(layout, options)
    (layout.aggregator / "run.json").unlink(missing_ok=True)
    if options.monitoring:
        from dashboards.render import render_all

        assert ports.prometheus is not None
        render_all(
            layout.monitoring,
            "devnet",
            metrics_api_port=ports.metrics_api,
            node_ports=ports.nodes,
            prometheus_port=ports.prometheus,
            alertmanager_port=None,
        )


def _saved(params: dict[str, Any]) -> dict[str, Any]:
    saved = {name: params[name] for name in INHERITED}
    saved["data_dir"] = str(Path(saved["data_dir"]).resolve()) if saved["data_dir"] else None
    saved["run_config"] = list(saved["run_config"])
    return saved


def _start(
    layout: Layout,
    record: DevnetRecord,
    options: DevnetOptions,
    ports: Ports,
    prometheus: str | None,
    planned: int,
    params: dict[str, Any],
) -> None:
    from fl.devnet.runner import Devnet
    from fl.launch.supervise import Stop, shielded, stop_signals

    net = Devnet(layout, record)
    env = child_env()
    code = 0
    keep_running = False
    try:
        with stop_signals():
            net.start("aggregator", aggregator_argv(layout, options, ports), env)
            for node in ports.nodes:
                net.start(node, node_argv(layout, options, ports, node), env)
            net.start("metrics-api", metrics_api_argv(layout, options, ports), env)
            if prometheus:
                net.start("prometheus", prometheus_argv(prometheus, layout, ports), env)
            _print_endpoints(layout, options, ports)
            info = net.wait_submitted(params["start_timeout"])
            click.echo(run_line(info))
            if params["detach"]:
                keep_running = True
                click.echo(
                    f"detached: follow with `sovereign-map devnet status --state-dir "
                    f"{layout.root}`; stop with `sovereign-map devnet down --state-dir "
                    f"{layout.root}`"
                )
                return
            code = net.follow(planned, stop_when_done=params["stop_when_done"])
    except Stop:
        click.echo("stopping the devnet")
    finally:
        if not keep_running:
            with shielded():
                stopped = net.stop()
            click.echo(f"stopped {len(stopped)} process(es); logs in {layout.logs}")
    if code:
        raise SystemExit(code)


def _print_endpoints(layout: Layout, options: DevnetOptions, ports: Ports) -> None:
    attackers = f", {options.byzantine} Byzantine ({options.attack})" if options.byzantine else ""
    click.echo(
        f"devnet in {layout.root}: {options.nodes} node(s){attackers}, "
        f"{options.rounds} round(s), rule {options.rule}"
    )
    click.echo(f"  aggregator   {HOST}:{ports.aggregator} (mTLS; certificates in {layout.pki})")
    click.echo(f"  metrics API  http://{HOST}:{ports.metrics_api}/convergence")
    if ports.prometheus is not None:
        click.echo(f"  Prometheus   http://{HOST}:{ports.prometheus}")
    click.echo(f"  logs         {layout.logs}/")


@devnet.command()
@_state_dir
def status(state_dir: Path) -> None:
    """Show the run (round, accuracy, participants) and which processes are alive."""
    layout = Layout(state_dir)
    try:
        record = DevnetRecord.load(layout)
    except RecordError as exc:
        raise click.ClickException(str(exc)) from None
    options = record.options
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.started_at))
    click.echo(
        f"devnet in {layout.root}: {options.get('nodes')} node(s), "
        f"{options.get('rounds')} round(s), rule {options.get('rule')}; "
        f"started {started}"
    )
    click.echo(run_line(run_info(layout)))
    rows = completed_rounds(layout)
    if rows:
        click.echo(round_line(rows[-1], options.get("rounds")))
    else:
        click.echo("no round completed yet")
    click.echo("processes:")
    ports = record.ports
    where = {
        "aggregator": f"{HOST}:{ports.get('aggregator')} (mTLS)",
        "metrics-api": f"http://{HOST}:{ports.get('metrics_api')}",
        "prometheus": f"http://{HOST}:{ports.get('prometheus')}",
        **{n: f"metrics http://{HOST}:{p}/metrics" for n, p in ports.get("nodes", {}).items()},
    }
    for process in record.processes:
        state = "running" if alive(process) else "stopped"
        click.echo(
            f"  {process.name:<12} {state:<8} pid {process.pid:<8} "
            f"{where.get(process.name, ''):<40} {process.log}"
        )


@devnet.command()
@_state_dir
def down(state_dir: Path) -> None:
    """Stop every process of the devnet (SIGTERM to each process group, SIGKILL after a
    grace period). Certificates, checkpoints, metrics and logs stay in STATE_DIR."""
    layout = Layout(state_dir)
    try:
        record = DevnetRecord.load(layout)
    except RecordError as exc:
        raise click.ClickException(str(exc)) from None
    record.stopped_at = time.time()  # tells a foreground `up` that this is on purpose
    record.save(layout)
    stopped = stop(record.processes)
    record.save(layout)
    if not stopped:
        click.echo("nothing was running")
    for process in stopped:
        click.echo(f"stopped {process.name} (pid {process.pid})")
