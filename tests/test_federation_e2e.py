"""Whole federations, really trained on MNIST under DP (slow: real training)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from fl.cli import main
from fl.settings import RunSettings
from fl.simulation import run_federation

pytestmark = pytest.mark.slow


def test_five_nodes_reach_80_percent_in_three_dp_rounds(mnist_path: Path) -> None:
    settings = RunSettings(
        num_nodes=5, num_server_rounds=3, samples_per_node=4000, data_dir=str(mnist_path)
    )
    assert settings.dp  # DP is the default
    results = run_federation(settings)
    assert [r.round for r in results] == [1, 2, 3]
    assert results[-1].accuracy >= 80.0
    assert 0 < results[0].max_epsilon < results[-1].max_epsilon < 10
    assert all(r.participants == 5 and r.rejected == 0 for r in results)


def test_half_sign_flippers_fltrust_converges_fedavg_does_not(mnist_path: Path) -> None:
    common = dict(
        num_nodes=10,
        num_server_rounds=6,
        samples_per_node=3000,
        byzantine=5,
        attack="sign-flip",
        data_dir=str(mnist_path),
    )
    robust = run_federation(RunSettings(rule="fltrust", **common))  # type: ignore[arg-type]
    naive = run_federation(RunSettings(rule="fedavg", **common))  # type: ignore[arg-type]
    assert robust[-1].accuracy >= 90.0
    assert max(r.accuracy for r in naive) < 50.0
    # fltrust gave the five attackers (nodes 0-4, half the nodes and half the stake) nothing
    for r in robust:
        assert sum(r.weights[f"node-{i}"] for i in range(5)) == 0.0
        assert r.flagged == 5


def test_simulate_cli_writes_json_and_plot_and_is_deterministic(
    tmp_path: Path, mnist_path: Path
) -> None:
    args = [
        "simulate",
        "--nodes",
        "3",
        "--rounds",
        "2",
        "--samples-per-node",
        "300",
        "--byzantine",
        "0.34",
        "--attack",
        "gaussian",
        "--data-dir",
        str(mnist_path),
    ]
    runner = CliRunner()
    first = runner.invoke(main, [*args, "--out", str(tmp_path / "a.json")])
    assert first.exit_code == 0, first.output
    assert "round   2/2" in first.output and "rounds to 80%" in first.output
    second = runner.invoke(main, [*args, "--out", str(tmp_path / "b.json")])
    assert second.exit_code == 0, second.output
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    for key in ("rounds", "accuracies", "losses", "epsilons"):
        assert key in a
    assert a["rounds"] == [1, 2] and a["attackers"] == ["node-0"]
    assert a["accuracies"] == b["accuracies"] and a["losses"] == b["losses"]
    assert a["settings"]["dp"] is True and a["settings"]["num-nodes"] == 3
    assert np.all(np.diff(a["epsilons"]) > 0)
    png = (tmp_path / "a.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


def test_simulate_cli_errors_are_clear(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = runner.invoke(main, ["simulate", "--nodes", "0"])
    assert bad.exit_code == 2 and "--nodes" in bad.output
    missing = runner.invoke(
        main,
        [
            "simulate",
            "--nodes",
            "2",
            "--rounds",
            "1",
            "--data-dir",
            str(tmp_path),
            "--out",
            str(tmp_path / "x.json"),
        ],
    )
    assert missing.exit_code == 1 and "not found in" in missing.output
    assert "Traceback" not in missing.output
