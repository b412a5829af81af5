"""The JSON documents of ``/convergence`` and ``/metrics_summary``, built from a snapshot."""

from __future__ import annotations

import math
from statistics import fmean
from typing import Any

from fl.metrics_api.config import RunConfig
from fl.metrics_api.snapshot import Snapshot
from fl.metrics_store import RoundRow

HISTORY_LENGTH = 10


def finite(value: float) -> float | None:
    """JSON has no NaN/Infinity; a diverged model's loss is reported as null."""
    return value if math.isfinite(value) else None


def run_state(snapshot: Snapshot, config: RunConfig | None = None) -> str:
    """``waiting for round 1``, ``training``, or ``completed`` once the planned rounds are in."""
    latest = snapshot.latest
    if latest is None:
        return "waiting for round 1"
    planned = config.rounds_planned if config else None
    return "completed" if planned and latest.round >= planned else "training"


def convergence(
    snapshot: Snapshot, limit: int | None = None, config: RunConfig | None = None
) -> dict[str, Any]:
    """The accuracy/loss curves in the shape of the original guide's ``curl … | jq`` examples."""
    rows = snapshot.rounds[-limit:] if limit else snapshot.rounds
    latest = snapshot.latest
    return {
        "rounds": [r.round for r in rows],
        "accuracies": [finite(r.accuracy) for r in rows],
        "losses": [finite(r.loss) for r in rows],
        "timestamps": [r.timestamp for r in rows],
        "round_participants": [r.participants for r in rows],
        "current_round": latest.round if latest else 0,
        "current_accuracy": finite(latest.accuracy) if latest else None,
        "current_loss": finite(latest.loss) if latest else None,
        "status": run_state(snapshot, config),
    }


def rounds_per_minute(rows: list[RoundRow]) -> float | None:
    """Completed rounds per minute over the span of ``rows`` (needs two rounds)."""
    if len(rows) < 2:
        return None
    span = rows[-1].timestamp - rows[0].timestamp
    return (len(rows) - 1) * 60.0 / span if span > 0 else None


def summary(snapshot: Snapshot, config: RunConfig) -> dict[str, Any]:
    """Current state, recent history and rates, for a quick look at a running testnet."""
    rows = snapshot.rounds
    latest = snapshot.latest
    recent = rows[-HISTORY_LENGTH:]
    return {
        "current_round": latest.round if latest else 0,
        "rounds_planned": config.rounds_planned,
        "current_accuracy": finite(latest.accuracy) if latest else None,
        "current_loss": finite(latest.loss) if latest else None,
        "rule": latest.rule if latest else None,
        "participants": latest.participants if latest else 0,
        "nodes_expected": config.nodes_expected,
        "rejected_updates_last_round": latest.rejected if latest else 0,
        "rejected_updates_total": sum(r.rejected for r in rows),
        "flagged_updates_last_round": latest.flagged if latest else 0,
        "flagged_updates_total": sum(r.flagged for r in rows),
        "budget_exhausted_nodes": latest.exhausted if latest else 0,
        "max_epsilon": finite(latest.max_epsilon) if latest else None,
        "epsilon_budget": config.epsilon_budget,
        "rounds_per_minute": rounds_per_minute(recent),
        "mean_round_duration_s": fmean(r.duration_s for r in rows) if rows else None,
        "mean_aggregation_s": fmean(r.aggregation_s for r in rows) if rows else None,
        "history": [
            {
                "round": r.round,
                "accuracy": finite(r.accuracy),
                "loss": finite(r.loss),
                "timestamp": r.timestamp,
                "duration_s": r.duration_s,
                "participants": r.participants,
                "rejected": r.rejected,
                "flagged": r.flagged,
            }
            for r in recent
        ],
    }
