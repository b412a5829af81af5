"""``sovereign-map monitoring``: render and check Prometheus, Alertmanager and Grafana files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import click

from dashboards.check import check_rendered
from dashboards.prometheus import TARGETS, Target, node_ports_for
from dashboards.render import render_all
from fl.contract import ALERTMANAGER_PORT, METRICS_API_PORT, NODE_METRICS_PORT, PROMETHEUS_PORT


def parse_node(value: str) -> tuple[str, int]:
    name, sep, port = value.rpartition("=")
    if not sep or not name or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(
            f"expected NODE_ID=PORT (e.g. node-0=9101), got {value!r}", param_hint="--node"
        )
    return name, int(port)


@click.group(name="monitoring")
def monitoring() -> None:
    """Prometheus scrape configs and alert rules, Alertmanager routing and Grafana dashboards,
    rendered as files for the devnet, Docker or Kubernetes."""


@monitoring.command()
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write into (created; existing files are overwritten).",
)
@click.option(
    "--target",
    type=click.Choice(TARGETS),
    required=True,
    help="devnet: static 127.0.0.1 targets; docker/kubernetes: service discovery.",
)
@click.option(
    "--nodes",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help=f"devnet: nodes node-0..node-N-1 on metrics ports {NODE_METRICS_PORT}, "
    f"{NODE_METRICS_PORT + 1}, ...",
)
@click.option(
    "--node",
    "node_specs",
    multiple=True,
    metavar="NODE_ID=PORT",
    help="devnet: one node's metrics port (repeatable; added to --nodes).",
)
@click.option(
    "--metrics-api-port",
    type=click.IntRange(1, 65535),
    default=METRICS_API_PORT,
    show_default=True,
    help="Port of the metrics API.",
)
@click.option(
    "--prometheus-port",
    type=click.IntRange(1, 65535),
    default=PROMETHEUS_PORT,
    show_default=True,
    help="devnet: Prometheus' own port.",
)
@click.option(
    "--alertmanager-port",
    type=click.IntRange(1, 65535),
    default=ALERTMANAGER_PORT,
    show_default=True,
    help="Port of Alertmanager.",
)
@click.option("--namespace", help="kubernetes: the stack's namespace (required there).")
@click.option("--network", help="docker: the stack's network; targets are scraped on it.")
@click.option("--stack", help="Value of the 'stack' external label on every series.")
@click.option("--webhook-url", help="Send alerts to this webhook (else: Alertmanager UI only).")
@click.option("--prometheus-url", help="Where Grafana reaches Prometheus (default per target).")
def render(
    out_dir: Path,
    target: str,
    nodes: int,
    node_specs: tuple[str, ...],
    metrics_api_port: int,
    prometheus_port: int,
    alertmanager_port: int,
    namespace: str | None,
    network: str | None,
    stack: str | None,
    webhook_url: str | None,
    prometheus_url: str | None,
) -> None:
    """Write prometheus/, alertmanager/ and grafana/ files for TARGET under --out.

    \b
    Examples:
      sovereign-map monitoring render --out run/monitoring --target devnet --nodes 5
      sovereign-map monitoring render --out k8s --target kubernetes --namespace sovereign-map
    """
    kwargs: dict[str, Any] = {
        "metrics_api_port": metrics_api_port,
        "alertmanager_port": alertmanager_port,
    }
    if stack:
        kwargs["stack"] = stack
    if target == "devnet":
        ports = node_ports_for(nodes) | dict(parse_node(spec) for spec in node_specs)
        kwargs |= {"node_ports": ports, "prometheus_port": prometheus_port}
    elif nodes or node_specs:
        raise click.UsageError("--nodes/--node only apply to --target devnet")
    if target == "kubernetes" and not namespace:
        raise click.UsageError("--target kubernetes needs --namespace")
    if target == "docker" and network:
        kwargs["network"] = network
    try:
        written = render_all(
            out_dir,
            cast(Target, target),
            prometheus_url=prometheus_url,
            webhook_url=webhook_url,
            namespace=namespace,
            **kwargs,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:
        raise click.ClickException(f"cannot write to {out_dir}: {exc.strerror or exc}") from exc
    for path in written:
        click.echo(path)


@monitoring.command()
@click.argument("out_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
def check(out_dir: Path) -> None:
    """Validate files written by `render` with promtool and amtool (when installed)."""
    failed = False
    for result in check_rendered(out_dir):
        status = {True: "ok", False: "FAILED", None: "skipped"}[result.ok]
        click.echo(f"{result.what}: {status}")
        if result.note:
            click.echo(f"  note: {result.note}")
        if result.ok is not True and result.output:
            click.echo("  " + result.output.replace("\n", "\n  "))
        failed |= result.ok is False
    if failed:
        raise click.ClickException("monitoring configuration has errors")
