"""Subprocess forms of ``fl.launch.mtls``: ``python -m fl.launch.mtls_cli <command> --help``.

Launchers run these as child processes (one SuperLink or SuperNode per process, because
Flower's commands own signal handling and the process environment).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from certs.layout import OPERATOR
from fl.contract import AGGREGATOR_PORT, ENV_OPERATOR_TLS_DIR, ENV_STATE_DIR, ENV_TLS_DIR
from fl.launch.tls_material import TLSMaterialError

__all__ = ["main"]


@contextmanager
def _clear_errors() -> Iterator[None]:
    try:
        yield
    except (TLSMaterialError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


_tls_dir = click.option(
    "--tls-dir",
    required=True,
    envvar=ENV_TLS_DIR,
    show_envvar=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Bundle directory: ca.crt, tls.crt, tls.key (+ ca.crl for a SuperLink).",
)


def _port(value: Any) -> int:
    port = int(value)
    if not 1 <= port <= 65535:
        raise click.BadParameter("must be between 1 and 65535")
    return port


def _node_config(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dict[str, Any]:
    """Parse ``key=value key2="text"`` like Flower does (ints, floats, bools, strings)."""
    if not value:
        return {}
    out: dict[str, Any] = {}
    for item in value.split():
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {item!r}")
        out[key] = _scalar(raw)
    return out


def _scalar(raw: str) -> str | int | float | bool:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    if raw in ("true", "false"):
        return raw == "true"
    for kind in (int, float):
        try:
            return kind(raw)  # type: ignore[no-any-return]
        except ValueError:
            pass
    return raw


@click.group()
def main() -> None:
    """Run Flower's SuperLink / SuperNode / flwr CLI with mutual TLS."""


@main.command()
@_tls_dir
@click.option(
    "--state-dir",
    required=True,
    envvar=ENV_STATE_DIR,
    show_envvar=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Where the SuperLink database and helper scripts live.",
)
@click.option(
    "--client-tls-dir",
    envvar=ENV_OPERATOR_TLS_DIR,
    show_envvar=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="Operator bundle presented by the SuperExec/ServerApp processes "
    "[default: TLS_DIR/../operator].",
)
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=_port, default=AGGREGATOR_PORT, show_default=True, help="Port to listen on."
)
@click.option(
    "--operator",
    "operators",
    multiple=True,
    default=[OPERATOR],
    show_default=True,
    help="Certificate CN allowed to use the Control and Runtime APIs (repeatable); every "
    "other certificate may use only the Fleet API.",
)
def superlink(
    tls_dir: Path,
    state_dir: Path,
    client_tls_dir: Path | None,
    host: str,
    port: int,
    operators: tuple[str, ...],
) -> None:
    """Run a SuperLink whose one port requires a client certificate from the stack CA."""
    from fl.launch.mtls import run_superlink

    with _clear_errors():
        run_superlink(
            tls_dir,
            state_dir,
            port=port,
            host=host,
            client_tls_dir=client_tls_dir,
            operators=operators,
        )


@main.command()
@_tls_dir
@click.option("--superlink", required=True, help="SuperLink address, host:port.")
@click.option(
    "--node-config",
    callback=_node_config,
    help="Flower node config, e.g. 'partition-id=0 num-partitions=5 name=\"a\"'.",
)
@click.option(
    "--runtime-port",
    type=_port,
    default=None,
    help="Port of this SuperNode's local Runtime API [default: a free port].",
)
@click.option("--max-retries", type=click.IntRange(min=0), default=None)
@click.option("--max-wait-time", type=click.FloatRange(min=0), default=None)
def supernode(
    tls_dir: Path,
    superlink: str,
    node_config: dict[str, Any],
    runtime_port: int | None,
    max_retries: int | None,
    max_wait_time: float | None,
) -> None:
    """Run a SuperNode that presents the client certificate in TLS_DIR."""
    from fl.launch.mtls import run_supernode

    with _clear_errors():
        run_supernode(
            tls_dir,
            superlink,
            node_config,
            runtime_port=runtime_port,
            max_retries=max_retries,
            max_wait_time=max_wait_time,
        )


_passthrough: Callable[[Callable[..., None]], click.Command] = main.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)


@_passthrough
@_tls_dir
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def flwr(tls_dir: Path, args: tuple[str, ...]) -> None:
    """Run the `flwr` CLI presenting the (operator) client certificate in TLS_DIR.

    Everything after TLS_DIR goes to flwr, e.g. `flwr --tls-dir pki/operator run . --stream`;
    put `--` first to pass a leading flwr option (`flwr --tls-dir DIR -- --version`).
    """
    from fl.launch.mtls import run_flwr

    with _clear_errors():
        raise SystemExit(run_flwr(tls_dir, args))


@main.command(
    "exec-flower",
    hidden=True,
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
)
@click.argument("command")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def exec_flower(command: str, args: tuple[str, ...]) -> None:
    """Run a Flower command with the identity in $SM_MTLS_CLIENT_TLS_DIR (used by shims)."""
    from fl.launch.mtls import exec_flower_command

    with _clear_errors():
        raise SystemExit(exec_flower_command(command, args))


if __name__ == "__main__":
    main()
