"""`sovereign-map devnet`: a real testnet of local processes on 127.0.0.1, driven through its
CLI as a user would, and checked from outside — Python's `ssl` against the aggregator's port,
the metrics store, the metrics API, a live Prometheus, the process table.

Slow: real DP training on MNIST in real Flower processes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from certs.authority import open_pki
from certs.bundle import write_bundle
from certs.pki import create_ca, issue_client
from dashboards.queries import all_expressions
from fl.checkpoints import Checkpoints
from fl.contract import CHECKPOINT_DIR
from fl.data import load_mnist
from fl.devnet.layout import DevnetRecord, Layout
from fl.devnet.processes import alive
from fl.metrics_store import MetricsStore, RoundRow
from fl.task import build_model, evaluate, set_weights
from tests.tls_client import tls_request

pytest.importorskip("flwr")
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PROMETHEUS = shutil.which("prometheus")
NOW = datetime.now(UTC)
DAY = timedelta(days=1)
ANY_PORT = ["--aggregator-port", "0", "--metrics-api-port", "0", "--node-metrics-port", "0",
            "--prometheus-port", "0"]  # fmt: skip


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`sovereign-map ARGS` as a user runs it, in its own process."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "fl.cli", *args], cwd=REPO, env=env, capture_output=True,
        text=True, timeout=timeout, check=False,
    )  # fmt: skip


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return done.stdout


def wait_for(check: Callable[[], Any], what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if result := check():
                return result
        except OSError:
            pass
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(0.5)


@dataclass
class Devnet:
    root: Path

    @property
    def layout(self) -> Layout:
        return Layout(self.root)

    def record(self) -> DevnetRecord:
        return DevnetRecord.load(self.layout)

    def port(self, name: str) -> int:
        return int(self.record().ports[name])

    def rounds(self) -> list[RoundRow]:
        try:
            return MetricsStore(self.layout.metrics_store).rounds()
        except Exception:  # not created yet
            return []

    def wait_rounds(self, n: int, timeout: float) -> list[RoundRow]:
        def done() -> list[RoundRow] | None:
            for process in self.record().processes:
                assert alive(process), f"{process.name} died: {self.log(process.name)[-3000:]}"
            rows = self.rounds()
            return rows if len(rows) >= n else None

        return wait_for(done, f"{n} round(s) in {self.layout.metrics_store}", timeout)

    def log(self, name: str) -> str:
        return (self.layout.logs / f"{name}.log").read_text(errors="replace")

    def down(self) -> list[int]:
        pids = [p.pid for p in self.record().processes]
        ok(cli("devnet", "down", "--state-dir", str(self.root)))
        return pids


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def prom_query(port: int, expr: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"query": expr})
    body = get_json(f"http://127.0.0.1:{port}/api/v1/query?{query}")
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def handshake(port: int, ca: Path, bundle: Path | None) -> tuple[int, bytes]:
    """(our port, the aggregator's answer to a Fleet request); b'' when refused."""
    request = b"POST /v1/fleet/pull-messages HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n" \
              b"Connection: close\r\n\r\n"  # fmt: skip
    return tls_request(port, ca, bundle, request)


def pids_alive(pids: list[int]) -> list[int]:
    living = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"):
            continue  # a zombie of another parent: exited
        living.append(pid)
    return living


def descendants(pids: list[int]) -> list[int]:
    """Every process whose parent chain reaches one of ``pids`` (Flower's SuperExec,
    ServerApp and ClientApp processes hang below the launchers)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = set(pids)
    while frontier:
        found |= frontier
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
    return sorted(found)


# ------------------------------------------------------------- a monitored 3-node devnet


@pytest.fixture(scope="module")
def monitored(tmp_path_factory: pytest.TempPathFactory, mnist_path: Path) -> Iterator[Devnet]:
    if PROMETHEUS is None:
        pytest.skip("prometheus is not installed (Debian: apt install prometheus)")
    net = Devnet(tmp_path_factory.mktemp("devnet") / "state")
    started = cli("devnet", "up", "--nodes", "3", "--rounds", "2", "--samples-per-node", "6000",
                  "--epsilon-budget", "20", "--monitoring", "--detach", "--state-dir",
                  str(net.root), "--data-dir", str(mnist_path), *ANY_PORT, timeout=300)  # fmt: skip
    pids: list[int] = []
    try:
        out = ok(started)
        assert "submitted" in out and "detached" in out, out
        pids = descendants([p.pid for p in net.record().processes])
        yield net
    finally:
        if net.layout.state_file.exists():
            cli("devnet", "down", "--state-dir", str(net.root))
        for pid in pids_alive(pids):  # never leave a stray process behind a failed test
            os.kill(pid, 9)


@dataclass
class Probe:
    who: str
    reason: str
    our_port: int
    answer: bytes


@pytest.fixture(scope="module")
def probes(monitored: Devnet) -> list[Probe]:
    """Strangers knock on the aggregator's port while the nodes train round 1."""
    layout = monitored.layout
    authority = open_pki(layout.pki)
    extra = layout.root.parent / "strangers"
    # the devnet's CA is minutes old: its expired certificate is one that lived one second
    expired = issue_client(authority.ca, "node-1", validity=timedelta(seconds=1),
                           now=datetime.now(UTC))  # fmt: skip
    write_bundle(extra / "expired", ca_cert=authority.ca.cert, cert=expired.cert, key=expired.key)
    other_ca = create_ca(validity=30 * DAY, now=NOW - DAY)
    forged = issue_client(other_ca, "node-0", validity=DAY, now=NOW)
    write_bundle(extra / "other-ca", ca_cert=authority.ca.cert, cert=forged.cert, key=forged.key)
    ok(cli("certs", "issue", "--dir", str(layout.pki), "--node", "node-7"))
    ok(cli("certs", "revoke", "--dir", str(layout.pki), "--node", "node-7"))
    time.sleep(max(0.0, expired.cert.not_valid_after_utc.timestamp() + 1.5 - time.time()))
    cases = [
        ("no certificate", None, "no client certificate presented"),
        ("another CA", extra / "other-ca", "unable to get local issuer certificate"),
        ("expired", extra / "expired", "certificate has expired"),
        ("revoked", layout.pki / "nodes" / "node-7", "certificate revoked"),
        ("server-only", layout.pki / "aggregator", "unsuitable certificate purpose"),
    ]
    ca = layout.pki / "ca" / "ca.crt"
    port = monitored.port("aggregator")
    assert monitored.rounds() == [], "the probes must arrive while the run is under way"
    results = []
    for who, bundle, reason in cases:
        our_port, answer = handshake(port, ca, bundle)
        results.append(Probe(who, reason, our_port, answer))
    valid = handshake(port, ca, layout.pki / "nodes" / "node-2")
    results.append(Probe("node-2", "", *valid))
    return results


def test_three_node_devnet_reaches_80_percent_in_two_dp_rounds(
    monitored: Devnet, probes: list[Probe]
) -> None:
    rows = monitored.wait_rounds(2, timeout=420)
    assert [r.round for r in rows] == [1, 2]
    assert rows[-1].accuracy >= 80.0, [r.accuracy for r in rows]
    # the strangers changed nothing: all three honest nodes took part in both rounds
    assert [(r.participants, r.rejected) for r in rows] == [(3, 0), (3, 0)]
    assert 0 < rows[0].max_epsilon < rows[1].max_epsilon < 20


def test_bad_certificates_are_refused_at_the_handshake_and_logged(
    monitored: Devnet, probes: list[Probe]
) -> None:
    *strangers, node = probes
    assert node.answer.startswith(b"HTTP/1.1 "), "a node's certificate gets an HTTP answer"
    log = monitored.log("aggregator")
    for probe in strangers:
        assert probe.answer == b"", f"{probe.who}: got an HTTP answer"
        pattern = rf"refused TLS handshake from 127\.0\.0\.1:{probe.our_port}: .*{probe.reason}"
        assert re.search(pattern, log), f"{probe.who}: no refusal ({probe.reason}) logged"


def test_convergence_endpoint_agrees_with_the_checkpointed_model(
    monitored: Devnet, mnist_path: Path
) -> None:
    rows = monitored.wait_rounds(2, timeout=420)
    api = f"http://127.0.0.1:{monitored.port('metrics_api')}"
    convergence = get_json(f"{api}/convergence")
    assert convergence["rounds"] == [1, 2]
    assert convergence["accuracies"] == pytest.approx([r.accuracy for r in rows])
    assert convergence["round_participants"] == [3, 3]
    # evaluate the aggregator's round-2 checkpoint ourselves on the 10k test images
    last = Checkpoints(monitored.layout.aggregator / CHECKPOINT_DIR).load_latest()
    assert last is not None and last[0] == 2
    model = build_model()
    set_weights(model, last[1])
    accuracy, loss = evaluate(model, load_mnist(str(mnist_path))[1])
    assert convergence["current_accuracy"] == pytest.approx(accuracy, abs=0.01)
    assert convergence["current_loss"] == pytest.approx(loss, rel=1e-3)
    assert get_json(f"{api}/health")["status"] == "healthy"


def test_every_dashboard_and_alert_expression_has_data_in_prometheus(monitored: Devnet) -> None:
    monitored.wait_rounds(2, timeout=420)
    port = monitored.port("prometheus")
    # the last scrape after round 2, and every node scraped more than once (for rate())
    wait_for(lambda: prom_query(port, "sovereignmap_fl_round == 2"), "round 2 scraped", 60)
    wait_for(
        lambda: len(prom_query(port, "count_over_time(up{job='sovereign-map-nodes'}[1m]) >= 2"))
        == 3, "two scrapes of every node", 60,
    )  # fmt: skip
    time.sleep(3)  # one more rule evaluation
    expressions = all_expressions()
    empty = [(where, expr) for where, expr in expressions if not prom_query(port, expr)]
    assert len(expressions) >= 50
    assert empty == []
    assert sorted(r["metric"]["node"] for r in prom_query(port, "sovereignmap_node_epsilon")) == [
        "node-0", "node-1", "node-2",
    ]  # fmt: skip
    rules = get_json(f"http://127.0.0.1:{port}/api/v1/rules")["data"]["groups"]
    unhealthy = [(r["name"], r.get("lastError")) for g in rules for r in g["rules"]
                 if r["health"] != "ok"]  # fmt: skip
    assert unhealthy == []


def test_status_then_down_leaves_no_process_behind(monitored: Devnet) -> None:
    monitored.wait_rounds(2, timeout=420)
    status = ok(cli("devnet", "status", "--state-dir", str(monitored.root)))
    assert "round 2/2: accuracy" in status and "3 participant(s)" in status, status
    assert status.count("running") >= 5, status  # aggregator, 3 nodes, metrics API, Prometheus
    tree = descendants([p.pid for p in monitored.record().processes])
    assert len(tree) > 6  # Flower's own processes hang below the launchers
    monitored.down()
    wait_for(lambda: not pids_alive(tree), "every devnet process to exit", 30)
    assert "nothing was running" in ok(cli("devnet", "down", "--state-dir", str(monitored.root)))


# ------------------------------------------------- rotation, restart, resume from checkpoint


def test_rotated_certificates_and_a_restart_lose_no_completed_round(
    tmp_path: Path, mnist_path: Path
) -> None:
    net = Devnet(tmp_path / "state")
    common = ["--state-dir", str(net.root), *ANY_PORT[:6]]
    pids: list[int] = []
    try:
        ok(cli("devnet", "up", "--nodes", "3", "--rounds", "2", "--samples-per-node", "600",
               "--detach", "--data-dir", str(mnist_path), *common, timeout=300))  # fmt: skip
        pids = descendants([p.pid for p in net.record().processes])
        first = net.wait_rounds(1, timeout=300)[0]
        net.down()
        wait_for(lambda: not pids_alive(pids), "the devnet to stop", 30)
        done = Checkpoints(net.layout.aggregator / CHECKPOINT_DIR).rounds()
        assert done and done[-1] in (1, 2)

        serials = {n: open_pki(net.layout.pki).current(n).serial_number
                   for n in ("aggregator", "node-0", "node-1", "node-2")}  # fmt: skip
        ok(cli("certs", "rotate", "--dir", str(net.layout.pki), "--all", "--revoke-old"))
        rotated = open_pki(net.layout.pki)
        assert all(rotated.current(n).serial_number != s for n, s in serials.items())

        resumed = cli("devnet", "up", "--resume", "--stop-when-done", *common, timeout=400)
        out = ok(resumed)
        pids = []  # the foreground `up` stopped its processes itself
        rows = net.rounds()
        assert [r.round for r in rows] == [1, 2]
        assert (rows[0].timestamp, rows[0].accuracy) == (first.timestamp, first.accuracy)
        assert Checkpoints(net.layout.aggregator / CHECKPOINT_DIR).rounds() == [1, 2]
        if done[-1] == 1:  # round 2 was not finished before the restart: trained now
            assert "resuming after round 1 of 2" in out, out
            assert "round 2/2: accuracy" in out
            assert rows[1].participants == 3  # the nodes got in with their new certificates
        assert "refused TLS handshake" not in net.log("aggregator")
    finally:
        if net.layout.state_file.exists():
            cli("devnet", "down", "--state-dir", str(net.root))
        for pid in pids_alive(pids):
            os.kill(pid, 9)
