"""One read of the metrics store, with "not started yet" told apart from "broken"."""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from fl.metrics_store import MetricsStore, NodeRoundRow, RoundRow


class StoreUnreadableError(RuntimeError):
    """The store exists but cannot be read (corrupt, wrong schema, no permission)."""


@dataclass(frozen=True)
class Snapshot:
    rounds: list[RoundRow]
    latest_nodes: list[NodeRoundRow]

    @property
    def latest(self) -> RoundRow | None:
        return self.rounds[-1] if self.rounds else None


EMPTY = Snapshot(rounds=[], latest_nodes=[])


def read_snapshot(store: MetricsStore) -> Snapshot:
    """All rounds and the last round's nodes.

    A store the aggregator has not created yet, or created without a table yet, is the
    empty state before round 1; anything else that fails is :class:`StoreUnreadableError`.
    """
    try:
        return Snapshot(rounds=store.rounds(), latest_nodes=store.latest_nodes())
    except FileNotFoundError:
        return EMPTY
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return EMPTY
        raise StoreUnreadableError(f"metrics store {store.path}: {exc}") from exc
    except (sqlite3.Error, OSError, TypeError, ValueError) as exc:
        raise StoreUnreadableError(f"metrics store {store.path}: {exc}") from exc


Signature = tuple[tuple[int, int, int] | None, ...]


class SnapshotReader:
    """Reads the store again only when its files changed, or after ``max_age`` seconds.

    Under load most requests then cost a ``stat`` of the database and its WAL file instead of
    a full read; ``max_age`` bounds staleness on file systems with coarse modification times.
    """

    def __init__(self, store: MetricsStore, max_age: float = 1.0) -> None:
        self.store = store
        self.max_age = max_age
        self._lock = threading.Lock()
        self._cached: tuple[Signature, float, Snapshot] | None = None

    def _signature(self) -> Signature:
        files = (self.store.path, Path(f"{self.store.path}-wal"))
        signature: list[tuple[int, int, int] | None] = []
        for path in files:
            try:
                st = path.stat()
            except OSError:
                signature.append(None)
            else:
                signature.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(signature)

    def read(self) -> Snapshot:
        signature = self._signature()  # taken first: a write during the read is seen next time
        now = time.monotonic()
        with self._lock:
            cached = self._cached
        if cached and cached[0] == signature and now - cached[1] < self.max_age:
            return cached[2]
        snapshot = read_snapshot(self.store)
        with self._lock:
            self._cached = (signature, now, snapshot)
        return snapshot
