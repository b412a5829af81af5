"""The aggregator's Message-API strategy: validate, weight by stake, aggregate robustly.

``SovereignStrategy`` extends Flower's ``FedAvg`` (sampling, message construction) and
replaces its aggregation: every reply is checked (shape, NaN/Inf, delta-norm bound,
identity), malformed ones are rejected and counted, and the rest are combined by a rule
from :data:`fl.aggregation.RULES` with weights = stake × examples.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg

from fl.aggregation import RULES
from fl.records import from_numpy, to_numpy
from fl.settings import RunSettings, node_name
from fl.task import flatten, unflatten


@dataclass
class NodeOutcome:
    node: str
    status: str  # accepted | flagged | rejected:<reason> | budget-exhausted | error
    epsilon: float = 0.0
    stake: float = 0.0
    examples: int = 0
    weight: float = 0.0  # share of the aggregate (0..1)
    train_loss: float = float("nan")


@dataclass
class RoundReport:
    """What the aggregator saw in one round, for the metrics store and the CLI."""

    round: int
    started: float
    nodes: list[NodeOutcome] = field(default_factory=list)
    aggregation_s: float = 0.0

    def count(self, prefix: str) -> int:
        return sum(1 for n in self.nodes if n.status.startswith(prefix))

    @property
    def participants(self) -> int:
        return self.count("accepted") + self.count("flagged")

    @property
    def max_epsilon(self) -> float:
        return max((n.epsilon for n in self.nodes), default=0.0)


class SovereignStrategy(FedAvg):
    """Stake-weighted, Byzantine-robust aggregation over Flower's Message API."""

    def __init__(
        self,
        settings: RunSettings,
        *,
        root_update: Callable[[OrderedDict[str, np.ndarray]], np.ndarray] | None = None,
        round_offset: int = 0,
    ) -> None:
        min_nodes = settings.min_train_nodes or settings.num_nodes
        super().__init__(
            fraction_train=1.0,
            fraction_evaluate=0.0,  # evaluation is server-side
            min_train_nodes=min_nodes,
            min_available_nodes=min_nodes,
        )
        self.settings = settings
        self.rule = RULES[settings.rule]
        if self.rule.reference_kind == "root-update" and root_update is None:
            raise ValueError(f"rule {settings.rule!r} needs the server's root-set update")
        self.root_update = root_update
        self.round_offset = round_offset
        self.stakes = settings.stake_table()
        self.previous_update: np.ndarray | None = None
        self.reports: dict[int, RoundReport] = {}
        self._global: OrderedDict[str, np.ndarray] | None = None

    def summary(self) -> None:
        super().summary()

    # ------------------------------------------------------------------ rounds
    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        absolute = server_round + self.round_offset
        self._global = to_numpy(arrays)
        self.reports[absolute] = RoundReport(round=absolute, started=time.time())
        return super().configure_train(absolute, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        absolute = server_round + self.round_offset
        report = self.reports.setdefault(absolute, RoundReport(absolute, time.time()))
        if self._global is None:
            raise RuntimeError("aggregate_train called before configure_train")
        global_weights = self._global
        global_flat = flatten(global_weights)

        deltas: list[np.ndarray] = []
        weights: list[float] = []
        accepted: list[NodeOutcome] = []
        seen: set[int] = set()
        for msg in sorted(replies, key=_reply_order):
            outcome, delta = self._check(msg, global_weights, global_flat, seen)
            outcome.node = _unique_label(outcome.node, {n.node for n in report.nodes})
            report.nodes.append(outcome)
            if delta is not None:
                deltas.append(delta)
                weights.append(outcome.stake * outcome.examples)
                accepted.append(outcome)

        if not deltas or sum(weights) <= 0:
            return None, self._metrics(report)

        start = time.perf_counter()
        kwargs = {}
        if self.rule.reference_kind == "root-update":
            assert self.root_update is not None
            kwargs["reference"] = self.root_update(global_weights)
        elif self.rule.reference_kind == "previous-aggregate":
            kwargs["reference"] = (
                self.previous_update
                if self.previous_update is not None
                else np.zeros_like(global_flat)
            )
        result = self.rule(np.stack(deltas), np.asarray(weights, dtype=np.float64), **kwargs)
        report.aggregation_s = time.perf_counter() - start

        for outcome, share in zip(accepted, result.effective_weights, strict=True):
            outcome.weight = float(share)
            if share <= 0.0:
                outcome.status = "flagged"
        update = np.asarray(result.update, dtype=np.float32)
        self.previous_update = update
        new_weights = unflatten(global_flat + update, global_weights)
        return from_numpy(new_weights), self._metrics(report)

    # ------------------------------------------------------------------ checks
    def _check(
        self,
        msg: Message,
        global_weights: OrderedDict[str, np.ndarray],
        global_flat: np.ndarray,
        seen: set[int],
    ) -> tuple[NodeOutcome, np.ndarray | None]:
        src = f"flower-node-{msg.metadata.src_node_id}"
        if msg.metadata.src_node_id == SUPERLINK_NODE_ID:
            # the SuperLink answers for a node it sent to but that never replied (gone
            # offline, e.g. the node's previous process after a restart): no identity
            src = "unreachable"
        if msg.has_error():
            return NodeOutcome(src, f"error:{msg.error.reason[:80]}"), None
        content = msg.content
        metrics = content.metric_records.get("metrics")
        if metrics is None or "partition-id" not in metrics:
            return NodeOutcome(src, "rejected:no-identity"), None
        pid = metrics["partition-id"]
        if not isinstance(pid, int) or not 0 <= pid < self.settings.num_nodes:
            return NodeOutcome(src, "rejected:bad-identity"), None
        node = node_name(pid)
        outcome = NodeOutcome(
            node=node,
            status="accepted",
            stake=self.stakes.get(node, 1.0),
            epsilon=_finite(metrics.get("epsilon", 0.0)),
            examples=int(_finite(metrics.get("num-examples", 0))),
            train_loss=_finite(metrics.get("train-loss", float("nan")), float("nan")),
        )
        if pid in seen:
            outcome.status = "rejected:duplicate-identity"
            return outcome, None
        seen.add(pid)
        if int(metrics.get("budget-exhausted", 0)):
            outcome.status = "budget-exhausted"
            return outcome, None
        if outcome.examples <= 0:
            outcome.status = "rejected:no-examples"
            return outcome, None
        arrays = content.array_records.get("arrays")
        if arrays is None:
            outcome.status = "rejected:no-weights"
            return outcome, None
        try:
            received = to_numpy(arrays)
        except Exception:
            outcome.status = "rejected:undecodable"
            return outcome, None
        if list(received) != list(global_weights) or any(
            received[k].shape != global_weights[k].shape for k in global_weights
        ):
            outcome.status = "rejected:shape"
            return outcome, None
        flat = flatten(received)
        if not np.all(np.isfinite(flat)):
            outcome.status = "rejected:non-finite"
            return outcome, None
        delta = flat - global_flat
        if float(np.linalg.norm(delta)) > self.settings.max_update_norm:
            outcome.status = "rejected:norm"
            return outcome, None
        return outcome, delta

    def _metrics(self, report: RoundReport) -> MetricRecord:
        losses = [n.train_loss for n in report.nodes if n.status == "accepted"]
        return MetricRecord(
            {
                "participants": report.participants,
                "rejected": report.count("rejected"),
                "flagged": report.count("flagged"),
                "exhausted": report.count("budget-exhausted"),
                "max-epsilon": report.max_epsilon,
                "train-loss": float(np.mean(losses)) if losses else 0.0,
                "aggregation-time": report.aggregation_s,
            }
        )


def _unique_label(label: str, taken: set[str]) -> str:
    """``label``, or ``label#2``, ``label#3``, … if the round already has it (a duplicate
    identity, or several unreachable nodes): one row per outcome in the metrics store."""
    if label not in taken:
        return label
    n = 2
    while f"{label}#{n}" in taken:
        n += 1
    return f"{label}#{n}"


def _reply_order(msg: Message) -> tuple[int, int]:
    if not msg.has_error():
        metrics = msg.content.metric_records.get("metrics")
        if metrics is not None and isinstance(metrics.get("partition-id"), int):
            return (0, int(metrics["partition-id"]))
    return (1, int(msg.metadata.src_node_id))


def _finite(value: object, default: float = 0.0) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return number if np.isfinite(number) else default
