"""The PKI dynamic provider, with real certificates and a fake clock: create, check, read
(rotation inside the renewal window), diff, update (nodes added / removed → revoked)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import dill
import pytest
from pulumi.dynamic.dynamic import serialize_provider

from certs.pki import CertificateError, load_cert_pem, load_crl_pem, load_key_pem, verify
from infra.components.pki_provider import UNKNOWN, PkiProvider, PkiSpec

START = datetime(2030, 1, 1, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def spec(nodes: int = 3, **changes: Any) -> dict[str, Any]:
    base = PkiSpec(
        ca_common_name="Test CA",
        node_ids=tuple(f"node-{i}" for i in range(nodes)),
        server_dns_names=("aggregator", "localhost"),
        server_ip_addresses=("127.0.0.1",),
        validity_days=90,
        ca_validity_days=3650,
        renew_before_days=30,
    ).to_props()
    base.update(changes)
    # the engine hands numbers over as floats
    for key in ("validity_days", "ca_validity_days", "renew_before_days"):
        base[key] = float(base[key])
    return base


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def provider(clock: FakeClock) -> PkiProvider:
    return PkiProvider(clock=clock)


def serial(pem: str) -> int:
    return load_cert_pem(pem.encode()).serial_number


def crl_of(state: dict[str, Any]):
    return load_crl_pem(state["crl"].encode())


def test_create_issues_a_verifiable_pki(provider: PkiProvider, clock: FakeClock) -> None:
    result = provider.create(spec())
    outs = result.outs
    assert result.id.startswith("pki-")
    ca = load_cert_pem(outs["ca_cert"].encode())
    crl = crl_of(outs)
    server = load_cert_pem(outs["server_cert"].encode())
    for name in ("aggregator", "localhost", "127.0.0.1"):
        verify(server, ca, now=clock.now, crl=crl, usage="server", name=name)
    verify(
        load_cert_pem(outs["operator_cert"].encode()), ca, now=clock.now, crl=crl, usage="client"
    )
    assert sorted(outs["node_certs"]) == ["node-0", "node-1", "node-2"]
    for node, pem in outs["node_certs"].items():
        cert = load_cert_pem(pem.encode())
        verify(cert, ca, now=clock.now, crl=crl, usage="client")
        assert cert.subject.rfc4514_string() == f"CN={node}"
        key = load_key_pem(outs["node_keys"][node].encode())
        assert key.public_key() == cert.public_key()
    assert list(crl) == []
    expiries = {k: datetime.fromisoformat(v) for k, v in outs["expiries"].items()}
    assert datetime.fromisoformat(outs["earliest_expiry"]) == min(expiries.values())
    assert expiries["node-0"] == START + timedelta(days=90)
    assert expiries["ca"] == START + timedelta(days=3650)
    # the inputs are echoed so that diff can compare them later
    assert outs["node_ids"] == ["node-0", "node-1", "node-2"]


def test_check_reports_inputs_the_pki_cannot_use(provider: PkiProvider) -> None:
    assert provider.check({}, spec()).failures == []
    bad = spec(node_ids=["node-0", "node-0", "Bad_Name"], renew_before_days=90.0)
    failures = {(f.property, f.reason.split(":")[0]) for f in provider.check({}, bad).failures}
    properties = {p for p, _ in failures}
    assert {"node_ids", "renew_before_days"} <= properties
    unknown = spec(node_ids=UNKNOWN)
    assert provider.check({}, unknown).failures == []  # decided once known


def test_read_outside_the_window_changes_nothing(provider: PkiProvider, clock: FakeClock) -> None:
    outs = provider.create(spec()).outs
    clock.advance(days=59)  # 31 days left: outside the 30-day window
    read = provider.read("pki-1", outs)
    assert read.id == "pki-1"
    assert read.outs == outs


def test_read_inside_the_window_reissues_the_leaves(
    provider: PkiProvider, clock: FakeClock
) -> None:
    outs = provider.create(spec()).outs
    clock.advance(days=61)  # 29 days left
    renewed = provider.read("pki-1", outs).outs
    assert renewed["ca_cert"] == outs["ca_cert"] and renewed["ca_key"] == outs["ca_key"]
    ca = load_cert_pem(renewed["ca_cert"].encode())
    for node in ("node-0", "node-1", "node-2"):
        assert serial(renewed["node_certs"][node]) != serial(outs["node_certs"][node])
        assert renewed["node_keys"][node] != outs["node_keys"][node]  # a new key, too
        cert = load_cert_pem(renewed["node_certs"][node].encode())
        assert cert.not_valid_after_utc == clock.now + timedelta(days=90)
        verify(cert, ca, now=clock.now, crl=crl_of(renewed), usage="client")
    assert serial(renewed["server_cert"]) != serial(outs["server_cert"])
    assert datetime.fromisoformat(renewed["earliest_expiry"]) == clock.now + timedelta(days=90)
    # the CRL was due as well (it lives as long as a certificate) and is current again
    assert crl_of(renewed).next_update_utc > clock.now + timedelta(days=60)


def test_read_renews_the_ca_before_it_can_no_longer_sign(
    provider: PkiProvider, clock: FakeClock
) -> None:
    outs = provider.create(spec(nodes=2)).outs
    clock.advance(days=3650 - 100)  # CA expires in 100 days < validity (90) + window (30)
    renewed = provider.read("pki-1", outs).outs
    assert renewed["ca_cert"] != outs["ca_cert"]
    ca = load_cert_pem(renewed["ca_cert"].encode())
    assert ca.not_valid_after_utc == clock.now + timedelta(days=3650)
    for pem in renewed["node_certs"].values():
        verify(load_cert_pem(pem.encode()), ca, now=clock.now, usage="client")
    old_ca = load_cert_pem(outs["ca_cert"].encode())
    with pytest.raises(CertificateError):
        verify(
            load_cert_pem(renewed["node_certs"]["node-0"].encode()),
            old_ca,
            now=clock.now,
            usage="client",
        )


def test_diff(provider: PkiProvider) -> None:
    outs = provider.create(spec()).outs
    same = provider.diff("pki-1", outs, spec())
    assert same.changes is False and same.replaces == []
    grown = provider.diff("pki-1", outs, spec(nodes=5))
    assert grown.changes is True and grown.replaces == []
    renamed = provider.diff("pki-1", outs, spec(ca_common_name="Another CA"))
    assert renamed.changes is True and renamed.replaces == ["ca_common_name"]
    assert provider.diff("pki-1", outs, spec(node_ids=UNKNOWN)).changes is True


def test_update_issues_new_nodes_and_revokes_removed_ones(
    provider: PkiProvider, clock: FakeClock
) -> None:
    outs = provider.create(spec(nodes=4)).outs
    clock.advance(days=1)
    shrunk = provider.update("pki-1", outs, spec(nodes=2)).outs
    assert sorted(shrunk["node_certs"]) == ["node-0", "node-1"]
    assert sorted(shrunk["node_keys"]) == ["node-0", "node-1"]
    # kept nodes keep their certificates
    for node in ("node-0", "node-1"):
        assert shrunk["node_certs"][node] == outs["node_certs"][node]
    crl = crl_of(shrunk)
    ca = load_cert_pem(shrunk["ca_cert"].encode())
    revoked = {entry.serial_number for entry in crl}
    assert revoked == {serial(outs["node_certs"]["node-2"]), serial(outs["node_certs"]["node-3"])}
    assert {r["holder"] for r in shrunk["revoked"]} == {"node-2", "node-3"}
    assert all(isinstance(r["serial"], str) for r in shrunk["revoked"])  # JSON-safe
    with pytest.raises(CertificateError, match="revoked"):
        verify(
            load_cert_pem(outs["node_certs"]["node-3"].encode()),
            ca,
            now=clock.now,
            crl=crl,
            usage="client",
        )
    verify(
        load_cert_pem(shrunk["node_certs"]["node-0"].encode()),
        ca,
        now=clock.now,
        crl=crl,
        usage="client",
    )

    clock.advance(days=1)
    regrown = provider.update("pki-1", shrunk, spec(nodes=3)).outs
    assert sorted(regrown["node_certs"]) == ["node-0", "node-1", "node-2"]
    new_node_2 = load_cert_pem(regrown["node_certs"]["node-2"].encode())
    assert new_node_2.serial_number not in revoked
    verify(new_node_2, ca, now=clock.now, crl=crl_of(regrown), usage="client")
    assert len(list(crl_of(regrown))) == 2  # the old node-2 stays revoked


def test_update_reissues_the_server_for_new_names(provider: PkiProvider, clock: FakeClock) -> None:
    outs = provider.create(spec()).outs
    names = ["aggregator", "aggregator.testnet.svc", "localhost"]
    updated = provider.update("pki-1", outs, spec(server_dns_names=names)).outs
    server = load_cert_pem(updated["server_cert"].encode())
    ca = load_cert_pem(updated["ca_cert"].encode())
    verify(server, ca, now=clock.now, usage="server", name="aggregator.testnet.svc")
    assert updated["node_certs"] == outs["node_certs"]


def test_expired_revocations_leave_the_crl(provider: PkiProvider, clock: FakeClock) -> None:
    outs = provider.create(spec(nodes=3)).outs
    shrunk = provider.update("pki-1", outs, spec(nodes=2)).outs
    assert len(list(crl_of(shrunk))) == 1
    clock.advance(days=61)
    renewed = provider.read("pki-1", shrunk).outs  # node-0 and node-1 get new certificates
    clock.advance(days=39)  # day 100: node-2's revoked certificate expired on day 90
    later = provider.update("pki-1", renewed, spec(nodes=1)).outs
    assert {r["holder"] for r in later["revoked"]} == {"node-1"}
    assert {e.serial_number for e in crl_of(later)} == {serial(renewed["node_certs"]["node-1"])}


def test_provider_survives_the_engines_serialisation(clock: FakeClock) -> None:
    """The engine stores the provider with dill and runs it in another process."""
    blob = serialize_provider(PkiProvider())
    restored = dill.loads(base64.b64decode(blob))
    outs = restored.create(spec(nodes=1)).outs
    assert sorted(outs["node_certs"]) == ["node-0"]
