"""The stack's PKI as a component: the dynamic resource plus per-holder TLS bundles.

The PKI itself is the same on both targets; each workload component delivers the bundles
it needs in its own form (Docker uploads, Kubernetes ``kubernetes.io/tls`` Secrets).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi.dynamic

from fl.contract import TLS_CA_FILE
from infra.components.pki_provider import (
    MATERIAL_KEYS,
    SECRET_OUTPUTS,
    PkiProvider,
    PkiSpec,
)
from infra.stacks.model import StackSettings

CA_COMMON_NAME = "Sovereign Map CA"


@dataclass(frozen=True)
class TlsBundle:
    """``ca.crt``, ``tls.crt``, ``tls.key`` (+ ``ca.crl`` for the server) of one holder."""

    ca_cert: pulumi.Output[str]
    cert: pulumi.Output[str]
    key: pulumi.Output[str]  # secret
    crl: pulumi.Output[str] | None = None


class PkiMaterial(pulumi.dynamic.Resource, module="pki", name="Pki"):
    """The dynamic resource; its outputs are the PEM material (keys secret)."""

    ca_cert: pulumi.Output[str]
    ca_key: pulumi.Output[str]
    server_cert: pulumi.Output[str]
    server_key: pulumi.Output[str]
    operator_cert: pulumi.Output[str]
    operator_key: pulumi.Output[str]
    node_certs: pulumi.Output[dict[str, str]]
    node_keys: pulumi.Output[dict[str, str]]
    crl: pulumi.Output[str]
    revoked: pulumi.Output[list[dict[str, str]]]
    expiries: pulumi.Output[dict[str, str]]
    earliest_expiry: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        spec: PkiSpec,
        opts: pulumi.ResourceOptions | None = None,
        provider: PkiProvider | None = None,
    ) -> None:
        props = {**spec.to_props(), **dict.fromkeys(MATERIAL_KEYS)}
        secret = pulumi.ResourceOptions(additional_secret_outputs=list(SECRET_OUTPUTS))
        super().__init__(
            provider or PkiProvider(), name, props, pulumi.ResourceOptions.merge(opts, secret)
        )


def pki_spec(settings: StackSettings, server_dns_names: list[str]) -> PkiSpec:
    certs = settings.certificates
    dns = list(dict.fromkeys([*server_dns_names, "localhost", *certs.extra_dns_names]))
    ips = list(dict.fromkeys(["127.0.0.1", *certs.extra_ip_addresses]))
    return PkiSpec(
        ca_common_name=CA_COMMON_NAME,
        node_ids=tuple(settings.node_ids),
        server_dns_names=tuple(dns),
        server_ip_addresses=tuple(ips),
        validity_days=certs.validity_days,
        ca_validity_days=certs.ca_validity_days,
        renew_before_days=certs.renew_before_days,
    )


class Pki(pulumi.ComponentResource):
    """CA, server, operator and node certificates of one stack, kept in Pulumi state."""

    ca_certificate: pulumi.Output[str]
    earliest_expiry: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        settings: StackSettings,
        server_dns_names: list[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("sovereign-map:index:Pki", name, None, opts)
        self.spec = pki_spec(settings, server_dns_names)
        self.material = PkiMaterial(
            f"{name}-material", self.spec, pulumi.ResourceOptions(parent=self)
        )
        self.ca_certificate = self.material.ca_cert
        self.earliest_expiry = self.material.earliest_expiry
        self.register_outputs(
            {"caCertificate": self.ca_certificate, "earliestExpiry": self.earliest_expiry}
        )

    @property
    def server(self) -> TlsBundle:
        m = self.material
        return TlsBundle(m.ca_cert, m.server_cert, pulumi.Output.secret(m.server_key), m.crl)

    @property
    def operator(self) -> TlsBundle:
        m = self.material
        return TlsBundle(m.ca_cert, m.operator_cert, pulumi.Output.secret(m.operator_key))

    def node(self, node_id: str) -> TlsBundle:
        m = self.material
        cert = m.node_certs.apply(lambda certs: certs[node_id])
        key = pulumi.Output.secret(m.node_keys.apply(lambda keys: keys[node_id]))
        return TlsBundle(m.ca_cert, cert, key)

    def public_certificates(self) -> dict[str, pulumi.Output[str]]:
        """Every current certificate (no keys), by file name: ``ca.crt``, ``aggregator.crt``,
        ``operator.crt``, ``node-<i>.crt``."""
        m = self.material
        files: dict[str, pulumi.Output[str]] = {
            TLS_CA_FILE: m.ca_cert,
            "aggregator.crt": m.server_cert,
            "operator.crt": m.operator_cert,
        }
        for node in self.spec.node_ids:
            files[f"{node}.crt"] = m.node_certs.apply(lambda certs, node=node: certs[node])
        return files
