"""The devnet's certificates: made once, then reused (rotations and revocations stick)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from certs.authority import Authority, init_pki, open_pki
from certs.layout import node_id_for
from fl.devnet.layout import Layout

__all__ = ["ensure_pki"]

VALIDITY = timedelta(days=365)
RENEW_BEFORE = timedelta(days=30)
CA_VALIDITY = timedelta(days=3650)


def ensure_pki(layout: Layout, nodes: int) -> tuple[Authority, list[str]]:
    """Open the devnet's PKI (or create it); issue certificates for nodes that have none.

    Returns the authority and what was done, for the user. Certificates already there
    are kept as they are — including rotated or revoked ones (`certs rotate/revoke`).
    """
    now = datetime.now(UTC)
    if not layout.pki.joinpath("ca", "ca.crt").exists():
        authority = init_pki(
            layout.pki,
            nodes=nodes,
            now=now,
            validity=VALIDITY,
            renew_before=RENEW_BEFORE,
            ca_validity=CA_VALIDITY,
        ).authority
        return authority, [f"created a CA and certificates for {nodes} node(s) in {layout.pki}"]
    authority = open_pki(layout.pki)
    holders = authority.state.holders
    missing = [node_id_for(i) for i in range(nodes) if node_id_for(i) not in holders]
    for node in missing:
        authority.issue(node, now)
    if missing:
        authority.publish_crl(now)
        return authority, [f"issued certificates for {', '.join(missing)}"]
    return authority, []
