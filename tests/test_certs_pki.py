"""certs.pki: issuing, verifying, renewing and revoking real certificates on a fake clock."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certs.pki import (
    CertificateError,
    Issued,
    build_crl,
    cert_to_pem,
    create_ca,
    crl_needs_renewal,
    crl_to_pem,
    issue_client,
    issue_server,
    key_to_pem,
    load_cert_pem,
    load_crl_pem,
    load_key_pem,
    needs_renewal,
    parse_san,
    reissue,
    verify,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
YEAR = timedelta(days=365)


@pytest.fixture(scope="module")
def ca() -> Issued:
    return create_ca(validity=10 * YEAR, now=T0)


@pytest.fixture(scope="module")
def server(ca: Issued) -> Issued:
    return issue_server(
        ca,
        dns_names=["localhost", "aggregator"],
        ip_addresses=["127.0.0.1"],
        validity=YEAR,
        now=T0,
    )


@pytest.fixture(scope="module")
def node(ca: Issued) -> Issued:
    return issue_client(ca, "node-3", validity=YEAR, now=T0)


def _eku(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_ca_is_a_self_signed_ca(ca: Issued) -> None:
    constraints = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert ca.cert.issuer == ca.cert.subject
    ca.cert.verify_directly_issued_by(ca.cert)
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey)
    assert ca.key.curve.name == "secp256r1"


def test_server_cert_is_server_only_and_names_every_san(server: Issued, ca: Issued) -> None:
    assert _eku(server.cert) == [ExtendedKeyUsageOID.SERVER_AUTH]
    sans = server.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "aggregator"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    verify(server.cert, ca.cert, now=T0 + DAY, usage="server")
    verify(server.cert, ca.cert, now=T0 + DAY, usage="server", name="127.0.0.1")
    verify(server.cert, ca.cert, now=T0 + DAY, usage="server", name="aggregator")


def test_server_cert_does_not_cover_other_names(server: Issued, ca: Issued) -> None:
    with pytest.raises(CertificateError, match=r"not valid for evil\.example"):
        verify(server.cert, ca.cert, now=T0 + DAY, usage="server", name="evil.example")


def test_client_cert_names_the_node_and_is_client_only(node: Issued, ca: Issued) -> None:
    cn = node.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "node-3"
    assert _eku(node.cert) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    verify(node.cert, ca.cert, now=T0 + DAY, usage="client")


@pytest.mark.parametrize(("which", "usage"), [("server", "client"), ("node", "server")])
def test_verify_rejects_the_wrong_usage(
    which: str, usage: str, server: Issued, node: Issued, ca: Issued
) -> None:
    cert = server.cert if which == "server" else node.cert
    with pytest.raises(CertificateError, match=f"not a {usage} certificate"):
        verify(cert, ca.cert, now=T0 + DAY, usage=usage)  # type: ignore[arg-type]


def test_verify_rejects_another_ca_even_with_the_same_name(node: Issued, ca: Issued) -> None:
    impostor = create_ca(validity=10 * YEAR, now=T0)  # same default CN, different key
    assert impostor.cert.subject == ca.cert.subject
    forged = issue_client(impostor, "node-3", validity=YEAR, now=T0)
    with pytest.raises(CertificateError, match="failed verification"):
        verify(forged.cert, ca.cert, now=T0 + DAY, usage="client")
    other = create_ca("Other CA", validity=10 * YEAR, now=T0)
    with pytest.raises(CertificateError, match="not by this CA"):
        verify(issue_client(other, "node-3", validity=YEAR, now=T0).cert, ca.cert,
               now=T0 + DAY, usage="client")  # fmt: skip


def test_verify_checks_the_validity_period(node: Issued, ca: Issued) -> None:
    with pytest.raises(CertificateError, match="expired"):
        verify(node.cert, ca.cert, now=T0 + YEAR + DAY, usage="client")
    with pytest.raises(CertificateError, match="not valid before"):
        verify(node.cert, ca.cert, now=T0 - DAY, usage="client")


def test_verify_with_crl_rejects_revoked_and_accepts_others(
    node: Issued, server: Issued, ca: Issued
) -> None:
    other_node = issue_client(ca, "node-4", validity=YEAR, now=T0)
    crl = build_crl(ca, [node.cert.serial_number], now=T0 + DAY, next_update=30 * DAY)
    with pytest.raises(CertificateError, match="revoked"):
        verify(node.cert, ca.cert, now=T0 + 2 * DAY, crl=crl, usage="client")
    verify(other_node.cert, ca.cert, now=T0 + 2 * DAY, crl=crl, usage="client")
    verify(server.cert, ca.cert, now=T0 + 2 * DAY, crl=crl, usage="server")


def test_verify_rejects_a_crl_of_another_ca_or_an_expired_crl(node: Issued, ca: Issued) -> None:
    impostor = create_ca(validity=10 * YEAR, now=T0)
    foreign = build_crl(impostor, [], now=T0, next_update=30 * DAY)
    with pytest.raises(CertificateError, match="not signed by this CA"):
        verify(node.cert, ca.cert, now=T0 + DAY, crl=foreign, usage="client")
    stale = build_crl(ca, [], now=T0, next_update=30 * DAY)
    with pytest.raises(CertificateError, match="CRL expired"):
        verify(node.cert, ca.cert, now=T0 + 31 * DAY, crl=stale, usage="client")


def test_crl_lists_serials_with_dates_and_numbers_grow(ca: Issued) -> None:
    revoked_at = T0 + 3 * DAY
    first = build_crl(ca, [5, 7, 5], now=T0 + 4 * DAY, next_update=10 * DAY,
                      revoked_at={7: revoked_at})  # fmt: skip
    assert sorted(r.serial_number for r in first) == [5, 7]
    assert first.get_revoked_certificate_by_serial_number(7).revocation_date_utc == revoked_at
    assert first.next_update_utc == T0 + 14 * DAY
    assert first.is_signature_valid(ca.cert.public_key())
    later = build_crl(ca, [5], now=T0 + 5 * DAY, next_update=10 * DAY)
    number = x509.CRLNumber
    assert (later.extensions.get_extension_for_class(number).value.crl_number
            > first.extensions.get_extension_for_class(number).value.crl_number)  # fmt: skip
    assert crl_needs_renewal(first, T0 + 13 * DAY, 2 * DAY)
    assert not crl_needs_renewal(first, T0 + 5 * DAY, 2 * DAY)


def test_needs_renewal_inside_the_window_only(node: Issued) -> None:
    expiry = node.cert.not_valid_after_utc
    window = timedelta(days=30)
    assert not needs_renewal(node.cert, expiry - window - timedelta(seconds=1), window)
    assert needs_renewal(node.cert, expiry - window, window)
    assert needs_renewal(node.cert, expiry + DAY, window)  # already expired


def test_reissue_keeps_identity_and_changes_key_and_serial(server: Issued, ca: Issued) -> None:
    later = T0 + 300 * DAY
    new = reissue(ca, server.cert, validity=YEAR, now=later)
    assert new.cert.subject == server.cert.subject
    old_sans = server.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    new_sans = new.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert new_sans.value == old_sans.value
    assert _eku(new.cert) == _eku(server.cert)
    assert new.cert.serial_number != server.cert.serial_number
    assert new.cert.public_key() != server.cert.public_key()
    assert new.cert.not_valid_after_utc == later + YEAR
    verify(new.cert, ca.cert, now=later, usage="server")


def test_reissue_refuses_a_certificate_of_another_ca(node: Issued) -> None:
    other = create_ca(validity=10 * YEAR, now=T0)
    with pytest.raises(CertificateError, match="not issued by"):
        reissue(other, node.cert, validity=YEAR, now=T0)


def test_certificates_cannot_outlive_the_ca() -> None:
    short_ca = create_ca(validity=30 * DAY, now=T0)
    with pytest.raises(CertificateError, match="outlive its CA"):
        issue_client(short_ca, "node-0", validity=YEAR, now=T0)


def test_bad_inputs_give_clear_errors(ca: Issued) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        create_ca(validity=YEAR, now=datetime(2030, 1, 1))
    with pytest.raises(CertificateError, match="not an IP address"):
        issue_server(ca, dns_names=[], ip_addresses=["300.1.1.1"], validity=YEAR, now=T0)
    with pytest.raises(CertificateError, match="at least one"):
        issue_server(ca, dns_names=[], ip_addresses=[], validity=YEAR, now=T0)
    with pytest.raises(CertificateError, match="DNS name or IP"):
        parse_san("not a name!")
    with pytest.raises(CertificateError, match="positive"):
        issue_client(ca, "node-1", validity=timedelta(0), now=T0)


def test_pem_round_trips_and_rejects_garbage(node: Issued, ca: Issued) -> None:
    assert load_cert_pem(cert_to_pem(node.cert)) == node.cert
    assert load_key_pem(key_to_pem(node.key)).public_key() == node.key.public_key()
    crl = build_crl(ca, [1], now=T0, next_update=DAY)
    assert load_crl_pem(crl_to_pem(crl)) == crl
    with pytest.raises(CertificateError, match="not a PEM certificate"):
        load_cert_pem(b"hello")
    with pytest.raises(CertificateError, match="not a PEM CRL"):
        load_crl_pem(cert_to_pem(node.cert))
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_pem = rsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(CertificateError, match="expected an EC private key"):
        load_key_pem(rsa_pem)
