"""Certificates of one stack's PKI: a CA, one server certificate, client certificates.

Everything here is a pure function of its arguments (keys are generated, the clock is an
argument), so the same code serves the ``certs`` CLI, the Pulumi dynamic provider and the
tests. Keys are ECDSA P-256, signatures ECDSA-SHA256. Chain, validity and key-usage checks
are done by ``cryptography``'s X.509 verifier; revocation by the CA's CRL.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CertificateError",
    "Issued",
    "Usage",
    "build_crl",
    "cert_to_pem",
    "certificate_usage",
    "create_ca",
    "crl_needs_renewal",
    "crl_to_pem",
    "issue_client",
    "issue_server",
    "key_to_pem",
    "load_cert_pem",
    "load_crl_pem",
    "load_key_pem",
    "needs_renewal",
    "parse_san",
    "reissue",
    "subject_alt_names",
    "verify",
]

Usage = Literal["server", "client"]

_CURVE = ec.SECP256R1
_HASH = hashes.SHA256
_USAGE_OID = {"server": ExtendedKeyUsageOID.SERVER_AUTH, "client": ExtendedKeyUsageOID.CLIENT_AUTH}
# A backdate absorbs small clock skew between the issuer and whoever checks first.
_BACKDATE = timedelta(minutes=5)


class CertificateError(Exception):
    """A certificate, key or CRL is unusable; ``reason`` says why, for humans."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


# ----------------------------------------------------------------------------- issuing


def create_ca(
    common_name: str = "Sovereign Map CA", *, validity: timedelta, now: datetime
) -> Issued:
    """Create a self-signed CA that may sign leaf certificates and CRLs (no sub-CAs)."""
    now = _aware(now)
    _positive(validity, "CA validity")
    key = _new_key()
    name = _name(common_name)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    return Issued(cert=builder.sign(key, _HASH()), key=key)


def issue_server(
    ca: Issued,
    *,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
    validity: timedelta,
    now: datetime,
    common_name: str = "aggregator",
) -> Issued:
    """Issue a TLS server certificate (serverAuth only) for the given names and IPs."""
    sans: list[x509.GeneralName] = [parse_san(name) for name in dns_names]
    for ip in ip_addresses:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(ip)))
        except ValueError:
            raise CertificateError(f"not an IP address: {ip!r}") from None
    if not sans:
        raise CertificateError("a server certificate needs at least one DNS name or IP address")
    return _issue(ca, _name(common_name), sans, "server", validity=validity, now=now)


def issue_client(ca: Issued, node_id: str, *, validity: timedelta, now: datetime) -> Issued:
    """Issue a TLS client certificate (clientAuth only) whose subject CN is ``node_id``."""
    san = parse_san(node_id)
    if not isinstance(san, x509.DNSName):
        raise CertificateError(f"a client id must be a DNS-style name, not {node_id!r}")
    return _issue(ca, _name(node_id), [san], "client", validity=validity, now=now)


def reissue(ca: Issued, old: x509.Certificate, *, validity: timedelta, now: datetime) -> Issued:
    """Re-issue ``old`` with a new key and serial: same subject, names and usage."""
    try:
        old.verify_directly_issued_by(ca.cert)
    except (ValueError, TypeError, InvalidSignature):
        raise CertificateError(
            f"{_cn(old)!r} was not issued by the CA {_cn(ca.cert)!r}; cannot re-issue it"
        ) from None
    usage = certificate_usage(old)
    if usage is None:
        raise CertificateError(f"{_cn(old)!r} is neither a server nor a client certificate")
    return _issue(ca, old.subject, subject_alt_names(old), usage, validity=validity, now=now)


def _issue(
    ca: Issued,
    subject: x509.Name,
    sans: Sequence[x509.GeneralName],
    usage: Usage,
    *,
    validity: timedelta,
    now: datetime,
) -> Issued:
    now = _aware(now)
    _positive(validity, "validity")
    not_after = now + validity
    ca_not_after = ca.cert.not_valid_after_utc
    if not_after > ca_not_after:
        raise CertificateError(
            f"a certificate valid until {not_after:%Y-%m-%d} would outlive its CA, which "
            f"expires {ca_not_after:%Y-%m-%d}; renew the CA or shorten the validity"
        )
    if now < ca.cert.not_valid_before_utc:
        raise CertificateError("the CA is not valid yet at the given time")
    key = _new_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(max(now - _BACKDATE, ca.cert.not_valid_before_utc))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([_USAGE_OID[usage]]), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_authority_key_id(ca.cert), critical=False)
    )
    return Issued(cert=builder.sign(ca.key, _HASH()), key=key)


# ----------------------------------------------------------------------- renewal, CRL


def needs_renewal(cert: x509.Certificate, now: datetime, renew_before: timedelta) -> bool:
    """True when ``cert`` expires within ``renew_before`` of ``now`` (or already has)."""
    return cert.not_valid_after_utc - _aware(now) <= renew_before


def crl_needs_renewal(
    crl: x509.CertificateRevocationList, now: datetime, renew_before: timedelta
) -> bool:
    """True when the CRL's next update falls within ``renew_before`` of ``now``."""
    next_update = crl.next_update_utc
    return next_update is None or next_update - _aware(now) <= renew_before


def build_crl(
    ca: Issued,
    revoked_serials: Iterable[int],
    *,
    now: datetime,
    next_update: timedelta,
    revoked_at: Mapping[int, datetime] | None = None,
) -> x509.CertificateRevocationList:
    """Sign a CRL listing ``revoked_serials``, valid from ``now`` for ``next_update``.

    ``revoked_at`` optionally gives each serial's revocation time (default: ``now``). The
    CRL number is the signing time in seconds, so later CRLs have larger numbers.
    """
    now = _aware(now)
    _positive(next_update, "CRL validity")
    revoked_at = revoked_at or {}
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - _BACKDATE)
        .next_update(now + next_update)
        .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False)
        .add_extension(_authority_key_id(ca.cert), critical=False)
    )
    for serial in sorted(set(revoked_serials)):
        when = _aware(revoked_at.get(serial, now))
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(min(when, now))
            .build()
        )
    return builder.sign(ca.key, _HASH())


# ---------------------------------------------------------------------------- verify


def verify(
    cert: x509.Certificate,
    ca_cert: x509.Certificate,
    *,
    now: datetime,
    crl: x509.CertificateRevocationList | None = None,
    usage: Usage,
    name: str | None = None,
) -> None:
    """Check that ``cert`` may be used for ``usage`` at ``now``; raise ``CertificateError``.

    Checks: issued (and signed) by ``ca_cert``, inside its validity period, the right
    extended key usage (``serverAuth`` or ``clientAuth``), and, given a CRL, not revoked
    and the CRL itself signed by the CA and current. For servers, ``name`` (a DNS name or
    IP) must be among the certificate's names; by default its first name is used.
    """
    now = _aware(now)
    who = _cn(cert)
    if cert.issuer != ca_cert.subject:
        raise CertificateError(f"{who!r} was issued by {_cn_of(cert.issuer)!r}, not by this CA")
    if now < cert.not_valid_before_utc:
        raise CertificateError(f"{who!r} is not valid before {cert.not_valid_before_utc:%F %T}Z")
    if now > cert.not_valid_after_utc:
        raise CertificateError(f"{who!r} expired on {cert.not_valid_after_utc:%F %T}Z")
    actual = certificate_usage(cert)
    if actual != usage:
        raise CertificateError(
            f"{who!r} is a {actual or 'no-TLS-usage'} certificate, not a {usage} certificate"
        )
    builder = verification.PolicyBuilder().store(verification.Store([ca_cert])).time(now)
    try:
        if usage == "client":
            builder.build_client_verifier().verify(cert, [])
        else:
            builder.build_server_verifier(_server_subject(cert, name)).verify(cert, [])
    except verification.VerificationError as exc:
        raise CertificateError(f"{who!r} failed verification against the CA: {exc}") from None
    if crl is not None:
        _check_crl(crl, ca_cert, now)
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is not None:
            raise CertificateError(
                f"{who!r} (serial {cert.serial_number:x}) was revoked on "
                f"{entry.revocation_date_utc:%F %T}Z"
            )


def _check_crl(
    crl: x509.CertificateRevocationList, ca_cert: x509.Certificate, now: datetime
) -> None:
    if crl.issuer != ca_cert.subject or not crl.is_signature_valid(ca_cert.public_key()):
        raise CertificateError("the CRL was not signed by this CA")
    if crl.next_update_utc is not None and now > crl.next_update_utc:
        raise CertificateError(
            f"the CRL expired on {crl.next_update_utc:%F %T}Z; re-sign it (certs rotate)"
        )
    if now < crl.last_update_utc:
        raise CertificateError("the CRL is not valid yet at the given time")


def _server_subject(cert: x509.Certificate, name: str | None) -> verification.Subject:
    if name is not None:
        names = [str(san.value) for san in subject_alt_names(cert)]
        if name not in names:
            raise CertificateError(
                f"{_cn(cert)!r} is not valid for {name}: its names are "
                f"{', '.join(names) or 'none'} (re-issue it with that name as a SAN)"
            )
        try:
            return verification.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            return verification.DNSName(name)
    for san in subject_alt_names(cert):
        if isinstance(san, x509.IPAddress):
            return verification.IPAddress(san.value)
        if isinstance(san, x509.DNSName):
            return verification.DNSName(san.value)
    raise CertificateError(f"server certificate {_cn(cert)!r} names no DNS name or IP address")


# ---------------------------------------------------------------------- introspection


def certificate_usage(cert: x509.Certificate) -> Usage | None:
    """``"server"`` or ``"client"`` from the extended key usage (None when neither/both)."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    found = [usage for usage, oid in _USAGE_OID.items() if oid in eku]
    return found[0] if len(found) == 1 else None  # type: ignore[return-value]


def subject_alt_names(cert: x509.Certificate) -> list[x509.GeneralName]:
    """The certificate's subjectAltName entries (empty when it has none)."""
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def parse_san(value: str) -> x509.GeneralName:
    """A DNS name or IP address as a subjectAltName; ``CertificateError`` if it is neither."""
    text = value.strip()
    try:
        return x509.IPAddress(ipaddress.ip_address(text))
    except ValueError:
        pass
    labels = text.rstrip(".").split(".")
    valid = all(_is_dns_label(label, i) for i, label in enumerate(labels))
    if not text or len(text) > 253 or not valid:
        raise CertificateError(f"not a DNS name or IP address: {value!r}")
    return x509.DNSName(text.lower())


def _is_dns_label(label: str, index: int) -> bool:
    if index == 0 and label == "*":
        return True  # a wildcard is allowed as the leftmost label
    return (
        0 < len(label) <= 63
        and label[0] != "-"
        and label[-1] != "-"
        and all(c.isascii() and (c.isalnum() or c == "-") for c in label)
    )


# ------------------------------------------------------------------------------- PEM


def cert_to_pem(cert: x509.Certificate) -> bytes:
    """PEM encoding of a certificate."""
    return cert.public_bytes(serialization.Encoding.PEM)


def key_to_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM of a private key (protect the file, not the bytes)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def crl_to_pem(crl: x509.CertificateRevocationList) -> bytes:
    """PEM encoding of a CRL."""
    return crl.public_bytes(serialization.Encoding.PEM)


def load_cert_pem(data: bytes) -> x509.Certificate:
    """Parse a PEM certificate; ``CertificateError`` if it is not one."""
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise CertificateError(f"not a PEM certificate: {exc}") from None


def load_key_pem(data: bytes) -> ec.EllipticCurvePrivateKey:
    """Parse an unencrypted PEM EC private key; ``CertificateError`` otherwise."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertificateError(f"expected an EC private key, got {type(key).__name__}")
    return key


def load_crl_pem(data: bytes) -> x509.CertificateRevocationList:
    """Parse a PEM CRL; ``CertificateError`` if it is not one."""
    try:
        return x509.load_pem_x509_crl(data)
    except ValueError as exc:
        raise CertificateError(f"not a PEM CRL: {exc}") from None


# --------------------------------------------------------------------------- helpers


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(_CURVE())


def _name(common_name: str) -> x509.Name:
    if not common_name or not common_name.strip():
        raise CertificateError("a certificate needs a non-empty common name")
    if len(common_name) > 64:
        raise CertificateError(f"common name longer than 64 characters: {common_name!r}")
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _authority_key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _cn(cert: x509.Certificate) -> str:
    return _cn_of(cert.subject)


def _cn_of(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else name.rfc4514_string()


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("times must be timezone-aware (e.g. datetime.now(UTC))")
    return moment


def _positive(span: timedelta, what: str) -> None:
    if span <= timedelta(0):
        raise CertificateError(f"{what} must be positive, got {span}")
