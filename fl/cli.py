"""The ``sovereign-map`` command line.

Subcommands are imported only when used, so ``sovereign-map certs …`` works without the FL
runtime (torch, Flower) installed and ``--help`` stays fast.
"""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click command or group
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("fl.simulate_cli:simulate", "Run a whole federation in this process."),
    "certs": ("certs.cli:certs", "Make, rotate, revoke and inspect the stack's mTLS PKI."),
    "monitoring": (
        "dashboards.cli:monitoring",
        "Render Prometheus, Alertmanager and Grafana configuration.",
    ),
    "metrics-api": ("fl.metrics_api.cli:metrics_api", "Serve the metrics store over HTTP."),
    "aggregator": (
        "fl.launch.aggregator:aggregator",
        "Run the aggregator (SuperLink + ServerApp).",
    ),
    "node": ("fl.launch.node:node", "Run one node (SuperNode + ClientApp)."),
    "devnet": ("fl.devnet.cli:devnet", "Run a whole testnet as local processes on 127.0.0.1."),
    "up": ("fl.up:up", "Bring up a testnet: Pulumi on Docker if available, else the devnet."),
    "down": ("fl.up:down", "Stop what `up` started (the devnet, or the Pulumi stack)."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return None
        target, _ = SUBCOMMANDS[cmd_name]
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            hint = "fl" if exc.name in {"torch", "flwr", "opacus", "matplotlib"} else None
            detail = f"pip install 'sovereign-map[{hint}]'" if hint else str(exc)
            return _unavailable(cmd_name, f"'{cmd_name}' needs a missing package: {detail}")
        command = getattr(module, attr)
        assert isinstance(command, click.Command)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _unavailable(name: str, message: str) -> click.Command:
    @click.command(name=name, help=message, context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> None:
        raise click.ClickException(message)

    return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sovereign-map")
def main() -> None:
    """Sovereign Map: a federated-learning testnet (Flower + Opacus DP) you can deploy.

    Start with `sovereign-map devnet up` for a local testnet of real processes, or
    `sovereign-map simulate` for a whole federation in one process.
    """


if __name__ == "__main__":
    main()
