"""A real Flower SuperLink and SuperNodes started through fl.launch.mtls (processes on
127.0.0.1, free ports), probed from outside with ``openssl s_client`` and the ``flwr`` CLI."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certs.authority import init_pki
from certs.bundle import write_bundle
from certs.pki import create_ca, issue_client
from fl.launch.mtls import free_port, superlink_command, supernode_command, write_flwr_config

pytest.importorskip("flwr")

REPO = Path(__file__).resolve().parents[1]
NOW = datetime.now(UTC)
DAY = timedelta(days=1)


@dataclass
class Net:
    pki: Path
    tmp: Path
    port: int
    log: Path
    env: dict[str, str]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _env(tmp: Path, home: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["FLWR_HOME"] = str(tmp / home)
    env["FLWR_TELEMETRY_ENABLED"] = "0"
    env["FLWR_DISABLE_UPDATE_CHECK"] = "1"
    return env


def _start(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def _wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def testnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    tmp = tmp_path_factory.mktemp("testnet")
    pki = tmp / "pki"
    authority = init_pki(
        pki, nodes=3, now=NOW - 10 * DAY, validity=365 * DAY, renew_before=30 * DAY,
        ca_validity=3650 * DAY,
    ).authority  # fmt: skip
    authority.revoke("node-2", NOW - DAY)
    ca = authority.ca
    expired = issue_client(ca, "node-8", validity=2 * DAY, now=NOW - 5 * DAY)
    write_bundle(tmp / "expired", ca_cert=ca.cert, cert=expired.cert, key=expired.key)
    stranger_ca = create_ca(validity=3650 * DAY, now=NOW - DAY)
    stranger = issue_client(stranger_ca, "node-0", validity=DAY, now=NOW)
    write_bundle(tmp / "stranger", ca_cert=ca.cert, cert=stranger.cert, key=stranger.key)

    port = free_port()
    log = tmp / "superlink.log"
    env = _env(tmp, "flwr-home-superlink")
    argv = superlink_command(pki / "aggregator", tmp / "state", port=port, host="127.0.0.1")
    superlink = _start(argv, log, env)
    net = Net(pki=pki, tmp=tmp, port=port, log=log, env=_env(tmp, "flwr-home-operator"))
    write_flwr_config(Path(net.env["FLWR_HOME"]), net.address, pki / "operator" / "ca.crt")
    try:
        _wait_for(lambda: "Application startup complete" in net.log_text()
                  or superlink.poll() is not None, 60, "the SuperLink")  # fmt: skip
        assert superlink.poll() is None, net.log_text()
        yield net
    finally:
        _stop(superlink)


def _s_client(net: Net, bundle: Path | None, path: str = "/health") -> str:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    argv = ["openssl", "s_client", "-quiet", "-connect", net.address,
            "-CAfile", str(net.pki / "ca" / "ca.crt")]  # fmt: skip
    if bundle is not None:
        argv += ["-cert", str(bundle / "tls.crt"), "-key", str(bundle / "tls.key")]
    request = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    request = request.replace("POST /health", "GET /health").encode()
    done = subprocess.run(argv, input=request, capture_output=True, timeout=20, check=False)
    return done.stdout.decode(errors="replace")


def _refusals(net: Net) -> list[str]:
    return [line for line in net.log_text().splitlines() if "refused TLS handshake" in line]


def _operator_ls(net: Net) -> list[dict[str, str]]:
    argv = [sys.executable, "-m", "fl.launch.mtls_cli", "flwr", "--tls-dir",
            str(net.pki / "operator"), "supernode", "ls", "--format", "json"]  # fmt: skip
    done = subprocess.run(argv, env=net.env, cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    report = json.loads(done.stdout)
    assert report["success"], report
    return [n for n in report["nodes"] if n["status"] == "online"]


def test_s_client_with_a_node_certificate_gets_an_http_answer(testnet: Net) -> None:
    assert _s_client(testnet, testnet.pki / "nodes" / "node-0").startswith("HTTP/1.1 200")


@pytest.mark.parametrize(
    ("bundle", "reason"),
    [
        (None, "no client certificate presented"),
        ("stranger", "unable to get local issuer certificate"),
        ("expired", "certificate has expired"),
        ("pki/nodes/node-2", "certificate revoked"),
        ("pki/aggregator", "unsuitable certificate purpose"),
    ],
)
def test_s_client_is_refused_at_the_handshake_and_logged(
    testnet: Net, bundle: str | None, reason: str
) -> None:
    before = len(_refusals(testnet))
    answer = _s_client(testnet, None if bundle is None else testnet.tmp / bundle)
    assert "HTTP/1.1" not in answer
    _wait_for(lambda: len(_refusals(testnet)) > before, 10, "the refusal in the log")
    new = _refusals(testnet)[before:]
    assert any("from 127.0.0.1:" in line and reason in line for line in new), new


def test_supernodes_register_only_with_a_valid_certificate(testnet: Net) -> None:
    logs = testnet.tmp
    good = _start(
        supernode_command(testnet.pki / "nodes" / "node-0", testnet.address,
                          {"partition-id": 0, "num-partitions": 3}),
        logs / "node-0.log", testnet.env,
    )  # fmt: skip
    revoked = _start(
        supernode_command(testnet.pki / "nodes" / "node-2", testnet.address, {},
                          max_retries=1, max_wait_time=5),
        logs / "node-2.log", testnet.env,
    )  # fmt: skip
    no_client_cert = _start(
        ["flower-supernode", "--superlink", testnet.address, "--root-certificates",
         str(testnet.pki / "ca" / "ca.crt"), "--port", str(free_port()), "--max-retries", "1",
         "--max-wait-time", "5", "--isolation", "process"],
        logs / "plain.log", {**testnet.env, "PATH": f"{Path(sys.executable).parent}:"
                             f"{os.environ['PATH']}"},
    )  # fmt: skip
    try:
        nodes: list[dict[str, str]] = []

        def registered() -> bool:
            nonlocal nodes
            nodes = _operator_ls(testnet)
            return bool(nodes)

        _wait_for(registered, 40, "node-0 to register")
        assert revoked.wait(timeout=60) != 0
        assert no_client_cert.wait(timeout=60) != 0
        assert len(_operator_ls(testnet)) == 1  # still only node-0
        log = testnet.log_text()
        assert "certificate revoked" in log and "no client certificate presented" in log
        assert "register-node" in log  # node-0 went through the Fleet API
    finally:
        for process in (good, revoked, no_client_cert):
            _stop(process)


def test_a_node_certificate_cannot_use_the_control_api(testnet: Net) -> None:
    node = testnet.pki / "nodes" / "node-0"
    assert _s_client(testnet, node, "/v1/control/list-nodes").startswith("HTTP/1.1 403")
    assert "forbidden /v1/control/list-nodes" in testnet.log_text()
    operator = _s_client(testnet, testnet.pki / "operator", "/v1/control/list-nodes")
    assert operator.startswith("HTTP/1.1") and not operator.startswith("HTTP/1.1 403")


def test_flwr_cli_without_the_operator_certificate_is_refused(testnet: Net) -> None:
    before = len(_refusals(testnet))
    flwr = str(Path(sys.executable).parent / "flwr")
    done = subprocess.run([flwr, "supernode", "ls", "--format", "json"], env=testnet.env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert json.loads(done.stdout)["success"] is False
    _wait_for(lambda: len(_refusals(testnet)) > before, 10, "the refusal in the log")


PROBE_PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "mtlsprobe"
version = "1.0.0"
description = "probe"
license = "Apache-2.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "sovereignmap"

[tool.flwr.app.components]
serverapp = "probe:server"
clientapp = "probe:client"

[tool.flwr.app.config]
"""

PROBE_APP = """\
import time
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

client = ClientApp()
server = ServerApp()

@client.query()
def query(msg: Message, context: Context) -> Message:
    cfg = ConfigRecord({k: str(v) for k, v in context.node_config.items()})
    return Message(RecordDict({"cfg": cfg}), reply_to=msg)

@server.main()
def main(grid: Grid, context: Context) -> None:
    nodes, deadline = [], time.time() + 30
    while not nodes and time.time() < deadline:
        nodes = list(grid.get_node_ids())
        time.sleep(0.5)
    ask = [Message(RecordDict({"q": ConfigRecord({"x": 1})}), dst_node_id=n,
                   message_type="query") for n in nodes]
    for reply in grid.send_and_receive(ask, timeout=30):
        print("PROBE-REPLY", dict(reply.content["cfg"]), flush=True)
"""


@pytest.mark.slow
def test_a_serverapp_reaches_a_node_through_mutual_tls(testnet: Net) -> None:
    """flwr run (operator cert) -> SuperExec + ServerApp (operator cert) -> node (node cert)."""
    app = testnet.tmp / "probe-app"
    app.mkdir(exist_ok=True)
    (app / "pyproject.toml").write_text(PROBE_PYPROJECT)
    (app / "probe.py").write_text(PROBE_APP)
    node = _start(
        supernode_command(testnet.pki / "nodes" / "node-1", testnet.address,
                          {"partition-id": 1, "num-partitions": 3}),
        testnet.tmp / "node-1.log", testnet.env,
    )  # fmt: skip
    try:
        refusals_before = len(_refusals(testnet))
        argv = [sys.executable, "-m", "fl.launch.mtls_cli", "flwr", "--tls-dir",
                str(testnet.pki / "operator"), "run", str(app), "--stream"]  # fmt: skip
        done = subprocess.run(argv, env=testnet.env, cwd=REPO, capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip
        output = done.stdout + done.stderr
        replies = [ast.literal_eval(m) for m in re.findall(r"PROBE-REPLY (\{[^}]*\})", output)]
        assert {"num-partitions": "3", "partition-id": "1"} in replies, output
        assert len(_refusals(testnet)) == refusals_before  # no one was turned away
    finally:
        _stop(node)
