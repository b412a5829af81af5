"""``sovereign-map certs``: make, rotate, revoke and inspect a stack's mTLS PKI."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from certs.authority import DEFAULT_SERVER_NAMES, Authority, init_pki, open_pki
from certs.layout import AGGREGATOR, OPERATOR
from certs.pki import CertificateError
from certs.report import inspect_path

__all__ = ["certs"]


def utcnow() -> datetime:
    """The clock of every command (tests replace it)."""
    return datetime.now(UTC)


@contextmanager
def _clear_errors() -> Iterator[None]:
    try:
        yield
    except CertificateError as exc:
        raise click.ClickException(exc.reason) from None
    except PermissionError as exc:
        raise click.ClickException(f"permission denied: {exc.filename}") from None


_dir_option: Callable[[Callable[..., None]], Callable[..., None]] = click.option(
    "--dir",
    "directory",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="The PKI directory made by `certs init`.",
)


@click.group()
def certs() -> None:
    """Make, rotate, revoke and inspect the stack's mTLS PKI.

    One CA per stack signs the aggregator's server certificate, an operator client
    certificate (used by the ServerApp process and the `flwr` CLI) and one client
    certificate per node. Layout of DIR:

    \b
      ca/          ca.crt ca.key ca.crl state.json
      aggregator/  ca.crt tls.crt tls.key ca.crl
      operator/    ca.crt tls.crt tls.key
      nodes/node-N/ ca.crt tls.crt tls.key
    """


@certs.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Directory to create the PKI in (created if missing).",
)
@click.option("--nodes", required=True, type=int, help="Number of nodes: node-0 … node-{N-1}.")
@click.option(
    "--san",
    "sans",
    multiple=True,
    metavar="DNS-OR-IP",
    help="Extra name of the aggregator (repeatable), e.g. a service DNS name or a public "
    "IP, added to the defaults: " + ", ".join(DEFAULT_SERVER_NAMES) + ".",
)
@click.option(
    "--no-default-sans",
    is_flag=True,
    help="Use only the --san names for the aggregator, not the defaults.",
)
@click.option(
    "--validity-days",
    type=click.IntRange(min=1),
    default=365,
    show_default=True,
    help="Validity of the server, operator and node certificates (and of the CRL).",
)
@click.option(
    "--renew-before-days",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="Renewal window: `rotate --due` re-issues certificates expiring within it.",
)
@click.option(
    "--ca-validity-days",
    type=click.IntRange(min=1),
    default=3650,
    show_default=True,
    help="Validity of the CA certificate.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing CA; the old PKI is first moved to DIR/backup-<time>/.",
)
def init(
    out: Path,
    nodes: int,
    sans: tuple[str, ...],
    no_default_sans: bool,
    validity_days: int,
    renew_before_days: int,
    ca_validity_days: int,
    force: bool,
) -> None:
    """Create a new CA and every certificate of a testnet of N nodes."""
    names = [*([] if no_default_sans else DEFAULT_SERVER_NAMES), *sans]
    with _clear_errors():
        result = init_pki(
            out,
            nodes=nodes,
            now=utcnow(),
            validity=timedelta(days=validity_days),
            renew_before=timedelta(days=renew_before_days),
            ca_validity=timedelta(days=ca_validity_days),
            server_names=names,
            force=force,
        )
    if result.backup is not None:
        click.echo(f"moved the previous PKI to {result.backup}")
    state = result.authority.state
    click.echo(f"created a CA and {len(state.holders)} certificates in {out}")
    click.echo(f"  aggregator names: {', '.join(state.server_names)}")
    click.echo(f"  nodes: {', '.join(state.node_ids())}")


@certs.command()
@_dir_option
@click.option("--node", "node", required=True, help="Node id to issue, e.g. node-5.")
def issue(directory: Path, node: str) -> None:
    """Issue a certificate for a new node, or re-admit a revoked one."""
    with _clear_errors():
        authority = open_pki(directory)
        now = utcnow()
        issued = authority.issue(node, now)
        authority.publish_crl(now)
    click.echo(
        f"issued {node} (serial {issued.cert.serial_number:x}) in "
        f"{authority.layout.holder_dir(node)}"
    )


@certs.command()
@_dir_option
@click.option(
    "--node",
    "nodes",
    multiple=True,
    help=f"Holder to re-issue (repeatable): a node id, {AGGREGATOR!r} or {OPERATOR!r}.",
)
@click.option("--all", "all_", is_flag=True, help="Re-issue every holder that is not revoked.")
@click.option("--due", is_flag=True, help="Re-issue only certificates inside the renewal window.")
@click.option(
    "--revoke-old",
    is_flag=True,
    help="Also revoke the replaced certificates (e.g. after a key compromise).",
)
def rotate(
    directory: Path, nodes: tuple[str, ...], all_: bool, due: bool, revoke_old: bool
) -> None:
    """Re-issue certificates with new keys, keeping the CA (and re-sign the CRL)."""
    if sum((bool(nodes), all_, due)) != 1:
        raise click.UsageError("give exactly one of --node ID, --all or --due")
    with _clear_errors():
        authority = open_pki(directory)
        now = utcnow()
        targets = _targets(authority, nodes, all_=all_, due=due, now=now)
        if due and not targets and not authority.crl_due(now):
            click.echo("nothing is due for renewal")
        else:
            authority.rotate(targets, now, revoke_old=revoke_old)
            click.echo(f"re-issued: {', '.join(targets) or 'none'}; CRL re-signed")
        if authority.ca_due(now):
            expiry = authority.ca.cert.not_valid_after_utc
            click.echo(
                f"warning: the CA expires {expiry:%F}; new certificates soon cannot get a full "
                "validity period. Make a new PKI (`certs init --force`) and roll it out.",
                err=True,
            )


def _targets(
    authority: Authority, nodes: tuple[str, ...], *, all_: bool, due: bool, now: datetime
) -> list[str]:
    if due:
        return authority.due(now)
    if all_:
        holders = authority.state.holders
        return [
            name
            for name in [AGGREGATOR, OPERATOR, *authority.state.node_ids()]
            if name in holders and not holders[name].revoked
        ]
    return list(dict.fromkeys(nodes))


@certs.command()
@_dir_option
@click.option(
    "--node", "node", required=True, help=f"Node id (or {OPERATOR!r}) whose certificate to revoke."
)
def revoke(directory: Path, node: str) -> None:
    """Revoke a node's certificate: the aggregator refuses it from the next handshake."""
    with _clear_errors():
        authority = open_pki(directory)
        serial = authority.revoke(node, utcnow())
    click.echo(f"revoked {node} (serial {serial:x}); CRL written to {authority.layout.ca_crl}")


@certs.command("inspect")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def inspect_command(path: Path, as_json: bool) -> None:
    """Show subject, SANs, usage, expiry and days left of a certificate, CRL or directory.

    PATH is a PEM certificate or CRL, a bundle directory (with tls.crt) or a PKI
    directory (with ca/).
    """
    with _clear_errors():
        facts = inspect_path(path, utcnow())
    if as_json:
        click.echo(json.dumps([asdict(f) for f in facts], indent=2))
        return
    for fact in facts:
        click.echo("\n".join(fact.lines()))
