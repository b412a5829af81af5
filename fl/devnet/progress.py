"""What the devnet's run has done so far, from the aggregator's metrics store and run.json."""

from __future__ import annotations

import sqlite3
from typing import Any

from fl.devnet.layout import Layout
from fl.launch.run_info import read_run_info
from fl.metrics_store import MetricsStore, RoundRow

__all__ = ["completed_rounds", "round_line", "run_info", "run_line"]


def completed_rounds(layout: Layout) -> list[RoundRow]:
    """Rounds recorded in the metrics store (none before the first round ends)."""
    try:
        return MetricsStore(layout.metrics_store).rounds()
    except (FileNotFoundError, sqlite3.OperationalError):
        return []


def round_line(row: RoundRow, planned: int | None = None) -> str:
    of = f"/{planned}" if planned else ""
    text = (
        f"round {row.round}{of}: accuracy {row.accuracy:.2f}%, loss {row.loss:.4f}, "
        f"{row.participants} participant(s)"
    )
    extras = [
        f"{n} {what}"
        for n, what in (
            (row.rejected, "rejected"),
            (row.flagged, "flagged"),
            (row.exhausted, "out of ε budget"),
        )
        if n
    ]
    if extras:
        text += f" ({', '.join(extras)})"
    return text + f", max ε {row.max_epsilon:.2f}, {row.duration_s:.1f} s"


def run_info(layout: Layout) -> dict[str, Any] | None:
    return read_run_info(layout.aggregator)


def run_line(info: dict[str, Any] | None) -> str:
    if info is None:
        return "run: not submitted yet"
    if info.get("run_id") is None:
        return f"run: {info.get('status', 'unknown')} (nothing left to submit)"
    first = int(info.get("start_round", 0)) + 1
    return (
        f"run {info['run_id']}: {info.get('status', 'unknown')} "
        f"(rounds {first}..{info.get('rounds', '?')})"
    )
