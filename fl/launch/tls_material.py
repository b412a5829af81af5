"""TLS material of one process, checked before use: the server's, and a client's identity.

``ServerTLS`` turns a bundle directory (``ca.crt``, ``tls.crt``, ``tls.key``, ``ca.crl``)
into an ``ssl.SSLContext`` that *requires* a client certificate issued by the CA and not
on the CRL, and rebuilds it when any of the files changes (a rotation or a revocation
takes effect on the next handshake, without a restart). ``ClientIdentity`` is the client
side: the CA to trust and the certificate/key to present.

Nothing here knows about Flower; see ``fl.launch.mtls`` for that.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from certs.bundle import read_bundle, read_crl
from certs.pki import CertificateError, verify
from fl.contract import TLS_CA_FILE, TLS_CERT_FILE, TLS_CRL_FILE, TLS_KEY_FILE

__all__ = ["ClientIdentity", "ServerTLS", "TLSMaterialError"]

log = logging.getLogger("sovereign_map.mtls")

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TLSMaterialError(Exception):
    """The certificates/keys/CRL a process was given cannot be used (message says why)."""


def _checked(tls_dir: Path, what: str) -> Path:
    if not tls_dir.is_dir():
        raise TLSMaterialError(f"{what}: no such directory: {tls_dir}")
    return tls_dir


@dataclass(frozen=True)
class _Snapshot:
    context: ssl.SSLContext
    crl: x509.CertificateRevocationList
    signature: tuple[tuple[int, int, int], ...]


class ServerTLS:
    """The server side of mutual TLS, from a bundle directory plus ``ca.crl``."""

    def __init__(self, tls_dir: Path, *, clock: Clock = _utcnow) -> None:
        self.tls_dir = tls_dir
        self._clock = clock
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None

    @property
    def files(self) -> tuple[Path, Path, Path, Path]:
        d = self.tls_dir
        return (d / TLS_CA_FILE, d / TLS_CERT_FILE, d / TLS_KEY_FILE, d / TLS_CRL_FILE)

    def check(self, *, name: str | None = None) -> x509.Certificate:
        """Validate the material now; return the server certificate.

        The server certificate must chain to ``ca.crt``, be a serverAuth certificate valid
        now (and for ``name``, a DNS name or IP, when given), must not be revoked, and
        ``ca.crl`` must be signed by the CA and current.
        """
        _checked(self.tls_dir, "server TLS directory")
        try:
            ca_cert, cert, _ = read_bundle(self.tls_dir)
            crl = read_crl(self.tls_dir)
            verify(cert, ca_cert, now=self._clock(), crl=crl, usage="server", name=name)
        except CertificateError as exc:
            raise TLSMaterialError(f"server TLS material in {self.tls_dir}: {exc.reason}") from None
        return cert

    def context(self) -> ssl.SSLContext:
        """The current server context; rebuilt (and re-checked) when a file changed."""
        return self._current().context

    def refusal_reason(self, cert: x509.Certificate) -> str | None:
        """Why a client certificate accepted earlier must now be dropped (or None)."""
        snapshot = self._current()
        if snapshot.crl.get_revoked_certificate_by_serial_number(cert.serial_number):
            return "certificate revoked"
        if self._clock() > cert.not_valid_after_utc:
            return "certificate expired"
        return None

    def _current(self) -> _Snapshot:
        signature = self._signature()
        with self._lock:
            if self._snapshot is None or self._snapshot.signature != signature:
                first = self._snapshot is None
                self._snapshot = self._build(signature)
                if not first:
                    log.info("reloaded server TLS material from %s", self.tls_dir)
            return self._snapshot

    def _build(self, signature: tuple[tuple[int, int, int], ...]) -> _Snapshot:
        self.check()
        ca_file, cert_file, key_file, crl_file = self.files
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(cert_file, key_file)
            context.load_verify_locations(cafile=ca_file)
            context.load_verify_locations(cafile=crl_file)  # a PEM CRL joins the store
        except (ssl.SSLError, OSError) as exc:
            raise TLSMaterialError(f"cannot load TLS files from {self.tls_dir}: {exc}") from None
        context.verify_mode = ssl.CERT_REQUIRED
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF | ssl.VERIFY_X509_STRICT
        context.set_alpn_protocols(["http/1.1"])
        crl = read_crl(self.tls_dir)
        return _Snapshot(context=context, crl=crl, signature=signature)

    def _signature(self) -> tuple[tuple[int, int, int], ...]:
        out = []
        for path in self.files:
            try:
                st = path.stat()
            except FileNotFoundError:
                raise TLSMaterialError(f"missing TLS file: {path}") from None
            out.append((st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(out)


@dataclass(frozen=True)
class ClientIdentity:
    """A client certificate and key to present, and the CA that signs the server."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    subject: str

    @classmethod
    def from_dir(cls, tls_dir: Path, *, now: datetime | None = None) -> ClientIdentity:
        """Load and check a client bundle: a clientAuth certificate of the bundle's CA."""
        _checked(tls_dir, "client TLS directory")
        try:
            ca_cert, cert, _ = read_bundle(tls_dir)
            verify(cert, ca_cert, now=now or _utcnow(), usage="client")
        except CertificateError as exc:
            raise TLSMaterialError(f"client TLS material in {tls_dir}: {exc.reason}") from None
        return cls(
            ca_file=tls_dir / TLS_CA_FILE,
            cert_file=tls_dir / TLS_CERT_FILE,
            key_file=tls_dir / TLS_KEY_FILE,
            subject=cert.subject.rfc4514_string(),
        )

    def ssl_context(self, verify: ssl.SSLContext | str | bool = True) -> ssl.SSLContext:
        """A client context presenting this identity.

        ``verify`` is what the caller would have used to check the server: an existing
        context (the identity is added to it), a CA file path, or ``True`` (this
        identity's CA).
        """
        if isinstance(verify, ssl.SSLContext):
            context = verify
        else:
            cafile = verify if isinstance(verify, str) else str(self.ca_file)
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context
