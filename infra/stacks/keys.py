"""Names of the stack configuration: the namespace and the top-level keys."""

from __future__ import annotations

from typing import Final

NAMESPACE: Final = "sovereign-map"  # the Pulumi project name; config keys are `sovereign-map:<key>`

# Top-level keys that hold secrets: never part of the validated settings model, read with
# `pulumi.Config.get_secret` so they stay secret in state and logs.
SECRET_GRAFANA_ADMIN_PASSWORD: Final = "grafanaAdminPassword"
SECRET_REGISTRY_PASSWORD: Final = "registryPassword"
SECRET_ALERT_WEBHOOK_URL: Final = "alertWebhookUrl"
SECRET_KEYS: Final = (
    SECRET_GRAFANA_ADMIN_PASSWORD,
    SECRET_REGISTRY_PASSWORD,
    SECRET_ALERT_WEBHOOK_URL,
)
