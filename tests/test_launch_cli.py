"""`sovereign-map aggregator` and `sovereign-map node`: configuration from flags and
environment variables, validated before anything starts, with clear errors."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from certs.authority import init_pki
from certs.bundle import write_bundle
from certs.pki import issue_client
from fl.cli import main
from fl.launch.config_options import parse_pairs
from fl.launch.proc import free_port

NOW = datetime.now(UTC)
DAY = timedelta(days=1)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki")
    authority = init_pki(
        root, nodes=2, now=NOW - 10 * DAY, validity=30 * DAY, renew_before=5 * DAY,
        ca_validity=300 * DAY,
    ).authority  # fmt: skip
    expired = issue_client(authority.ca, "node-1", validity=DAY, now=NOW - 3 * DAY)
    write_bundle(root / "expired-node-1", ca_cert=authority.ca.cert, cert=expired.cert,
                 key=expired.key)  # fmt: skip
    return root


def _run(args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, args, env=env or {})


def _aggregator(pki: Path, tmp_path: Path, *extra: str, port: bool = True) -> list[str]:
    args = ["aggregator", "--tls-dir", str(pki / "aggregator"), "--state-dir",
            str(tmp_path / "state"), "--host", "127.0.0.1", *extra]  # fmt: skip
    return [*args, "--port", str(free_port())] if port else args


# ------------------------------------------------------------------ aggregator


def test_aggregator_requires_its_tls_and_state_dirs() -> None:
    result = _run(["aggregator"])
    assert result.exit_code == 2
    assert "--tls-dir" in result.output and "SM_TLS_DIR" in result.output


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"AGGREGATOR_PORT": "80a"}, "(env var: 'AGGREGATOR_PORT'): '80a' is not a valid"),
        ({"NUM_ROUNDS": "0"}, "(env var: 'NUM_ROUNDS'): 0 is not in the range x>=1"),
        ({"SM_DP": "maybe"}, "(env var: 'SM_DP'): 'maybe' is not a valid boolean"),
        ({"SM_PARTITION": "random"}, "(env var: 'SM_PARTITION'): 'random' is not one of"),
        ({"MIN_FIT_CLIENTS": "5", "SM_NUM_NODES": "3"},
         "min-train-nodes must be between 0 and num-nodes (min-train-nodes: "
         "--min-fit-clients / MIN_FIT_CLIENTS)"),
        ({"SM_RULE": "mean"}, "rule must be one of"),
        ({"SM_STAKES_FILE": "/no/such/stakes.yaml"}, "'/no/such/stakes.yaml' does not exist"),
    ],
)  # fmt: skip
def test_aggregator_environment_is_validated_with_the_variable_named(
    pki: Path, tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    result = _run(_aggregator(pki, tmp_path, port="AGGREGATOR_PORT" not in env), env)
    assert result.exit_code != 0
    assert expected in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "state").exists()  # nothing was started or written


def test_flags_win_over_environment_variables(pki: Path, tmp_path: Path) -> None:
    # NUM_ROUNDS=0 would be refused; the flag replaces it, and the next check (the port,
    # taken by nobody, but the TLS material for a foreign address) is what fails.
    result = _run(_aggregator(pki, tmp_path, "--rounds", "2", "--host", "192.0.2.7"),
                  {"NUM_ROUNDS": "0"})  # fmt: skip
    assert result.exit_code == 1
    assert "NUM_ROUNDS" not in result.output
    assert "server TLS material" in result.output and "192.0.2.7" in result.output


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("lr=0", "invalid configuration: lr must be > 0"),
        ("bogus=1", "unknown key(s) bogus"),
        ("num-server-rounds=3", "set num-server-rounds with its own option (--rounds / NUM_"),
        ("lr", "expected key=value"),
    ],
)
def test_aggregator_run_config_keys_are_checked(
    pki: Path, tmp_path: Path, extra: str, expected: str
) -> None:
    result = _run(_aggregator(pki, tmp_path, "--run-config", extra))
    assert result.exit_code != 0
    assert expected in " ".join(result.output.split()), result.output


def test_aggregator_refuses_a_port_in_use(pki: Path, tmp_path: Path, busy_port: int) -> None:
    result = _run(_aggregator(pki, tmp_path, "--port", str(busy_port), port=False))
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{busy_port}" in result.output


def test_aggregator_needs_an_operator_certificate(pki: Path, tmp_path: Path) -> None:
    alone = tmp_path / "alone" / "aggregator"
    shutil.copytree(pki / "aggregator", alone)
    result = _run(["aggregator", "--tls-dir", str(alone), "--state-dir", str(tmp_path / "s")])
    assert result.exit_code == 2
    assert "no operator bundle" in result.output and "SM_OPERATOR_TLS_DIR" in result.output
    wrong = _run(_aggregator(pki, tmp_path, "--operator-tls-dir", str(pki / "aggregator")))
    assert wrong.exit_code == 1 and "not a client certificate" in wrong.output


def test_parse_pairs_reads_toml_scalars() -> None:
    assert parse_pairs(("lr=0.5 local-epochs=2", "dp=false model=compact"), "--x") == {
        "lr": 0.5, "local-epochs": 2, "dp": False, "model": "compact",
    }  # fmt: skip


# ------------------------------------------------------------------------ node


def _node(
    pki: Path, tmp_path: Path, *extra: str, bundle: str = "nodes/node-0", metrics_port: bool = True
) -> list[str]:
    # A node that passes validation would really start: give it a free metrics port unless
    # the test is about the port (the flag would win over SM_NODE_METRICS_PORT).
    port = ["--metrics-port", "0"] if metrics_port else []
    return ["node", "--tls-dir", str(pki / bundle), "--state-dir", str(tmp_path / "n"),
            *port, *extra]  # fmt: skip


@pytest.mark.parametrize(
    ("env", "extra", "expected"),
    [
        ({}, [], "Missing option '--node-id'"),
        ({"NODE_ID": "node-0"}, [], "Missing option '--nodes'"),
        ({"NODE_ID": "Node_0", "SM_NUM_NODES": "2"}, [], "invalid node id 'Node_0'"),
        ({"NODE_ID": "node-0", "SM_NUM_NODES": "1", "SM_PARTITION_ID": "1"}, [],
         "partition 1 of node-0 does not exist with 1 node(s)"),
        ({"NODE_ID": "node-0", "SM_NUM_NODES": "2", "SM_NODE_ATTACK": "evil"}, [],
         "(env var: 'SM_NODE_ATTACK'): 'evil' is not one of"),
        ({"NODE_ID": "node-0", "SM_NUM_NODES": "2", "SM_NODE_STAKE": "-1"}, [],
         "(env var: 'SM_NODE_STAKE'): -1.0 is not in the range x>=0"),
        ({"NODE_ID": "node-0", "SM_NUM_NODES": "2", "SM_NODE_METRICS_PORT": "99999"}, [],
         "(env var: 'SM_NODE_METRICS_PORT'): 99999 is not in the range"),
        ({"NODE_ID": "node-1", "SM_NUM_NODES": "2"}, [],
         "the certificate in", ),
    ],
)  # fmt: skip
def test_node_configuration_is_validated(
    pki: Path, tmp_path: Path, env: dict[str, str], extra: list[str], expected: str
) -> None:
    result = _run(_node(pki, tmp_path, *extra, metrics_port="SM_NODE_METRICS_PORT" not in env), env)
    assert result.exit_code != 0
    assert expected in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output


def test_a_node_refuses_a_certificate_for_another_node(pki: Path, tmp_path: Path) -> None:
    result = _run(_node(pki, tmp_path, "--node-id", "node-1", "--nodes", "2"))
    assert result.exit_code == 1
    assert "is for CN=node-0, not for node-1" in result.output


def test_a_node_refuses_an_expired_certificate(pki: Path, tmp_path: Path) -> None:
    result = _run(_node(pki, tmp_path, "--node-id", "node-1", "--nodes", "2",
                        bundle="expired-node-1"))  # fmt: skip
    assert result.exit_code == 1
    assert "expired" in result.output


def test_a_node_refuses_a_metrics_port_in_use(pki: Path, tmp_path: Path, busy_port: int) -> None:
    result = _run(
        _node(
            pki,
            tmp_path,
            "--node-id",
            "node-0",
            "--nodes",
            "2",
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            str(busy_port),
        )
    )
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{busy_port}" in result.output
