"""A node's training metrics for Prometheus, carried from the ClientApp to the exporter.

The ClientApp runs in a different process than ``sovereign-map node`` (Flower's SuperNode
starts a SuperExec, which starts a ClientApp process per run), so the two share a file:

* the ClientApp calls :func:`record_fit` after each fit; it appends one JSON line
  (:class:`FitRecord`) to the *fit log* named by the node-config key ``metrics-file``
  (``O_APPEND`` writes of one short line: concurrent writers never interleave);
* the launcher serves :func:`node_registry` on ``NODE_METRICS_PORT``: on every scrape
  :class:`FitLogCollector` reads the lines added since the last scrape and feeds them into
  ordinary ``prometheus_client`` counters, a histogram and gauges, next to the process
  CPU and memory of the node's whole process tree (``process_cpu_seconds_total``,
  ``process_resident_memory_bytes``; see ``fl.launch.procfs``).

Without a ``metrics-file`` (Flower's simulation) :func:`record_fit` does nothing. A fit
log that cannot be written never fails training: the error is logged once.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from fl.contract import (
    NODE_METRIC_EPSILON,
    NODE_METRIC_EXAMPLES,
    NODE_METRIC_FIT_ROUNDS,
    NODE_METRIC_STAKE,
    NODE_METRIC_TRAIN_DURATION,
    NODE_METRIC_TRAIN_LOSS,
    NODE_METRIC_UPDATE_BYTES,
)
from fl.launch.procfs import ProcessTreeCollector

__all__ = [
    "METRICS_FILE_KEY",
    "TRAIN_DURATION_BUCKETS",
    "FitLogCollector",
    "FitRecord",
    "metrics_file_of",
    "node_registry",
    "read_fit_log",
    "record_fit",
]

log = logging.getLogger("sovereign_map.node_metrics")

METRICS_FILE_KEY = "metrics-file"  # node-config key: path of the node's fit log
TRAIN_DURATION_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_warned: set[str] = set()


@dataclass(frozen=True)
class FitRecord:
    """One training request the node answered."""

    round: int
    examples: int  # examples trained (0 when the ε budget was spent)
    loss: float  # mean local training loss (NaN when it did not train)
    seconds: float  # local training time
    epsilon: float  # the node's cumulative ε after this fit (0 without DP)
    update_bytes: int  # bytes of the weights sent back
    status: str = "fit"  # fit | budget-exhausted
    time: float = 0.0  # unix time; filled in by record_fit

    @classmethod
    def from_json(cls, line: str) -> FitRecord:
        raw = json.loads(line)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


def metrics_file_of(node_config: Mapping[str, Any]) -> str | None:
    """The fit log named in a Flower node config, if any."""
    value = node_config.get(METRICS_FILE_KEY)
    return str(value) if value else None


def record_fit(path: str | os.PathLike[str] | None, record: FitRecord) -> None:
    """Append ``record`` to the fit log at ``path`` (no-op when ``path`` is None)."""
    if not path:
        return
    stamped = record if record.time else FitRecord(**{**asdict(record), "time": time.time()})
    line = (json.dumps(asdict(stamped), allow_nan=True) + "\n").encode()
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
    except OSError as exc:
        if str(path) not in _warned:
            _warned.add(str(path))
            log.warning("cannot write the node's fit log %s: %s", path, exc)


def read_fit_log(path: Path) -> list[FitRecord]:
    """Every complete record in a fit log (for status views and tests)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [FitRecord.from_json(line) for line in text.splitlines() if line.strip()]


class FitLogCollector(Collector):
    """Prometheus collector over a fit log: reads new lines on each scrape."""

    def __init__(self, path: Path, *, stake: float | None = None) -> None:
        self.path = path
        self._offset = 0
        self._lock = threading.Lock()
        self._registry = CollectorRegistry(auto_describe=True)
        r = self._registry
        self.fits = Counter(
            NODE_METRIC_FIT_ROUNDS, "Training requests the node answered.", registry=r
        )
        self.examples = Counter(NODE_METRIC_EXAMPLES, "Examples trained on.", registry=r)
        self.update_bytes = Counter(
            NODE_METRIC_UPDATE_BYTES, "Bytes of model updates sent to the aggregator.", registry=r
        )
        self.duration = Histogram(
            NODE_METRIC_TRAIN_DURATION,
            "Local training time per round.",
            buckets=TRAIN_DURATION_BUCKETS,
            registry=r,
        )
        self.loss = Gauge(
            NODE_METRIC_TRAIN_LOSS, "Mean local training loss of the last fit.", registry=r
        )
        self.epsilon = Gauge(NODE_METRIC_EPSILON, "The node's cumulative DP epsilon.", registry=r)
        self.stake = Gauge(
            NODE_METRIC_STAKE, "The stake this node was configured with.", registry=r
        )
        if stake is not None:
            self.stake.set(stake)

    def refresh(self) -> int:
        """Feed the records appended since the last call; return how many."""
        with self._lock:
            try:
                with self.path.open("rb") as handle:
                    if os.fstat(handle.fileno()).st_size < self._offset:
                        self._offset = 0  # the log was replaced: counters only grow anyway
                    handle.seek(self._offset)
                    data = handle.read()
            except FileNotFoundError:
                return 0
            complete = data[: data.rfind(b"\n") + 1]
            self._offset += len(complete)
            count = 0
            for line in complete.decode(errors="replace").splitlines():
                if not line.strip():
                    continue
                try:
                    self._observe(FitRecord.from_json(line))
                except (ValueError, TypeError) as exc:
                    log.warning("skipping a malformed line of %s: %s", self.path, exc)
                    continue
                count += 1
            return count

    def _observe(self, record: FitRecord) -> None:
        self.fits.inc()
        self.epsilon.set(record.epsilon)
        if record.status != "fit":
            return
        self.examples.inc(max(0, record.examples))
        self.update_bytes.inc(max(0, record.update_bytes))
        self.duration.observe(max(0.0, record.seconds))
        self.loss.set(record.loss)

    def collect(self) -> Iterable[Metric]:
        self.refresh()
        return self._registry.collect()


def node_registry(fit_log: Path, *, stake: float | None = None) -> CollectorRegistry:
    """What a node serves on its metrics port: the CPU and memory of the node's processes
    (this one and the Flower processes it started) and the fit-log metrics."""
    registry = CollectorRegistry()
    registry.register(ProcessTreeCollector())
    registry.register(FitLogCollector(fit_log, stake=stake))
    return registry
