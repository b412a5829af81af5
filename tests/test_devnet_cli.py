"""`sovereign-map devnet`: what it would start, and its refusals, without training anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fl.cli import main
from fl.devnet.layout import Layout
from fl.devnet.plan import (
    DevnetOptions,
    aggregator_argv,
    attack_table,
    byzantine_count,
    metrics_api_argv,
    node_argv,
    resolve_ports,
)


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize(
    ("spec", "nodes", "count"),
    [("0", 5, 0), ("2", 5, 2), ("0.2", 5, 1), ("0.5", 10, 5), ("0.5", 3, 2), ("1.0", 4, 4)],
)
def test_byzantine_is_a_count_or_a_fraction(spec: str, nodes: int, count: int) -> None:
    assert byzantine_count(spec, nodes) == count


@pytest.mark.parametrize(
    ("spec", "message"),
    [("6", r"between 0 and --nodes \(5\)"), ("1.5", "between 0 and 1"), ("x", "not a number")],
)
def test_bad_byzantine_values_are_explained(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        byzantine_count(spec, 5)


def test_each_process_gets_its_ports_identity_and_budget(tmp_path: Path) -> None:
    options = DevnetOptions(nodes=3, byzantine=1, attack="label-flip", attack_scale=1.0,
                            rounds=4, rule="median", samples_per_node=100,
                            epsilon_budget=7.5)  # fmt: skip
    ports = resolve_ports({"aggregator": 18080, "metrics_api": 18000, "node_metrics": 19101,
                           "prometheus": 0}, 3, monitoring=False)  # fmt: skip
    assert ports.nodes == {"node-0": 19101, "node-1": 19102, "node-2": 19103}
    assert ports.prometheus is None
    layout = Layout(tmp_path)
    assert attack_table(options) == {"node-0": "label-flip"}

    agg = " ".join(aggregator_argv(layout, options, ports))
    assert "--port 18080" in agg and "--rounds 4" in agg and "--rule median" in agg
    assert "--min-fit-clients 3" in agg and "--epsilon-budget 7.5" in agg
    node1 = " ".join(node_argv(layout, options, ports, "node-1"))
    assert "--node-id node-1" in node1 and "--attack honest" in node1
    assert "--aggregator-port 18080" in node1 and "--metrics-port 19102" in node1
    assert "--attack label-flip" in " ".join(node_argv(layout, options, ports, "node-0"))
    api = " ".join(metrics_api_argv(layout, options, ports))
    assert "--port 18000" in api and "--num-nodes 3" in api and "--epsilon-budget 7.5" in api


def test_port_zero_picks_distinct_free_ports() -> None:
    ports = resolve_ports({"aggregator": 0, "metrics_api": 0, "node_metrics": 0,
                           "prometheus": 0}, 4, monitoring=True)  # fmt: skip
    chosen = list(ports.all().values())
    assert len(chosen) == 7 and len(set(chosen)) == 7


def test_up_refuses_a_port_in_use_before_starting_anything(tmp_path: Path, busy_port: int) -> None:
    state = tmp_path / "state"
    result = _run("devnet", "up", "--nodes", "2", "--state-dir", str(state),
                  "--aggregator-port", str(busy_port), "--metrics-api-port", "0",
                  "--node-metrics-port", "0")  # fmt: skip
    assert result.exit_code == 1
    assert f"aggregator: cannot listen on 127.0.0.1:{busy_port}" in result.output
    assert "--aggregator-port" in result.output  # says how to choose another
    assert not state.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--byzantine", "3", "--nodes", "2"], "must be between 0 and --nodes (2)"),
        (["--rule", "mean"], "rule must be one of"),
        (["--resume", "--fresh"], "give --resume or --fresh, not both"),
        (["--run-config", "lr=0"], "lr must be > 0"),
        (["--epsilon-budget", "-1"], "-1.0 is not in the range x>=0"),
    ],
)
def test_up_explains_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    result = _run("devnet", "up", "--state-dir", str(tmp_path / "s"), *args)
    assert result.exit_code != 0
    assert message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output


def test_status_and_down_explain_a_missing_devnet(tmp_path: Path) -> None:
    for command in ("status", "down"):
        result = _run("devnet", command, "--state-dir", str(tmp_path / "none"))
        assert result.exit_code == 1
        assert "Traceback" not in result.output
        assert str(tmp_path / "none") in result.output, result.output
