"""A Prometheus collector that reads the metrics store on every scrape.

Nothing is kept in process-global gauges: each scrape is one read of the store, so several
metrics API replicas, or a restarted one, always agree with the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from fl.contract import (
    METRIC_ACCEPTED_UPDATES,
    METRIC_ACCURACY,
    METRIC_ACTIVE_NODES,
    METRIC_AGGREGATION_DURATION,
    METRIC_CERT_EXPIRY_DAYS,
    METRIC_CONFIGURED_BYZANTINE_SHARE,
    METRIC_EPSILON_BUDGET,
    METRIC_EXHAUSTED_NODES,
    METRIC_FLAGGED_UPDATES,
    METRIC_LAST_ROUND_TIMESTAMP,
    METRIC_LOSS,
    METRIC_MAX_EPSILON,
    METRIC_NODE_CONFIGURED_ATTACK,
    METRIC_NODE_EPSILON,
    METRIC_NODE_WEIGHT,
    METRIC_NODES_EXPECTED,
    METRIC_REJECTED_UPDATES,
    METRIC_ROUND,
    METRIC_ROUND_DURATION,
    METRIC_ROUNDS_PLANNED,
    METRIC_ROUNDS_TOTAL,
    METRIC_STORE_UP,
    METRIC_SUSPECTED_BYZANTINE_SHARE,
    PROM_NODE_LABEL,
)
from fl.metrics_api.certs import certificate_expiries
from fl.metrics_api.config import HONEST, RunConfig
from fl.metrics_api.snapshot import Snapshot, SnapshotReader, StoreUnreadableError
from fl.metrics_store import RoundRow

# An FL round takes seconds to minutes (the guide: 30-120 s); aggregation takes ms to s.
ROUND_DURATION_BUCKETS = (
    1.0,
    2.5,
    5.0,
    10.0,
    20.0,
    30.0,
    45.0,
    60.0,
    90.0,
    120.0,
    180.0,
    300.0,
    600.0,
)
AGGREGATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def histogram(name: str, doc: str, values: Sequence[float], bounds: Sequence[float]) -> Metric:
    """A cumulative histogram of ``values`` with the upper bounds ``bounds`` (+Inf added)."""
    buckets = [(floatToGoString(b), float(sum(1 for v in values if v <= b))) for b in bounds]
    buckets.append(("+Inf", float(len(values))))
    return HistogramMetricFamily(name, doc, buckets=buckets, sum_value=float(sum(values)))


def suspected_share(row: RoundRow) -> float:
    """Share of the round's updates that were rejected as malformed or given zero weight."""
    received = row.participants + row.rejected
    return (row.rejected + row.flagged) / received if received else 0.0


class StoreCollector(Collector):
    """Exports every ``METRIC_*`` of ``fl.contract`` from the store, the run config and certs."""

    def __init__(self, reader: SnapshotReader, config: RunConfig, cert_dir: Path | None) -> None:
        self.reader = reader
        self.config = config
        self.cert_dir = cert_dir

    def describe(self) -> Iterable[Metric]:
        return []  # names depend on the store's state; nothing to pre-register

    def collect(self) -> Iterator[Metric]:
        try:
            snapshot: Snapshot | None = self.reader.read()
        except StoreUnreadableError:
            snapshot = None
        yield GaugeMetricFamily(
            METRIC_STORE_UP,
            "1 if the metrics store could be read.",
            value=0.0 if snapshot is None else 1.0,
        )
        yield from self._config_metrics()
        yield from self._certificate_metrics()
        if snapshot is not None:
            yield from self._round_metrics(snapshot)
            yield from self._node_metrics(snapshot)

    def _config_metrics(self) -> Iterator[Metric]:
        cfg = self.config
        for name, doc, value in (
            (METRIC_ROUNDS_PLANNED, "Rounds the run is configured for.", cfg.rounds_planned),
            (METRIC_NODES_EXPECTED, "Nodes the run is configured with.", cfg.nodes_expected),
            (
                METRIC_EPSILON_BUDGET,
                "Per-node differential-privacy epsilon budget.",
                cfg.epsilon_budget,
            ),
        ):
            if value is not None:
                yield GaugeMetricFamily(name, doc, value=float(value))

    def _certificate_metrics(self) -> Iterator[Metric]:
        if self.cert_dir is None:
            return
        expiries = certificate_expiries(self.cert_dir)
        if not expiries:
            return
        gauge = GaugeMetricFamily(
            METRIC_CERT_EXPIRY_DAYS,
            "Days until the certificate expires (negative: expired).",
            labels=["subject", "file"],
        )
        for item in expiries:
            gauge.add_metric([item.subject, item.file], item.days_left)
        yield gauge

    def _round_metrics(self, snapshot: Snapshot) -> Iterator[Metric]:
        rows = snapshot.rounds
        latest = snapshot.latest
        yield GaugeMetricFamily(
            METRIC_ROUND,
            "Last completed round (0 before round 1).",
            value=float(latest.round if latest else 0),
        )
        for name, doc, value in (
            (METRIC_ROUNDS_TOTAL, "Rounds completed.", len(rows)),
            (
                METRIC_ACCEPTED_UPDATES,
                "Updates accepted into an aggregate.",
                sum(r.participants for r in rows),
            ),
            (
                METRIC_REJECTED_UPDATES,
                "Updates rejected as malformed.",
                sum(r.rejected for r in rows),
            ),
            (
                METRIC_FLAGGED_UPDATES,
                "Accepted updates the robust rule gave zero weight.",
                sum(r.flagged for r in rows),
            ),
        ):
            yield CounterMetricFamily(name, doc, value=float(value))
        yield histogram(
            METRIC_ROUND_DURATION,
            "Wall time of a round, from start to checkpoint.",
            [r.duration_s for r in rows],
            ROUND_DURATION_BUCKETS,
        )
        yield histogram(
            METRIC_AGGREGATION_DURATION,
            "Time the aggregator spent aggregating.",
            [r.aggregation_s for r in rows],
            AGGREGATION_BUCKETS,
        )
        if latest is None:
            return
        for name, doc, value in (
            (
                METRIC_ACCURACY,
                "Global model accuracy on the MNIST test set, percent.",
                latest.accuracy,
            ),
            (METRIC_LOSS, "Global model loss on the MNIST test set.", latest.loss),
            (METRIC_ACTIVE_NODES, "Updates accepted in the last round.", latest.participants),
            (
                METRIC_MAX_EPSILON,
                "Largest cumulative epsilon reported by a node.",
                latest.max_epsilon,
            ),
            (
                METRIC_LAST_ROUND_TIMESTAMP,
                "Unix time the last round was recorded.",
                latest.timestamp,
            ),
            (
                METRIC_SUSPECTED_BYZANTINE_SHARE,
                "Share of last round's updates rejected or given zero weight.",
                suspected_share(latest),
            ),
            (
                METRIC_EXHAUSTED_NODES,
                "Nodes whose epsilon budget was spent in the last round.",
                latest.exhausted,
            ),
        ):
            yield GaugeMetricFamily(name, doc, value=float(value))

    def _node_metrics(self, snapshot: Snapshot) -> Iterator[Metric]:
        # a reply that was an error has no node behind it (e.g. "unreachable"): no series
        nodes = [n for n in snapshot.latest_nodes if not n.status.startswith("error")]
        if nodes:
            epsilon = GaugeMetricFamily(
                METRIC_NODE_EPSILON, "Cumulative epsilon of the node.", labels=[PROM_NODE_LABEL]
            )
            weight = GaugeMetricFamily(
                METRIC_NODE_WEIGHT,
                "Share of the last aggregate given to the node (0..1).",
                labels=[PROM_NODE_LABEL],
            )
            for n in nodes:
                epsilon.add_metric([n.node], n.epsilon)
                weight.add_metric([n.node], n.weight)
            yield epsilon
            yield weight
        known = sorted({n.node for n in nodes} | set(self.config.attacks))
        if known:
            attack = GaugeMetricFamily(
                METRIC_NODE_CONFIGURED_ATTACK,
                "1 for each node, labelled with its configured attack.",
                labels=[PROM_NODE_LABEL, "attack"],
            )
            for node in known:
                attack.add_metric([node, self.config.attack_of(node)], 1.0)
            yield attack
        population = self.config.nodes_expected or len(known)
        if population:
            attackers = sum(1 for mode in self.config.attacks.values() if mode != HONEST)
            yield GaugeMetricFamily(
                METRIC_CONFIGURED_BYZANTINE_SHARE,
                "Share of nodes configured to attack (testnets).",
                value=attackers / population,
            )
