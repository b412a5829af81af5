"""Operations on a PKI directory (see ``certs.layout``): init, issue, rotate, revoke.

Every operation re-signs the CRL and writes it to ``ca/ca.crl`` and ``aggregator/ca.crl``
(the SuperLink reloads it on the next handshake). The CRL stays valid for one certificate
validity period; ``rotate`` re-signs it, ``rotate --due`` when it is inside the window.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

from certs.bundle import SECRET_MODE, atomic_write, read_bundle, write_bundle, write_crl
from certs.layout import (
    AGGREGATOR,
    OPERATOR,
    Holder,
    Layout,
    PkiState,
    Role,
    node_id_for,
    validate_node_id,
)
from certs.pki import (
    CertificateError,
    Issued,
    build_crl,
    cert_to_pem,
    create_ca,
    crl_needs_renewal,
    issue_client,
    issue_server,
    key_to_pem,
    load_cert_pem,
    load_key_pem,
    needs_renewal,
    parse_san,
    reissue,
)

__all__ = ["DEFAULT_SERVER_NAMES", "Authority", "InitResult", "init_pki", "open_pki"]

DEFAULT_SERVER_NAMES: tuple[str, ...] = ("localhost", "127.0.0.1", AGGREGATOR)


@dataclass(frozen=True)
class InitResult:
    authority: Authority
    backup: Path | None  # where an existing PKI was moved by --force


def init_pki(
    root: Path,
    *,
    nodes: int,
    now: datetime,
    validity: timedelta,
    renew_before: timedelta,
    ca_validity: timedelta,
    server_names: Sequence[str] = DEFAULT_SERVER_NAMES,
    force: bool = False,
) -> InitResult:
    """Create a CA, the aggregator's server cert, the operator's and ``nodes`` node certs.

    Refuses to touch an existing CA unless ``force``; then the old PKI is moved to
    ``root/backup-<UTC time>/`` first.
    """
    if nodes < 1:
        raise CertificateError(f"--nodes must be at least 1, got {nodes}")
    _check_windows(validity, renew_before)
    if ca_validity < validity:
        raise CertificateError(
            f"the CA validity ({ca_validity.days} days) must be at least the certificate "
            f"validity ({validity.days} days)"
        )
    names = _normalise_names(server_names)
    layout = Layout(root)
    if root.exists() and not root.is_dir():
        raise CertificateError(f"{root} exists and is not a directory")
    backup = None
    if layout.has_ca():
        if not force:
            raise CertificateError(
                f"{root} already holds a CA ({layout.ca_cert}); refusing to overwrite it. "
                "Use --force to move the existing PKI to a backup directory and start over."
            )
        backup = _backup(layout, now)

    layout.ca_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(layout.ca_dir, 0o700)
    ca = create_ca(validity=ca_validity, now=now)
    atomic_write(layout.ca_key, key_to_pem(ca.key), SECRET_MODE)
    atomic_write(layout.ca_cert, cert_to_pem(ca.cert), 0o644)
    state = PkiState(
        validity_days=validity / timedelta(days=1),
        renew_before_days=renew_before / timedelta(days=1),
        server_names=names,
    )
    authority = Authority(layout, ca, state)
    authority.issue(AGGREGATOR, now)
    authority.issue(OPERATOR, now)
    for ordinal in range(nodes):
        authority.issue(node_id_for(ordinal), now)
    authority.publish_crl(now)
    return InitResult(authority, backup)


def open_pki(root: Path) -> Authority:
    """Load the CA and state of an existing PKI directory."""
    layout = Layout(root)
    if not root.is_dir():
        raise CertificateError(f"no such PKI directory: {root} (create one with `certs init`)")
    if not layout.ca_cert.exists():
        raise CertificateError(f"{root} holds no CA ({layout.ca_cert} is missing)")
    try:
        ca = Issued(
            cert=load_cert_pem(layout.ca_cert.read_bytes()),
            key=load_key_pem(layout.ca_key.read_bytes()),
        )
    except FileNotFoundError as exc:
        raise CertificateError(f"missing CA file: {exc.filename}") from None
    if ca.cert.public_key() != ca.key.public_key():
        raise CertificateError(f"{layout.ca_key} does not belong to {layout.ca_cert}")
    return Authority(layout, ca, PkiState.load(layout.state_file))


class Authority:
    """The CA of one PKI directory with its bookkeeping; each method saves what it changes."""

    def __init__(self, layout: Layout, ca: Issued, state: PkiState) -> None:
        self.layout = layout
        self.ca = ca
        self.state = state

    # ------------------------------------------------------------------ queries
    def role_of(self, name: str) -> Role:
        return "server" if name == AGGREGATOR else "client"

    def current(self, name: str) -> x509.Certificate:
        """The certificate currently in ``name``'s bundle directory."""
        self._known(name)
        _, cert, _ = read_bundle(self.layout.holder_dir(name))
        return cert

    def due(self, now: datetime) -> list[str]:
        """Holders (not revoked) whose certificate is inside the renewal window."""
        return [
            name
            for name, holder in self._ordered()
            if not holder.revoked
            and needs_renewal(self.current(name), now, self.state.renew_before)
        ]

    def crl_due(self, now: datetime) -> bool:
        try:
            crl = x509.load_pem_x509_crl(self.layout.ca_crl.read_bytes())
        except (OSError, ValueError):
            return True
        return crl_needs_renewal(crl, now, self.state.renew_before)

    def ca_due(self, now: datetime) -> bool:
        """True when the CA itself expires within validity + renewal window."""
        return needs_renewal(self.ca.cert, now, self.state.validity + self.state.renew_before)

    # ----------------------------------------------------------------- changes
    def issue(self, name: str, now: datetime) -> Issued:
        """Issue a fresh certificate for ``name`` (a new node, or re-admit a revoked one)."""
        if name not in (AGGREGATOR, OPERATOR):
            validate_node_id(name)
        holder = self.state.holders.get(name)
        if holder is not None and not holder.revoked:
            raise CertificateError(
                f"{name} already has a valid certificate (serial {holder.serial}); "
                f"use `certs rotate --node {name}` to replace it"
            )
        role = self.role_of(name)
        if role == "server":
            issued = issue_server(
                self.ca,
                dns_names=[n for n in self.state.server_names if not _is_ip(n)],
                ip_addresses=[n for n in self.state.server_names if _is_ip(n)],
                validity=self.state.validity,
                now=now,
            )
        else:
            issued = issue_client(self.ca, name, validity=self.state.validity, now=now)
        self._store(name, role, issued)
        return issued

    def rotate(self, names: Iterable[str], now: datetime, *, revoke_old: bool = False) -> None:
        """Re-issue each holder's certificate with a new key, keeping the CA."""
        for name in names:
            holder = self._known(name)
            if holder.revoked:
                raise CertificateError(
                    f"{name} is revoked; `certs issue --node {name}` re-admits it with a "
                    "new certificate"
                )
            old = self.current(name)
            issued = reissue(self.ca, old, validity=self.state.validity, now=now)
            self._store(name, holder.role, issued)
            if revoke_old:
                self.state.revoke(old.serial_number, now)
        self.publish_crl(now)

    def revoke(self, name: str, now: datetime) -> int:
        """Revoke ``name``'s current certificate; returns its serial."""
        holder = self._known(name)
        if name == AGGREGATOR:
            raise CertificateError(
                "the aggregator's server certificate is not checked against the CRL; "
                "replace it with `certs rotate --node aggregator` instead"
            )
        if holder.revoked:
            raise CertificateError(f"{name} is already revoked (serial {holder.serial})")
        serial = int(holder.serial, 16)
        self.state.revoke(serial, now)
        holder.revoked = True
        self.publish_crl(now)
        return serial

    def publish_crl(self, now: datetime) -> x509.CertificateRevocationList:
        """Re-sign the CRL and write it next to the CA and into the aggregator bundle."""
        crl = build_crl(
            self.ca,
            self.state.revoked_serials(),
            revoked_at=self.state.revoked_serials(),
            now=now,
            next_update=self.state.validity,
        )
        write_crl(self.layout.ca_dir, crl)
        write_crl(self.layout.holder_dir(AGGREGATOR), crl)
        self.state.save(self.layout.state_file)
        return crl

    # ----------------------------------------------------------------- helpers
    def _store(self, name: str, role: Role, issued: Issued) -> None:
        write_bundle(
            self.layout.holder_dir(name), ca_cert=self.ca.cert, cert=issued.cert, key=issued.key
        )
        self.state.record(name, role, issued.cert.serial_number, issued.cert.not_valid_after_utc)
        self.state.save(self.layout.state_file)

    def _known(self, name: str) -> Holder:
        holder = self.state.holders.get(name)
        if holder is None:
            known = ", ".join(n for n, _ in self._ordered()) or "none"
            raise CertificateError(f"unknown node {name!r} in {self.layout.root} (known: {known})")
        return holder

    def _ordered(self) -> list[tuple[str, Holder]]:
        names = [AGGREGATOR, OPERATOR, *self.state.node_ids()]
        return [(n, self.state.holders[n]) for n in names if n in self.state.holders]


def _check_windows(validity: timedelta, renew_before: timedelta) -> None:
    if validity <= timedelta(0):
        raise CertificateError("the validity must be positive")
    if renew_before < timedelta(0):
        raise CertificateError("the renewal window must not be negative")
    if renew_before >= validity:
        raise CertificateError(
            f"the renewal window ({renew_before.days} days) must be shorter than the "
            f"validity ({validity.days} days), or every certificate is always due"
        )


def _normalise_names(names: Sequence[str]) -> list[str]:
    if not names:
        raise CertificateError("the server certificate needs at least one --san")
    out: list[str] = []
    for name in names:
        san = parse_san(name)
        text = str(san.value)
        if text not in out:
            out.append(text)
    return out


def _is_ip(name: str) -> bool:
    return isinstance(parse_san(name), x509.IPAddress)


def _backup(layout: Layout, now: datetime) -> Path:
    target = layout.root / f"backup-{now:%Y%m%dT%H%M%SZ}"
    suffix = 0
    while target.exists():
        suffix += 1
        target = layout.root / f"backup-{now:%Y%m%dT%H%M%SZ}-{suffix}"
    target.mkdir(mode=0o700)
    for path in layout.managed_paths():
        if path.exists():
            shutil.move(str(path), target / path.name)
    return target
