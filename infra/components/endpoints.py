"""What the workload components hand back, whichever form built them."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi


@dataclass(frozen=True)
class AggregatorEndpoints:
    address: pulumi.Output[str]  # host:port of the SuperLink (mTLS)
    metrics_api_url: pulumi.Output[str]


@dataclass(frozen=True)
class MonitoringEndpoints:
    prometheus_url: pulumi.Output[str]
    alertmanager_url: pulumi.Output[str]
    grafana_url: pulumi.Output[str]
