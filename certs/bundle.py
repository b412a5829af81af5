"""A TLS bundle on disk: ``ca.crt``, ``tls.crt``, ``tls.key`` (the Kubernetes TLS-secret names).

Every file is written atomically (a temporary file in the same directory, then a rename),
so a process that reloads its certificates never sees half a file. Keys are mode 0600.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from certs.pki import (
    CertificateError,
    cert_to_pem,
    crl_to_pem,
    key_to_pem,
    load_cert_pem,
    load_crl_pem,
    load_key_pem,
)
from fl.contract import TLS_CA_FILE, TLS_CERT_FILE, TLS_CRL_FILE, TLS_KEY_FILE

__all__ = ["atomic_write", "read_bundle", "read_crl", "write_bundle", "write_crl"]

PUBLIC_MODE = 0o644
SECRET_MODE = 0o600


def write_bundle(
    directory: Path,
    *,
    ca_cert: x509.Certificate,
    cert: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
) -> None:
    """Write ``ca.crt``, ``tls.crt`` and ``tls.key`` (0600) into ``directory``.

    The key is written first and the certificate last, so a reader that sees the new
    certificate also sees its key.
    """
    if cert.public_key() != key.public_key():
        raise CertificateError("the private key does not belong to the certificate")
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory / TLS_CA_FILE, cert_to_pem(ca_cert), PUBLIC_MODE)
    atomic_write(directory / TLS_KEY_FILE, key_to_pem(key), SECRET_MODE)
    atomic_write(directory / TLS_CERT_FILE, cert_to_pem(cert), PUBLIC_MODE)


def read_bundle(
    directory: Path,
) -> tuple[x509.Certificate, x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Read ``(ca_cert, cert, key)`` from ``directory``; ``CertificateError`` if unusable."""
    ca_cert = load_cert_pem(_read(directory / TLS_CA_FILE))
    cert = load_cert_pem(_read(directory / TLS_CERT_FILE))
    key = load_key_pem(_read(directory / TLS_KEY_FILE))
    if cert.public_key() != key.public_key():
        raise CertificateError(
            f"{directory / TLS_KEY_FILE} does not belong to {directory / TLS_CERT_FILE}"
        )
    return ca_cert, cert, key


def write_crl(directory: Path, crl: x509.CertificateRevocationList) -> None:
    """Write the CA's CRL as ``ca.crl`` into ``directory`` (atomically)."""
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory / TLS_CRL_FILE, crl_to_pem(crl), PUBLIC_MODE)


def read_crl(directory: Path) -> x509.CertificateRevocationList:
    """Read ``ca.crl`` from ``directory``; ``CertificateError`` if missing or invalid."""
    return load_crl_pem(_read(directory / TLS_CRL_FILE))


def atomic_write(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data`` atomically; the file has ``mode`` from its first byte."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CertificateError(f"missing file: {path}") from None
    except OSError as exc:
        raise CertificateError(f"cannot read {path}: {exc.strerror}") from None
