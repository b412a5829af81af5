"""Rules that tie several settings together; each failure names the key to change."""

from __future__ import annotations

from infra.stacks.errors import StackConfigError
from infra.stacks.model import StackSettings


def check_consistency(settings: StackSettings) -> None:
    """Raise :class:`StackConfigError` for the first rule the settings break."""
    nodes = settings.nodes.count
    byzantine = settings.byzantine.count
    if byzantine >= nodes:
        raise StackConfigError(
            "byzantine.count",
            f"{byzantine} Byzantine nodes need more than {byzantine} nodes in total "
            f"(nodes.count is {nodes}); at least one node must be honest",
        )
    min_fit = settings.training.min_fit_clients
    if min_fit is not None and min_fit > nodes:
        raise StackConfigError(
            "training.minFitClients",
            f"{min_fit} is more than the {nodes} nodes of this stack (nodes.count); "
            f"no round could ever start",
        )
    unknown = sorted(set(settings.nodes.stakes) - set(settings.node_ids))
    if unknown:
        raise StackConfigError(
            "nodes.stakes",
            f"{', '.join(unknown)} is not a node of this stack "
            f"(node ids are node-0 … node-{nodes - 1})",
        )
    certs = settings.certificates
    if certs.renew_before_days >= certs.validity_days:
        raise StackConfigError(
            "certificates.renewBeforeDays",
            f"the renewal window ({certs.renew_before_days} days) must be shorter than the "
            f"certificate validity (certificates.validityDays = {certs.validity_days}), or "
            f"every refresh would re-issue every certificate",
        )
    if certs.ca_validity_days <= certs.validity_days:
        raise StackConfigError(
            "certificates.caValidityDays",
            f"the CA ({certs.ca_validity_days} days) must outlive the certificates it issues "
            f"(certificates.validityDays = {certs.validity_days})",
        )
    if certs.renew_before_days >= certs.ca_validity_days:
        raise StackConfigError(  # pragma: no cover - implied by the two rules above
            "certificates.renewBeforeDays", "the renewal window must be shorter than the CA's"
        )
    image = settings.image
    if image.push and not settings.build_image:
        raise StackConfigError(
            "image.push", "pushing needs image.build: true (there is nothing to push otherwise)"
        )
    if image.push and "/" not in image.repository:
        raise StackConfigError(
            "image.repository",
            f"{image.repository!r} names no registry; to push, use e.g. "
            f"'ghcr.io/<owner>/sovereign-map'",
        )
