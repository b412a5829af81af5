"""Alertmanager configuration: one default receiver, an optional webhook for every alert."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from fl.contract import PROM_JOB_METRICS_API


def alertmanager_config(webhook_url: str | None = None) -> dict[str, Any]:
    """Route every alert to ``webhook`` when a URL is given (Slack/PagerDuty bridges, …),
    else to ``default`` (visible in the Alertmanager UI and API, sent nowhere)."""
    receivers: list[dict[str, Any]] = [{"name": "default"}]
    receiver = "default"
    if webhook_url is not None:
        parsed = urlparse(webhook_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"webhook URL must be an http(s) URL, got {webhook_url!r}")
        receivers.append(
            {"name": "webhook", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}
        )
        receiver = "webhook"
    return {
        "route": {
            "receiver": receiver,
            "group_by": ["alertname", "severity"],
            "group_wait": "30s",
            "group_interval": "5m",
            "repeat_interval": "4h",
        },
        "receivers": receivers,
        "inhibit_rules": [
            {  # without the metrics API or its store, training alerts only repeat the cause
                "source_matchers": [
                    'alertname=~"SovereignMapMetricsStoreUnreadable|SovereignMapTargetDown"',
                    f'job="{PROM_JOB_METRICS_API}"',
                ],
                "target_matchers": ['area=~"training|privacy|byzantine"'],
            },
        ],
    }
