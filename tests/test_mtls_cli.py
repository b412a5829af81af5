"""`python -m fl.launch.mtls_cli`: clear refusals before anything starts, and node config."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from certs.authority import init_pki
from fl.launch.mtls import format_node_config, superlink_command, supernode_command
from fl.launch.mtls_cli import main

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki")
    init_pki(root, nodes=1, now=NOW, validity=timedelta(days=30), renew_before=timedelta(days=5),
             ca_validity=timedelta(days=300))  # fmt: skip
    return root


def run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _refused(result: Result, message: str) -> None:
    assert result.exit_code != 0
    assert message in result.output, result.output
    assert "Traceback" not in result.output


def test_superlink_refuses_a_node_bundle(pki: Path, tmp_path: Path) -> None:
    shutil.copy(pki / "ca" / "ca.crl", tmp_path / "ca.crl")
    for name in ("ca.crt", "tls.crt", "tls.key"):
        shutil.copy(pki / "nodes" / "node-0" / name, tmp_path / name)
    _refused(run("superlink", "--tls-dir", tmp_path, "--state-dir", tmp_path / "s"),
             "not a server certificate")  # fmt: skip


def test_superlink_needs_the_crl(pki: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "aggregator"
    shutil.copytree(pki / "aggregator", bundle)
    (bundle / "ca.crl").unlink()
    _refused(run("superlink", "--tls-dir", bundle, "--state-dir", tmp_path / "s"), "ca.crl")


def test_superlink_needs_an_operator_certificate(pki: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "lonely" / "aggregator"
    shutil.copytree(pki / "aggregator", bundle)
    result = run("superlink", "--tls-dir", bundle, "--state-dir", tmp_path / "s")
    _refused(result, "--client-tls-dir")
    node_as_operator = run("superlink", "--tls-dir", bundle, "--state-dir", tmp_path / "s",
                           "--client-tls-dir", pki / "aggregator")  # fmt: skip
    _refused(node_as_operator, "not a client certificate")


def test_superlink_port_and_name_checks(pki: Path, tmp_path: Path) -> None:
    _refused(run("superlink", "--tls-dir", pki / "aggregator", "--state-dir", tmp_path,
                 "--port", 0), "between 1 and 65535")  # fmt: skip
    _refused(run("superlink", "--tls-dir", pki / "aggregator", "--state-dir", tmp_path,
                 "--host", "10.1.2.3"), "not valid for 10.1.2.3")  # fmt: skip


def test_supernode_refuses_a_server_bundle_and_bad_config(pki: Path) -> None:
    _refused(run("supernode", "--tls-dir", pki / "aggregator", "--superlink", "127.0.0.1:1"),
             "not a client certificate")  # fmt: skip
    _refused(run("supernode", "--tls-dir", pki / "nodes" / "node-0", "--superlink", "x:1",
                 "--node-config", "novalue"), "expected key=value")  # fmt: skip


def test_exec_flower_needs_an_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SM_MTLS_CLIENT_TLS_DIR", raising=False)
    _refused(run("exec-flower", "flwr-serverapp", "--help"), "SM_MTLS_CLIENT_TLS_DIR")


def test_node_config_is_written_as_flower_reads_it() -> None:
    text = format_node_config({"partition-id": 3, "rate": 0.5, "dp": True, "mode": "sign-flip"})
    assert text == 'partition-id=3 rate=0.5 dp=true mode="sign-flip"'
    with pytest.raises(ValueError, match="quotes"):
        format_node_config({"x": 'a"b'})
    with pytest.raises(ValueError, match="invalid node-config key"):
        format_node_config({"a b": 1})


def test_command_builders_round_trip_through_the_cli(pki: Path) -> None:
    link = superlink_command(pki / "aggregator", Path("/s"), port=9999, operators=["op", "ops"])
    assert link[1:4] == ["-m", "fl.launch.mtls_cli", "superlink"]
    assert link.count("--operator") == 2 and "9999" in link
    node = supernode_command(pki / "nodes" / "node-0", "h:1", {"partition-id": 0, "n": "a"},
                             runtime_port=5000, max_retries=2)  # fmt: skip
    assert node[node.index("--node-config") + 1] == 'partition-id=0 n="a"'
    assert node[3] == "supernode"
    parsed = main.commands["supernode"].make_context("supernode", node[4:])  # CLI reads it back
    assert parsed.params["node_config"] == {"partition-id": 0, "n": "a"}
    assert parsed.params["runtime_port"] == 5000 and parsed.params["max_retries"] == 2
