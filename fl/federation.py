"""Server-side pieces shared by the ServerApp and ``simulate``: the strategy with its root-set
reference, per-round evaluation on the MNIST test set, checkpoints and the metrics store."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, MetricRecord

from fl.aggregation import RULES
from fl.checkpoints import Checkpoints
from fl.contract import CHECKPOINT_DIR, METRICS_DB_FILE
from fl.data import Split, load_mnist, root_dataset
from fl.metrics_store import MetricsStore, NodeRoundRow, RoundRow
from fl.records import to_numpy
from fl.settings import RunSettings
from fl.strategy import SovereignStrategy
from fl.task import (
    DPConfig,
    TrainConfig,
    build_model,
    evaluate,
    flatten,
    get_weights,
    set_weights,
    steps_per_epoch,
    train,
)

log = logging.getLogger("sovereign_map.server")


@dataclass(frozen=True)
class RoundResult:
    round: int
    accuracy: float
    loss: float
    duration_s: float
    participants: int
    rejected: int
    flagged: int
    exhausted: int
    failed: int  # nodes whose reply was an error (the ClientApp raised)
    max_epsilon: float
    weights: dict[str, float] = field(default_factory=dict)  # node -> share of the aggregate
    epsilons: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------- root update
def make_root_update(
    settings: RunSettings, train_split: Split
) -> Callable[[OrderedDict[str, np.ndarray]], np.ndarray]:
    """The server's own update on its root set, for trust bootstrapping.

    It is computed the way an honest node computes its update — same optimiser, learning
    rate, per-sample clipping to ``max-grad-norm`` and about as many steps — but without
    noise: the root data is the server's own. Matching the nodes' geometry matters: under
    DP an honest update is mostly noise, and its small signal is the *clipped* gradient.
    """
    root = root_dataset(train_split, settings.root_size, seed=settings.seed)
    typical = settings.samples_per_node or len(train_split) // settings.num_nodes
    node_steps = settings.local_epochs * steps_per_epoch(typical, settings.batch_size)
    batch = min(settings.batch_size, len(root))
    epochs = max(1, round(node_steps / steps_per_epoch(len(root), batch)))
    clip_only = (
        DPConfig(noise_multiplier=0.0, max_grad_norm=settings.max_grad_norm)
        if settings.dp
        else None
    )
    config = TrainConfig(epochs=epochs, batch_size=batch, lr=settings.lr, dp=clip_only)
    calls = 0

    def root_update(global_weights: OrderedDict[str, np.ndarray]) -> np.ndarray:
        nonlocal calls
        calls += 1
        model = build_model(settings.model)
        set_weights(model, global_weights)
        train(model, root, config, seed=settings.seed * 1_000_003 + calls)
        return flatten(get_weights(model)) - flatten(global_weights)

    return root_update


# --------------------------------------------------------------------- the federation
class Federation:
    """Strategy + evaluation + persistence for one run.

    ``evaluate`` is handed to ``Strategy.start`` as ``evaluate_fn``: after each round it
    evaluates the new global model on the full MNIST test set, checkpoints it and appends
    the round to the metrics store.
    """

    def __init__(
        self,
        settings: RunSettings,
        *,
        state_dir: Path | None = None,
        resume: bool = False,
        on_round: Callable[[RoundResult], None] | None = None,
    ) -> None:
        self.settings = settings
        self.train_split, self.test_split = load_mnist(settings.data_dir or None)
        self.checkpoints = Checkpoints(state_dir / CHECKPOINT_DIR) if state_dir else None
        self.store = MetricsStore(state_dir / METRICS_DB_FILE) if state_dir else None
        if self.store:
            self.store.initialise()
        self.on_round = on_round
        self.results: list[RoundResult] = []

        self.start_round = 0
        model = build_model(settings.model, seed=settings.seed)
        initial = get_weights(model)
        latest = self.checkpoints.load_latest() if (resume and self.checkpoints) else None
        if latest is not None:
            self.start_round, initial, _ = latest
            log.info("resuming from the checkpoint of round %d", self.start_round)
        self.initial_weights = initial
        needs_root = RULES[settings.rule].reference_kind == "root-update"
        root = make_root_update(settings, self.train_split) if needs_root else None
        self.strategy = SovereignStrategy(settings, root_update=root, round_offset=self.start_round)
        self._eval_model = build_model(settings.model)

    @property
    def remaining_rounds(self) -> int:
        return max(0, self.settings.num_server_rounds - self.start_round)

    def evaluate(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        absolute = server_round + self.start_round
        set_weights(self._eval_model, to_numpy(arrays))
        accuracy, loss = evaluate(self._eval_model, self.test_split)
        if server_round == 0:
            log.info("initial global model: accuracy %.2f%%, loss %.4f", accuracy, loss)
            return MetricRecord({"accuracy": accuracy, "loss": loss})
        report = self.strategy.reports[absolute]
        duration = time.time() - report.started
        result = RoundResult(
            round=absolute,
            accuracy=accuracy,
            loss=loss,
            duration_s=duration,
            participants=report.participants,
            rejected=report.count("rejected"),
            flagged=report.count("flagged"),
            exhausted=report.count("budget-exhausted"),
            failed=report.count("error"),
            max_epsilon=report.max_epsilon,
            weights={n.node: n.weight for n in report.nodes},
            epsilons={n.node: n.epsilon for n in report.nodes},
        )
        self.results.append(result)
        if self.checkpoints:
            self.checkpoints.save(
                absolute, to_numpy(arrays), {"round": absolute, "accuracy": accuracy, "loss": loss}
            )
        if self.store:
            self.store.append(
                RoundRow(
                    round=absolute,
                    accuracy=accuracy,
                    loss=loss,
                    duration_s=duration,
                    aggregation_s=report.aggregation_s,
                    participants=report.participants,
                    rejected=result.rejected,
                    flagged=result.flagged,
                    exhausted=result.exhausted,
                    max_epsilon=result.max_epsilon,
                    rule=self.settings.rule,
                    nodes=[
                        NodeRoundRow(n.node, n.epsilon, n.weight, n.stake, n.examples, n.status)
                        for n in report.nodes
                    ],
                )
            )
        log.info(
            "round %d: accuracy %.2f%%, loss %.4f, %d accepted, %d rejected, %d flagged,"
            " max ε %.3f",
            absolute,
            accuracy,
            loss,
            result.participants,
            result.rejected,
            result.flagged,
            result.max_epsilon,
        )
        if self.on_round:
            self.on_round(result)
        return MetricRecord({"accuracy": accuracy, "loss": loss})
