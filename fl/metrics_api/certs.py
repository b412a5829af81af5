"""Days until each certificate under a directory expires (read on every scrape, so a
rotation shows up without a restart)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

log = logging.getLogger(__name__)
CERT_SUFFIXES = (".crt", ".pem", ".cert")


@dataclass(frozen=True)
class CertExpiry:
    file: str  # path relative to the watched directory
    subject: str
    days_left: float


def subject_name(cert: x509.Certificate) -> str:
    common_names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if common_names:
        return str(common_names[0].value)
    return cert.subject.rfc4514_string() or f"serial {cert.serial_number:x}"


def certificate_expiries(cert_dir: Path, now: datetime | None = None) -> list[CertExpiry]:
    """Every certificate in the PEM files under ``cert_dir`` (keys and other files skipped)."""
    now = now or datetime.now(UTC)
    found: list[CertExpiry] = []
    if not cert_dir.is_dir():
        return found
    for path in sorted(cert_dir.rglob("*")):
        if path.suffix not in CERT_SUFFIXES or not path.is_file():
            continue
        try:
            certs = x509.load_pem_x509_certificates(path.read_bytes())
        except (OSError, ValueError) as exc:
            log.debug("skipping %s: %s", path, exc)
            continue
        relative = path.relative_to(cert_dir).as_posix()
        for index, cert in enumerate(certs):
            left = (cert.not_valid_after_utc - now).total_seconds() / 86400.0
            name = relative if index == 0 else f"{relative}#{index}"
            found.append(CertExpiry(file=name, subject=subject_name(cert), days_left=left))
    return found
