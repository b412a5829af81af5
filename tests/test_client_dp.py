"""The ClientApp: DP-SGD accounting, attacks, and the ε budget, through real messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flwr.app import ConfigRecord, Message, MessageType, RecordDict
from opacus.accountants import RDPAccountant

from fl.attacks import poison_delta, poison_labels
from fl.records import from_numpy, to_numpy
from fl.settings import RunSettings
from fl.simulation import DirectGrid
from fl.task import CompactCNN, OriginalCNN, build_model, flatten, get_weights


def _settings(mnist_path: Path, **changes: object) -> RunSettings:
    base = dict(
        num_nodes=4,
        num_server_rounds=3,
        samples_per_node=256,
        batch_size=64,
        data_dir=str(mnist_path),
        rule="fedavg",
    )
    base.update(changes)
    return RunSettings(**base)  # type: ignore[arg-type]


def _train_round(grid: DirectGrid, node: int, weights: dict[str, np.ndarray], rnd: int) -> Message:
    content = RecordDict(
        {"arrays": from_numpy(weights), "config": ConfigRecord({"server-round": rnd})}
    )
    (reply,) = grid.send_and_receive([Message(content, node, MessageType.TRAIN)])
    assert not reply.has_error(), reply.error
    return reply


def test_model_sizes() -> None:
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(CompactCNN()) == 26_010
    assert count(OriginalCNN()) == 1_199_882
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet")


def test_epsilon_grows_every_round_and_matches_opacus_accountant(mnist_path: Path) -> None:
    settings = _settings(mnist_path, noise_multiplier=1.1)
    grid = DirectGrid(settings)
    weights = get_weights(build_model(settings.model))
    epsilons, steps = [], []
    for rnd in (1, 2, 3):
        metrics = _train_round(grid, 1, weights, rnd).content["metrics"]
        epsilons.append(metrics["epsilon"])
        assert metrics["noise-multiplier"] == pytest.approx(1.1)
        steps.append(256 // 64)
    assert epsilons[0] > 0 and epsilons[0] < epsilons[1] < epsilons[2]
    # Opacus' own accountant, stepped independently with the same σ and sampling rate.
    reference = RDPAccountant()
    for _ in range(sum(steps)):
        reference.step(noise_multiplier=1.1, sample_rate=64 / 256)
    assert epsilons[-1] == pytest.approx(reference.get_epsilon(delta=1e-5), rel=1e-9)


def test_node_stops_at_its_epsilon_budget_and_says_so(mnist_path: Path) -> None:
    settings = _settings(mnist_path, epsilon_budget=8.0)
    grid = DirectGrid(settings)
    weights = get_weights(build_model(settings.model))
    first = _train_round(grid, 1, weights, 1).content["metrics"]
    assert first["budget-exhausted"] == 0 and 0 < first["epsilon"] <= 8.0
    rounds = [first]
    for rnd in range(2, 8):
        reply = _train_round(grid, 1, weights, rnd)
        rounds.append(reply.content["metrics"])
        if reply.content["metrics"]["budget-exhausted"]:
            assert "arrays" not in reply.content.array_records  # no update once exhausted
            break
    else:
        pytest.fail("the node never reported its budget as exhausted")
    assert all(r["epsilon"] <= 8.0 for r in rounds)
    assert len(rounds) == 4  # rounds 1-3 fit (ε 4.87, 6.25, 7.33); round 4 would reach 8.26
    assert rounds[-1]["epsilon"] == pytest.approx(rounds[-2]["epsilon"])  # it stopped spending


def test_target_epsilon_picks_sigma_for_the_planned_rounds(mnist_path: Path) -> None:
    settings = _settings(
        mnist_path,
        target_epsilon=3.0,  # overrides the default σ
        num_server_rounds=2,
    )
    grid = DirectGrid(settings)
    weights = get_weights(build_model(settings.model))
    eps = [_train_round(grid, 1, weights, rnd).content["metrics"]["epsilon"] for rnd in (1, 2)]
    assert eps[1] == pytest.approx(3.0, abs=0.05)  # the whole plan spends the target


def test_sign_flip_sends_exactly_the_negated_delta(mnist_path: Path) -> None:
    settings = _settings(mnist_path)
    weights = get_weights(build_model(settings.model))
    honest = DirectGrid(settings, {0: {"attack": "honest"}})
    flipped = DirectGrid(settings, {0: {"attack": "sign-flip", "attack-scale": 3.0}})
    base = flatten(weights)
    d_honest = flatten(to_numpy(_train_round(honest, 1, weights, 1).content["arrays"])) - base
    d_flip = flatten(to_numpy(_train_round(flipped, 1, weights, 1).content["arrays"])) - base
    assert np.linalg.norm(d_honest) > 0
    np.testing.assert_allclose(d_flip, -3.0 * d_honest, rtol=1e-4, atol=1e-6)


def test_free_rider_and_gaussian_through_the_client(mnist_path: Path) -> None:
    settings = _settings(mnist_path)
    weights = get_weights(build_model(settings.model))
    base = flatten(weights)
    honest = (
        flatten(to_numpy(_train_round(DirectGrid(settings), 1, weights, 1).content["arrays"]))
        - base
    )
    rider = DirectGrid(settings, {0: {"attack": "free-rider"}})
    gauss = DirectGrid(settings, {0: {"attack": "gaussian"}})
    d_rider = flatten(to_numpy(_train_round(rider, 1, weights, 1).content["arrays"])) - base
    d_gauss = flatten(to_numpy(_train_round(gauss, 1, weights, 1).content["arrays"])) - base
    assert not d_rider.any()
    assert np.linalg.norm(d_gauss) == pytest.approx(np.linalg.norm(honest), rel=1e-3)
    cos = d_gauss @ honest / (np.linalg.norm(d_gauss) * np.linalg.norm(honest))
    assert abs(cos) < 0.05


def test_attack_primitives() -> None:
    delta = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    np.testing.assert_array_equal(poison_delta(delta, "sign-flip"), -delta)
    np.testing.assert_array_equal(poison_delta(delta, "sign-flip", scale=2), -2 * delta)
    np.testing.assert_array_equal(poison_delta(delta, "honest"), delta)
    np.testing.assert_array_equal(poison_labels(np.array([0, 3, 9]), "label-flip"), [9, 6, 0])
    with pytest.raises(ValueError, match="unknown attack"):
        poison_delta(delta, "explode")
    with pytest.raises(ValueError, match="scale"):
        poison_delta(delta, "sign-flip", scale=-1)


def test_dp_is_on_by_default_and_off_only_explicitly(mnist_path: Path) -> None:
    assert RunSettings().dp is True and RunSettings().train_config().dp is not None
    settings = _settings(mnist_path, dp=False)
    reply = _train_round(DirectGrid(settings), 1, get_weights(build_model()), 1)
    assert reply.content["metrics"]["epsilon"] == 0.0
