"""Human-readable facts about a certificate, a CRL, a bundle directory or a whole PKI."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509

from certs.layout import Layout
from certs.pki import (
    CertificateError,
    certificate_usage,
    load_cert_pem,
    load_crl_pem,
    subject_alt_names,
)
from fl.contract import TLS_CERT_FILE, TLS_CRL_FILE

__all__ = ["CertFacts", "CrlFacts", "describe_cert", "describe_crl", "inspect_path"]


@dataclass(frozen=True)
class CertFacts:
    path: str
    subject: str
    issuer: str
    serial: str
    sans: list[str]
    usage: str
    not_before: str
    not_after: str
    days_left: float
    status: str  # ok | expired | not-yet-valid | revoked

    def lines(self) -> list[str]:
        return [
            f"{self.path}",
            f"  subject:    {self.subject}",
            f"  issuer:     {self.issuer}",
            f"  serial:     {self.serial}",
            f"  SANs:       {', '.join(self.sans) or '-'}",
            f"  usage:      {self.usage}",
            f"  not before: {self.not_before}",
            f"  not after:  {self.not_after}",
            f"  days left:  {self.days_left:.1f}",
            f"  status:     {self.status}",
        ]


@dataclass(frozen=True)
class CrlFacts:
    path: str
    issuer: str
    last_update: str
    next_update: str
    days_left: float
    revoked: list[str]

    def lines(self) -> list[str]:
        return [
            f"{self.path}",
            f"  CRL issuer:  {self.issuer}",
            f"  last update: {self.last_update}",
            f"  next update: {self.next_update}",
            f"  days left:   {self.days_left:.1f}",
            f"  revoked:     {', '.join(self.revoked) or 'none'}",
        ]


def describe_cert(
    cert: x509.Certificate,
    now: datetime,
    *,
    path: str = "",
    crl: x509.CertificateRevocationList | None = None,
) -> CertFacts:
    ca = _is_ca(cert)
    usage = "CA" if ca else (certificate_usage(cert) or "none")
    usage = {"server": "serverAuth (server)", "client": "clientAuth (client)"}.get(usage, usage)
    if crl is not None and crl.get_revoked_certificate_by_serial_number(cert.serial_number):
        status = "revoked"
    elif now > cert.not_valid_after_utc:
        status = "expired"
    elif now < cert.not_valid_before_utc:
        status = "not-yet-valid"
    else:
        status = "ok"
    return CertFacts(
        path=path,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=f"{cert.serial_number:x}",
        sans=[_san_text(san) for san in subject_alt_names(cert)],
        usage=usage,
        not_before=f"{cert.not_valid_before_utc:%F %T}Z",
        not_after=f"{cert.not_valid_after_utc:%F %T}Z",
        days_left=(cert.not_valid_after_utc - now).total_seconds() / 86400,
        status=status,
    )


def describe_crl(crl: x509.CertificateRevocationList, now: datetime, *, path: str = "") -> CrlFacts:
    next_update = crl.next_update_utc
    return CrlFacts(
        path=path,
        issuer=crl.issuer.rfc4514_string(),
        last_update=f"{crl.last_update_utc:%F %T}Z",
        next_update=f"{next_update:%F %T}Z" if next_update else "-",
        days_left=(next_update - now).total_seconds() / 86400 if next_update else float("inf"),
        revoked=[f"{entry.serial_number:x}" for entry in crl],
    )


def inspect_path(path: Path, now: datetime) -> list[CertFacts | CrlFacts]:
    """Facts about a PEM file, a bundle directory (tls.crt) or a PKI directory (ca/)."""
    if not path.exists():
        raise CertificateError(f"no such file or directory: {path}")
    if path.is_file():
        return [_inspect_file(path, now)]
    layout = Layout(path)
    if layout.ca_cert.exists():
        crl = _maybe_crl(layout.ca_crl)
        files = [layout.ca_cert, *sorted(path.glob(f"*/{TLS_CERT_FILE}"))]
        files += sorted(layout.nodes_dir.glob(f"*/{TLS_CERT_FILE}"), key=_ordinal_key)
        facts: list[CertFacts | CrlFacts] = [
            describe_cert(_load_cert(f), now, path=str(f), crl=crl) for f in files
        ]
        if crl is not None:
            facts.append(describe_crl(crl, now, path=str(layout.ca_crl)))
        return facts
    if (path / TLS_CERT_FILE).exists():
        cert_file = path / TLS_CERT_FILE
        crl = _nearby_crl(path)
        return [describe_cert(_load_cert(cert_file), now, path=str(cert_file), crl=crl)]
    raise CertificateError(
        f"{path} is neither a certificate, a CRL, a bundle directory ({TLS_CERT_FILE}) "
        "nor a PKI directory (ca/)"
    )


def _inspect_file(path: Path, now: datetime) -> CertFacts | CrlFacts:
    data = path.read_bytes()
    if b"-----BEGIN X509 CRL-----" in data:
        return describe_crl(load_crl_pem(data), now, path=str(path))
    if b"-----BEGIN CERTIFICATE-----" in data:
        return describe_cert(load_cert_pem(data), now, path=str(path), crl=_nearby_crl(path.parent))
    if b"PRIVATE KEY-----" in data:
        raise CertificateError(f"{path} is a private key; inspect its certificate instead")
    raise CertificateError(f"{path} is neither a PEM certificate nor a PEM CRL")


def _load_cert(path: Path) -> x509.Certificate:
    return load_cert_pem(path.read_bytes())


def _maybe_crl(path: Path) -> x509.CertificateRevocationList | None:
    return load_crl_pem(path.read_bytes()) if path.exists() else None


def _nearby_crl(bundle_dir: Path) -> x509.CertificateRevocationList | None:
    """The bundle's own ca.crl, else that of the PKI directory it sits in (if any)."""
    bundle_dir = bundle_dir.resolve()
    candidates = [bundle_dir / TLS_CRL_FILE]
    candidates += [Layout(parent).ca_crl for parent in bundle_dir.parents[:2]]
    for candidate in candidates:
        if candidate.is_file():
            return _maybe_crl(candidate)
    return None


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _san_text(san: x509.GeneralName) -> str:
    kind = "IP" if isinstance(san, x509.IPAddress) else "DNS"
    return f"{kind}:{san.value}"


def _ordinal_key(path: Path) -> tuple[int, str]:
    name = path.parent.name
    tail = name.rsplit("-", 1)[-1]
    return (int(tail) if tail.isdigit() else -1, name)
