"""A Pulumi dynamic provider that keeps a stack's whole mTLS PKI in Pulumi state.

The material (CA, the aggregator's server certificate, the operator's client certificate,
one client certificate per node, the CRL) is issued by :mod:`certs.pki`; the private keys
are marked secret by the resource (``additional_secret_outputs``), so the state holds them
encrypted. Lifecycle:

- ``create``: a new CA and every certificate.
- ``read`` (``pulumi refresh``): re-issues whatever is inside the renewal window (the CA
  when it expires within validity + window, since it must outlive what it signs) and
  re-signs a CRL that is due; the next ``pulumi up`` rolls the new material out.
- ``diff`` / ``update``: nodes added get certificates; nodes removed are revoked and listed
  in the CRL; new server names re-issue the server certificate. Changing the CA's name
  replaces the whole PKI. Validity changes apply from the next renewal.

The clock is injectable (``PkiProvider(clock=...)``) for tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from certs.layout import validate_node_id
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
)

Clock = Callable[[], datetime]
PROVIDER_KEY = "__provider"
# Pulumi's marker for a value not known during preview.
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

OPERATOR = "operator"
SERVER = "aggregator"
CA = "ca"

# Input properties (the spec) and output properties (the material), as stored in state.
SPEC_KEYS = (
    "ca_common_name",
    "node_ids",
    "server_dns_names",
    "server_ip_addresses",
    "validity_days",
    "ca_validity_days",
    "renew_before_days",
)
SECRET_OUTPUTS = ("ca_key", "server_key", "operator_key", "node_keys")
MATERIAL_KEYS = (
    "ca_cert",
    "ca_key",
    "server_cert",
    "server_key",
    "operator_cert",
    "operator_key",
    "node_certs",
    "node_keys",
    "crl",
    "revoked",
    "expiries",
    "earliest_expiry",
)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PkiSpec:
    """What the program asks for (the resource's inputs)."""

    ca_common_name: str
    node_ids: tuple[str, ...]
    server_dns_names: tuple[str, ...]
    server_ip_addresses: tuple[str, ...]
    validity_days: int
    ca_validity_days: int
    renew_before_days: int

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> PkiSpec:
        return cls(
            ca_common_name=str(props["ca_common_name"]),
            node_ids=tuple(str(n) for n in props["node_ids"]),
            server_dns_names=tuple(str(n) for n in props["server_dns_names"]),
            server_ip_addresses=tuple(str(n) for n in props["server_ip_addresses"]),
            validity_days=int(props["validity_days"]),  # numbers arrive as floats
            ca_validity_days=int(props["ca_validity_days"]),
            renew_before_days=int(props["renew_before_days"]),
        )

    def to_props(self) -> dict[str, Any]:
        return {
            "ca_common_name": self.ca_common_name,
            "node_ids": list(self.node_ids),
            "server_dns_names": list(self.server_dns_names),
            "server_ip_addresses": list(self.server_ip_addresses),
            "validity_days": self.validity_days,
            "ca_validity_days": self.ca_validity_days,
            "renew_before_days": self.renew_before_days,
        }

    @property
    def validity(self) -> timedelta:
        return timedelta(days=self.validity_days)

    @property
    def ca_validity(self) -> timedelta:
        return timedelta(days=self.ca_validity_days)

    @property
    def renew_before(self) -> timedelta:
        return timedelta(days=self.renew_before_days)

    def problems(self) -> list[tuple[str, str]]:
        """(property, reason) for every input the PKI cannot be built from."""
        found: list[tuple[str, str]] = []
        if not self.ca_common_name.strip():
            found.append(("ca_common_name", "must not be empty"))
        if len(set(self.node_ids)) != len(self.node_ids):
            found.append(("node_ids", "node ids must be unique"))
        for node in self.node_ids:
            try:
                validate_node_id(node)
            except CertificateError as exc:
                found.append(("node_ids", exc.reason))
        if not self.server_dns_names and not self.server_ip_addresses:
            found.append(("server_dns_names", "the server certificate needs at least one name"))
        for name in (*self.server_dns_names, *self.server_ip_addresses):
            try:
                parse_san(name)
            except CertificateError as exc:
                found.append(("server_dns_names", exc.reason))
        if self.validity_days <= 0:
            found.append(("validity_days", "must be positive"))
        if not 0 < self.renew_before_days < self.validity_days:
            found.append(("renew_before_days", "must be positive and shorter than the validity"))
        if self.ca_validity_days <= self.validity_days + self.renew_before_days:
            found.append(("ca_validity_days", "the CA must outlive validity + renewal window"))
        return found


@dataclass
class Revoked:
    serial: int
    holder: str
    revoked_at: datetime
    not_after: datetime

    def to_props(self) -> dict[str, str]:
        return {
            "serial": str(self.serial),  # 159-bit serials do not fit a JSON number
            "holder": self.holder,
            "revoked_at": self.revoked_at.isoformat(),
            "not_after": self.not_after.isoformat(),
        }

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> Revoked:
        return cls(
            serial=int(props["serial"]),
            holder=str(props["holder"]),
            revoked_at=datetime.fromisoformat(str(props["revoked_at"])),
            not_after=datetime.fromisoformat(str(props["not_after"])),
        )


@dataclass
class Material:
    """The PKI in memory: parsed certificates and keys, the revocation list."""

    ca: Issued
    server: Issued
    operator: Issued
    nodes: dict[str, Issued]
    crl: x509.CertificateRevocationList
    revoked: list[Revoked] = field(default_factory=list)

    # ------------------------------------------------------------------ (de)serialise
    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> Material:
        def issued(cert: str, key: str) -> Issued:
            return Issued(cert=load_cert_pem(cert.encode()), key=load_key_pem(key.encode()))

        node_certs: Mapping[str, str] = props["node_certs"]
        node_keys: Mapping[str, str] = props["node_keys"]
        return cls(
            ca=issued(props["ca_cert"], props["ca_key"]),
            server=issued(props["server_cert"], props["server_key"]),
            operator=issued(props["operator_cert"], props["operator_key"]),
            nodes={node: issued(node_certs[node], node_keys[node]) for node in node_certs},
            crl=load_crl_pem(str(props["crl"]).encode()),
            revoked=[Revoked.from_props(r) for r in props.get("revoked") or []],
        )

    def to_props(self) -> dict[str, Any]:
        expiries = self.expiries()
        return {
            "ca_cert": _pem(cert_to_pem(self.ca.cert)),
            "ca_key": _pem(key_to_pem(self.ca.key)),
            "server_cert": _pem(cert_to_pem(self.server.cert)),
            "server_key": _pem(key_to_pem(self.server.key)),
            "operator_cert": _pem(cert_to_pem(self.operator.cert)),
            "operator_key": _pem(key_to_pem(self.operator.key)),
            "node_certs": {n: _pem(cert_to_pem(i.cert)) for n, i in sorted(self.nodes.items())},
            "node_keys": {n: _pem(key_to_pem(i.key)) for n, i in sorted(self.nodes.items())},
            "crl": _pem(crl_to_pem(self.crl)),
            "revoked": [r.to_props() for r in self.revoked],
            "expiries": {holder: moment.isoformat() for holder, moment in expiries.items()},
            "earliest_expiry": min(expiries.values()).isoformat(),
        }

    def expiries(self) -> dict[str, datetime]:
        found = {
            CA: self.ca.cert.not_valid_after_utc,
            SERVER: self.server.cert.not_valid_after_utc,
            OPERATOR: self.operator.cert.not_valid_after_utc,
        }
        found.update({n: i.cert.not_valid_after_utc for n, i in self.nodes.items()})
        return found

    def leaves(self) -> dict[str, Issued]:
        return {SERVER: self.server, OPERATOR: self.operator, **self.nodes}

    def set_leaf(self, holder: str, issued: Issued) -> None:
        if holder == SERVER:
            self.server = issued
        elif holder == OPERATOR:
            self.operator = issued
        else:
            self.nodes[holder] = issued


def _pem(data: bytes) -> str:
    return data.decode("ascii")


# ------------------------------------------------------------------ the operations
def issue_all(spec: PkiSpec, now: datetime) -> Material:
    """A fresh PKI: new CA, server, operator and node certificates, an empty CRL."""
    ca = create_ca(spec.ca_common_name, validity=spec.ca_validity, now=now)
    return Material(
        ca=ca,
        server=_issue_server(ca, spec, now),
        operator=issue_client(ca, OPERATOR, validity=spec.validity, now=now),
        nodes={n: issue_client(ca, n, validity=spec.validity, now=now) for n in spec.node_ids},
        crl=build_crl(ca, [], now=now, next_update=spec.validity),
    )


def _issue_server(ca: Issued, spec: PkiSpec, now: datetime) -> Issued:
    return issue_server(
        ca,
        dns_names=list(spec.server_dns_names),
        ip_addresses=list(spec.server_ip_addresses),
        validity=spec.validity,
        now=now,
    )


def renew_due(material: Material, spec: PkiSpec, now: datetime) -> bool:
    """Re-issue what is inside the renewal window; True when anything changed."""
    if needs_renewal(material.ca.cert, now, spec.validity + spec.renew_before):
        fresh = issue_all(spec, now)  # a new CA invalidates every certificate it signed
        material.ca, material.server, material.operator = fresh.ca, fresh.server, fresh.operator
        material.nodes, material.crl, material.revoked = fresh.nodes, fresh.crl, []
        return True
    changed = False
    for holder, issued in material.leaves().items():
        if needs_renewal(issued.cert, now, spec.renew_before):
            material.set_leaf(
                holder, reissue(material.ca, issued.cert, validity=spec.validity, now=now)
            )
            changed = True
    if crl_needs_renewal(material.crl, now, spec.renew_before):
        _sign_crl(material, spec, now)
        changed = True
    return changed


def apply_spec(material: Material, old: PkiSpec, new: PkiSpec, now: datetime) -> None:
    """Bring the material from ``old`` to ``new``: revoke removed nodes, issue added ones,
    re-issue the server certificate for new names, then renew whatever is due."""
    crl_changed = False
    for node in sorted(set(material.nodes) - set(new.node_ids)):
        cert = material.nodes.pop(node).cert
        material.revoked.append(Revoked(cert.serial_number, node, now, cert.not_valid_after_utc))
        crl_changed = True
    for node in new.node_ids:
        if node not in material.nodes:
            material.nodes[node] = issue_client(material.ca, node, validity=new.validity, now=now)
    names = (old.server_dns_names, old.server_ip_addresses)
    if names != (new.server_dns_names, new.server_ip_addresses):
        material.server = _issue_server(material.ca, new, now)
    if crl_changed:
        _sign_crl(material, new, now)
    renew_due(material, new, now)


def _sign_crl(material: Material, spec: PkiSpec, now: datetime) -> None:
    # A certificate past its own expiry can no longer be used; it leaves the CRL.
    material.revoked = [r for r in material.revoked if r.not_after > now]
    material.crl = build_crl(
        material.ca,
        [r.serial for r in material.revoked],
        revoked_at={r.serial: r.revoked_at for r in material.revoked},
        now=now,
        next_update=spec.validity,
    )


# ------------------------------------------------------------------ the provider
class PkiProvider(ResourceProvider):
    """CRUD of the PKI for :class:`infra.components.pki.PkiMaterial`."""

    def __init__(self, clock: Clock = utc_now) -> None:
        super().__init__()
        self._clock = clock

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        if any(_is_unknown(news.get(key)) for key in SPEC_KEYS):
            return CheckResult(news, [])
        try:
            spec = PkiSpec.from_props(news)
        except (KeyError, TypeError, ValueError) as exc:
            return CheckResult(news, [CheckFailure("", f"malformed PKI inputs: {exc}")])
        return CheckResult(news, [CheckFailure(p, r) for p, r in spec.problems()])

    def create(self, props: dict[str, Any]) -> CreateResult:
        spec = PkiSpec.from_props(props)
        material = issue_all(spec, self._clock())
        return CreateResult(_resource_id(material), {**spec.to_props(), **material.to_props()})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        spec = PkiSpec.from_props(props)
        material = Material.from_props(props)
        renew_due(material, spec, self._clock())
        return ReadResult(id_, {**spec.to_props(), **material.to_props()})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        if any(_is_unknown(news.get(key)) for key in SPEC_KEYS):
            return DiffResult(changes=True)
        old, new = PkiSpec.from_props(olds), PkiSpec.from_props(news)
        replaces = ["ca_common_name"] if old.ca_common_name != new.ca_common_name else []
        return DiffResult(changes=old != new, replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        old, new = PkiSpec.from_props(olds), PkiSpec.from_props(news)
        material = Material.from_props(olds)
        apply_spec(material, old, new, self._clock())
        return UpdateResult({**new.to_props(), **material.to_props()})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """The material lives only in Pulumi state; deleting the resource forgets it."""


def _resource_id(material: Material) -> str:
    return f"pki-{material.ca.cert.serial_number:x}"


def _is_unknown(value: Any) -> bool:
    if value == UNKNOWN:
        return True
    if isinstance(value, list | tuple):
        return any(_is_unknown(v) for v in value)
    return False
