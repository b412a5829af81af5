"""Prometheus alert rules for the testnet.

Each alert keeps the *signals* it compares apart from its threshold, so a test against a
healthy system can check that every signal returns data (``queries.all_expressions``) while
``promtool test rules`` checks when each alert fires.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from dashboards import exprs as e

GROUP = "sovereign-map"


@dataclass(frozen=True)
class Thresholds:
    accuracy_drop_points: float = 5.0  # below the best of the last 30 minutes
    stall_seconds: int = 600  # without a new round
    first_round_wait: str = "15m"  # from start-up until round 1 must have completed
    participation_ratio: float = 0.6  # accepted updates / configured (or discovered) nodes
    byzantine_share: float = 0.3  # rejected + zero-weight updates / updates received
    epsilon_budget_fraction: float = 0.9
    certificate_days: float = 14.0


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    signals: tuple[str, ...]
    duration: str
    severity: Literal["warning", "critical"]
    area: Literal["training", "privacy", "byzantine", "operations"]
    summary: str
    description: str

    def rule(self) -> dict[str, Any]:
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": self.duration,
            "labels": {"severity": self.severity, "area": self.area},
            "annotations": {"summary": self.summary, "description": self.description},
        }


def alerts(t: Thresholds | None = None) -> list[Alert]:
    t = t or Thresholds()
    last_round, planned = f"max({e.ROUND})", f"max({e.ROUNDS_PLANNED})"
    exhausted = f"max({e.EXHAUSTED_NODES})"
    suspected = f"max({e.SUSPECTED_SHARE})"
    return [
        Alert(
            "SovereignMapAccuracyDegraded",
            f"{e.ACCURACY_DROP} > {t.accuracy_drop_points}",
            (e.ACCURACY_DROP,),
            "2m",
            "warning",
            "training",
            "Global model accuracy dropped",
            f'Accuracy is {{{{ $value | printf "%.1f" }}}} points below its best of the '
            f"last 30 minutes (threshold {t.accuracy_drop_points}); look for attackers the "
            f"rule let through or a poisoned checkpoint.",
        ),
        Alert(
            "SovereignMapNoRoundProgress",
            f"({e.SECONDS_SINCE_LAST_ROUND} > {t.stall_seconds}) "
            f"unless on() ({last_round} >= {planned})",
            (e.SECONDS_SINCE_LAST_ROUND, last_round, planned),
            "1m",
            "critical",
            "training",
            "No FL round completed recently",
            "No round completed for {{ $value | humanizeDuration }} and the configured "
            "rounds are not done; check that MIN_FIT_CLIENTS <= connected nodes and the "
            "aggregator's log.",
        ),
        Alert(
            "SovereignMapNoFirstRound",
            f"{last_round} == 0",
            (last_round,),
            t.first_round_wait,
            "warning",
            "training",
            "Round 1 has not completed",
            f"The metrics API has been up for {t.first_round_wait} with no completed "
            f"round; are enough nodes connected (MIN_FIT_CLIENTS)?",
        ),
        Alert(
            "SovereignMapParticipationLow",
            f"{e.PARTICIPATION} < {t.participation_ratio}",
            (e.PARTICIPATION,),
            "5m",
            "warning",
            "training",
            "Few nodes participate",
            "Only {{ $value | humanizePercentage }} of the nodes had an update accepted in "
            f"the last round (threshold {t.participation_ratio:.0%}).",
        ),
        Alert(
            "SovereignMapByzantineShareHigh",
            f"{suspected} > {t.byzantine_share}",
            (suspected,),
            "1m",
            "critical",
            "byzantine",
            "Many updates were rejected or given zero weight",
            "{{ $value | humanizePercentage }} of last round's updates were malformed or "
            "ignored by the robust rule; close to the share the rule can tolerate.",
        ),
        Alert(
            "SovereignMapPrivacyBudgetNearlySpent",
            f"({e.EPSILON_BUDGET_USED} > {t.epsilon_budget_fraction}) or ({exhausted} > 0)",
            (e.EPSILON_BUDGET_USED, exhausted),
            "0m",
            "warning",
            "privacy",
            "Differential-privacy budget nearly spent",
            f"The largest ε is above {t.epsilon_budget_fraction:.0%} of the budget or nodes "
            f"stopped because their budget is spent (value {{{{ $value }}}}).",
        ),
        Alert(
            "SovereignMapCertificateExpiring",
            f"{e.CERT_EXPIRY_DAYS} < {t.certificate_days}",
            (e.CERT_EXPIRY_DAYS,),
            "0m",
            "warning",
            "operations",
            "Certificate {{ $labels.subject }} expires soon",
            '{{ $labels.file }} expires in {{ $value | printf "%.1f" }} days; run '
            "`pulumi refresh` and `pulumi up` to rotate it.",
        ),
        Alert(
            "SovereignMapTargetDown",
            f"{e.TARGETS_DOWN} == 0",
            (e.TARGETS_DOWN,),
            "2m",
            "critical",
            "operations",
            "{{ $labels.job }} target down",
            "Prometheus cannot scrape {{ $labels.instance }} ({{ $labels.job }}).",
        ),
        Alert(
            "SovereignMapMetricsStoreUnreadable",
            f"{e.STORE_UP} == 0",
            (e.STORE_UP,),
            "2m",
            "critical",
            "operations",
            "The metrics store cannot be read",
            "The metrics API at {{ $labels.instance }} cannot read the aggregator's "
            "metrics store; see its /health for the reason.",
        ),
    ]


def alert_rules(thresholds: Thresholds | None = None) -> dict[str, Any]:
    """The Prometheus rule file (``groups:``) with every alert."""
    return {"groups": [{"name": GROUP, "rules": [a.rule() for a in alerts(thresholds)]}]}
