"""Shared pieces of the launchers' command lines: ports, ``key=value`` lists, clear errors."""

from __future__ import annotations

import socket
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from certs.pki import CertificateError
from fl.contract import ENV_DATA_DIR
from fl.launch.tls_material import TLSMaterialError

__all__ = [
    "PORT",
    "check_listen",
    "clear_errors",
    "data_dir_option",
    "parse_pairs",
]

PORT = click.IntRange(1, 65535)


def data_dir_option(used_for: str = "") -> Any:
    """``--data-dir`` / ``SM_DATA_DIR``: an existing directory of the MNIST IDX files."""
    return click.option(
        "--data-dir",
        envvar=ENV_DATA_DIR,
        show_envvar=True,
        type=click.Path(path_type=Path, file_okay=False, exists=True),
        help=f"MNIST IDX files{used_for}. [default: a cache filled by download]",
    )


@contextmanager
def clear_errors() -> Iterator[None]:
    """Configuration problems (unusable TLS material or certificates, invalid values such as
    a ``SettingsError``) become one-line errors, not tracebacks."""
    try:
        yield
    except (TLSMaterialError, CertificateError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


def parse_pairs(items: tuple[str, ...], what: str) -> dict[str, bool | int | float | str]:
    """``("a=1 b=x", "c=true")`` -> ``{"a": 1, "b": "x", "c": True}`` (TOML scalars, else text)."""
    out: dict[str, bool | int | float | str] = {}
    for item in (token for group in items for token in group.split()):
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint=what)
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        if not isinstance(value, bool | int | float | str):
            raise click.BadParameter(f"{key}: only numbers, booleans and text", param_hint=what)
        out[key] = value
    return out


def check_listen(host: str, port: int) -> None:
    """Fail clearly now if ``host:port`` cannot be listened on (e.g. already in use)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise click.ClickException(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from None
