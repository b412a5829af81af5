"""The aggregator strategy: validation of replies, stake weighting, flagging."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict

from fl.metrics_store import MetricsStore, NodeRoundRow, RoundRow
from fl.records import from_numpy, to_numpy
from fl.settings import RunSettings
from fl.simulation import DirectGrid
from fl.strategy import SovereignStrategy

GLOBAL = OrderedDict(w=np.zeros((2, 2), dtype=np.float32), b=np.zeros(2, dtype=np.float32))


def _reply(
    request: Message,
    pid: int,
    weights: dict[str, np.ndarray] | None,
    examples: int = 10,
    **extra: float,
) -> Message:
    metrics = MetricRecord(
        {
            "partition-id": pid,
            "num-examples": examples,
            "epsilon": 0.5,
            "train-loss": 1.0,
            "budget-exhausted": 0,
            **extra,
        }
    )
    content = RecordDict({"metrics": metrics})
    if weights is not None:
        content["arrays"] = from_numpy(weights)
    return Message(content, reply_to=request)


def _delta(value: float) -> OrderedDict[str, np.ndarray]:
    return OrderedDict((k, np.full_like(v, value)) for k, v in GLOBAL.items())


def _run(settings: RunSettings, make_replies, root=None):  # type: ignore[no-untyped-def]
    strategy = SovereignStrategy(settings, root_update=root)
    grid = DirectGrid(settings)
    requests = list(strategy.configure_train(1, from_numpy(GLOBAL), ConfigRecord(), grid))
    replies = make_replies(requests)
    arrays, metrics = strategy.aggregate_train(1, replies)
    return strategy.reports[1], arrays, metrics


def test_malformed_updates_are_rejected_and_counted() -> None:
    settings = RunSettings(num_nodes=7, rule="fedavg")
    bad_shape = OrderedDict(w=np.zeros((3, 2), np.float32), b=np.zeros(2, np.float32))
    nan = _delta(1.0)
    nan["w"][0, 0] = np.nan
    inf = _delta(1.0)
    inf["b"][1] = np.inf

    def replies(req: list[Message]) -> list[Message]:
        return [
            _reply(req[0], 0, _delta(1.0)),  # good
            _reply(req[1], 1, bad_shape),
            _reply(req[2], 2, nan),
            _reply(req[3], 3, inf),
            _reply(req[4], 4, _delta(1000.0)),  # norm 2000 > max-update-norm 100
            _reply(req[5], 0, _delta(1.0)),  # claims node-0's identity again
            _reply(req[6], 99, _delta(1.0)),  # no such node
        ]

    report, arrays, metrics = _run(settings, replies)
    statuses = {n.node + ":" + n.status for n in report.nodes}
    assert "node-0:accepted" in statuses
    assert {
        "node-1:rejected:shape",
        "node-2:rejected:non-finite",
        "node-3:rejected:non-finite",
        "node-4:rejected:norm",
        "node-0#2:rejected:duplicate-identity",  # one row per reply, the copy marked
    } <= statuses
    assert metrics["rejected"] == 6 and metrics["participants"] == 1
    np.testing.assert_allclose(to_numpy(arrays)["w"], 1.0)  # only the good update counts


def test_stake_times_examples_weights_the_mean() -> None:
    settings = RunSettings(num_nodes=2, rule="fedavg", stakes="node-0=3,node-1=1")
    report, arrays, _ = _run(
        settings,
        lambda req: [
            _reply(req[0], 0, _delta(1.0), examples=10),
            _reply(req[1], 1, _delta(-1.0), examples=10),
        ],
    )
    np.testing.assert_allclose(to_numpy(arrays)["b"], 0.5)  # (3·1 + 1·(−1)) / 4
    assert [round(n.weight, 6) for n in report.nodes] == [0.75, 0.25]
    _, arrays, _ = _run(
        RunSettings(num_nodes=2, rule="fedavg"),
        lambda req: [
            _reply(req[0], 0, _delta(1.0), examples=30),
            _reply(req[1], 1, _delta(-1.0), examples=10),
        ],
    )
    np.testing.assert_allclose(to_numpy(arrays)["b"], 0.5)  # examples weigh too


def test_budget_exhausted_nodes_are_counted_not_aggregated() -> None:
    settings = RunSettings(num_nodes=2, rule="fedavg")
    _, arrays, metrics = _run(
        settings,
        lambda req: [
            _reply(req[0], 0, _delta(2.0)),
            _reply(req[1], 1, None, examples=0, **{"budget-exhausted": 1}),
        ],
    )
    assert metrics["exhausted"] == 1 and metrics["participants"] == 1
    np.testing.assert_allclose(to_numpy(arrays)["w"], 2.0)


def test_fltrust_flags_sign_flipped_updates_with_zero_weight() -> None:
    settings = RunSettings(num_nodes=4, rule="fltrust")
    direction = np.array([1.0, 2.0, -1.0, 0.5, 1.0, -2.0], dtype=np.float32) / 10

    def as_weights(vec: np.ndarray) -> OrderedDict[str, np.ndarray]:
        return OrderedDict(w=vec[:4].reshape(2, 2), b=vec[4:])

    root = lambda _g: direction.astype(np.float64)  # noqa: E731
    rng = np.random.default_rng(0)
    honest = [direction + 0.02 * rng.standard_normal(6).astype(np.float32) for _ in range(2)]
    report, arrays, metrics = _run(
        settings,
        lambda req: [
            _reply(req[0], 0, as_weights(-honest[0])),  # sign-flipped
            _reply(req[1], 1, as_weights(-5 * honest[1])),  # sign-flipped and boosted
            _reply(req[2], 2, as_weights(honest[0])),
            _reply(req[3], 3, as_weights(honest[1])),
        ],
        root=root,
    )
    weights = {n.node: n.weight for n in report.nodes}
    assert weights["node-0"] == 0 and weights["node-1"] == 0
    assert weights["node-2"] > 0.3 and weights["node-3"] > 0.3
    assert metrics["flagged"] == 2
    result = np.concatenate([to_numpy(arrays)["w"].ravel(), to_numpy(arrays)["b"]])
    assert result @ direction > 0


def test_error_replies_do_not_break_the_round() -> None:
    from flwr.app import Error

    settings = RunSettings(num_nodes=2, rule="fedavg")
    report, _, metrics = _run(
        settings,
        lambda req: [
            _reply(req[0], 0, _delta(1.0)),
            Message(Error(code=0, reason="ClientApp crashed"), reply_to=req[1]),
        ],
    )
    assert metrics["participants"] == 1
    assert any(n.status.startswith("error") for n in report.nodes)


def test_nodes_gone_offline_are_recorded_once_each(tmp_path: Path) -> None:
    """After a restart the SuperLink still lists the nodes' previous processes for a while;
    it answers for each of them with an error from itself (no identity). Every such answer
    is its own row, and the round is stored."""
    from flwr.app import Error
    from flwr.common.constant import SUPERLINK_NODE_ID

    def gone(request: Message) -> Message:
        reply = Message(Error(code=5, reason="node unavailable"), reply_to=request)
        reply.metadata.__dict__["_src_node_id"] = SUPERLINK_NODE_ID  # as Flower does
        return reply

    settings = RunSettings(num_nodes=2, rule="fedavg")
    report, _, metrics = _run(
        settings,
        lambda req: [
            *(_reply(req[i], i, _delta(1.0)) for i in (0, 1)),
            *(gone(req[i]) for i in (0, 1)),
        ],
    )
    assert metrics["participants"] == 2
    assert [n.node for n in report.nodes] == ["node-0", "node-1", "unreachable", "unreachable#2"]
    store = MetricsStore(tmp_path / "metrics.sqlite")
    store.append(
        RoundRow(round=1, accuracy=50.0, loss=1.0, duration_s=1.0, aggregation_s=0.1,
                 participants=2, rejected=0, flagged=0, exhausted=0, max_epsilon=0.5,
                 rule="fedavg", nodes=[NodeRoundRow(n.node, n.epsilon, n.weight, n.stake,
                                                    n.examples, n.status) for n in report.nodes])
    )  # fmt: skip
    assert len(store.latest_nodes()) == 4


def test_settings_validation_names_the_key() -> None:
    with pytest.raises(ValueError, match="rule must be one of"):
        RunSettings(rule="mean-of-vibes")
    with pytest.raises(ValueError, match="byzantine"):
        RunSettings(num_nodes=3, byzantine=4)
    with pytest.raises(ValueError, match="stakes"):
        RunSettings(stakes="node-0=-1")
    with pytest.raises(ValueError, match="lr must be a float"):
        RunSettings.from_run_config({"lr": "fast"})
    assert RunSettings.from_run_config({"dp": "false", "num-nodes": 3}).dp is False


def test_metrics_store_keeps_a_round_whose_loss_is_not_finite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from fl.metrics_store import MetricsStore, NodeRoundRow, RoundRow

    store = MetricsStore(tmp_path / "m.sqlite")
    row = RoundRow(
        round=1,
        accuracy=9.8,
        loss=float("nan"),
        duration_s=1.0,
        aggregation_s=0.1,
        participants=2,
        rejected=0,
        flagged=0,
        exhausted=0,
        max_epsilon=1.0,
        rule="fedavg",
        nodes=[NodeRoundRow("node-0", 1.0, 1.0, 1.0, 10, "accepted")],
    )
    store.append(row)
    store.append(RoundRow(**{**row.__dict__, "round": 2, "loss": 0.5}))
    rounds = store.rounds()
    assert [r.round for r in rounds] == [1, 2]
    assert np.isnan(rounds[0].loss) and rounds[1].loss == 0.5
    assert store.latest_nodes()[0].node == "node-0"
