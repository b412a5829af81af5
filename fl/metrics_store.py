"""Per-round metrics store: an embedded SQLite database on the aggregator's data directory.

One writer (the ServerApp) appends a row per round and a row per node per round; any
number of readers (the metrics API, ``devnet status``) read concurrently. WAL mode gives
readers a consistent snapshot while the writer commits.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS rounds (
    round        INTEGER PRIMARY KEY,
    timestamp    REAL    NOT NULL,
    accuracy     REAL    NOT NULL,
    loss         REAL,                -- NULL when the model's loss is not finite
    duration_s   REAL    NOT NULL,
    aggregation_s REAL   NOT NULL,
    participants INTEGER NOT NULL,
    rejected     INTEGER NOT NULL,
    flagged      INTEGER NOT NULL,
    exhausted    INTEGER NOT NULL,
    max_epsilon  REAL    NOT NULL,
    rule         TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS node_rounds (
    round     INTEGER NOT NULL,
    node      TEXT    NOT NULL,
    epsilon   REAL    NOT NULL,
    weight    REAL    NOT NULL,
    stake     REAL    NOT NULL,
    examples  INTEGER NOT NULL,
    status    TEXT    NOT NULL,
    PRIMARY KEY (round, node)
);
"""


@dataclass(frozen=True)
class NodeRoundRow:
    """What one node contributed to one round."""

    node: str
    epsilon: float
    weight: float  # share of the aggregate this node's update received (0..1)
    stake: float
    examples: int
    status: str  # accepted | rejected:<reason> | flagged | budget-exhausted


@dataclass(frozen=True)
class RoundRow:
    """One completed round as the aggregator measured it."""

    round: int
    accuracy: float  # percent, global model on the MNIST test set
    loss: float  # NaN when not finite (a diverged model); stored as NULL
    duration_s: float
    aggregation_s: float
    participants: int  # updates accepted into the aggregate
    rejected: int  # malformed updates
    flagged: int  # accepted updates the rule gave zero weight (suspected Byzantine)
    exhausted: int  # nodes that stopped because their ε budget is spent
    max_epsilon: float
    rule: str
    timestamp: float = field(default_factory=time.time)
    nodes: Sequence[NodeRoundRow] = ()


class MetricsStore:
    """Append-only store of :class:`RoundRow` values in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @contextmanager
    def _connect(self, *, write: bool) -> Iterator[sqlite3.Connection]:
        if write:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30)
        else:
            if not self.path.exists():
                raise FileNotFoundError(f"metrics store {self.path} does not exist yet")
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
        try:
            if write:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(SCHEMA)
            yield conn
        finally:
            conn.close()

    def initialise(self) -> None:
        """Create the file and schema (idempotent)."""
        with self._connect(write=True):
            pass

    def append(self, row: RoundRow) -> None:
        """Record a round; re-recording a round (after a restart) replaces it."""
        values = asdict(row)
        nodes = values.pop("nodes")
        if not math.isfinite(values["loss"]):
            values["loss"] = None
        with self._connect(write=True) as conn, conn:
            conn.execute(
                "INSERT OR REPLACE INTO rounds (round, timestamp, accuracy, loss, duration_s,"
                " aggregation_s, participants, rejected, flagged, exhausted, max_epsilon, rule)"
                " VALUES (:round, :timestamp, :accuracy, :loss, :duration_s, :aggregation_s,"
                " :participants, :rejected, :flagged, :exhausted, :max_epsilon, :rule)",
                values,
            )
            conn.execute("DELETE FROM node_rounds WHERE round = ?", (row.round,))
            conn.executemany(
                "INSERT INTO node_rounds (round, node, epsilon, weight, stake, examples, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        row.round,
                        n["node"],
                        n["epsilon"],
                        n["weight"],
                        n["stake"],
                        n["examples"],
                        n["status"],
                    )
                    for n in nodes
                ],
            )

    def rounds(self) -> list[RoundRow]:
        """All recorded rounds in order, without per-node rows."""
        with self._connect(write=False) as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute("SELECT * FROM rounds ORDER BY round").fetchall()
        return [RoundRow(**{**dict(r), "loss": _nan_if_none(dict(r).get("loss"))}) for r in rows]

    def latest_nodes(self) -> list[NodeRoundRow]:
        """Per-node rows of the most recent round."""
        with self._connect(write=False) as conn:
            rows = conn.execute(
                "SELECT node, epsilon, weight, stake, examples, status FROM node_rounds"
                " WHERE round = (SELECT MAX(round) FROM rounds) ORDER BY node"
            ).fetchall()
        return [NodeRoundRow(*r) for r in rows]


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else float(value)
