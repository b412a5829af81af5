"""The node's Prometheus metrics: the fit log the ClientApp writes, the collector that reads
it, the process-tree CPU/memory, and the HTTP endpoint a node serves."""

from __future__ import annotations

import math
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from fl.contract import (
    NODE_METRIC_EPSILON,
    NODE_METRIC_EXAMPLES,
    NODE_METRIC_FIT_ROUNDS,
    NODE_METRIC_STAKE,
    NODE_METRIC_TRAIN_DURATION,
    NODE_METRIC_TRAIN_LOSS,
    NODE_METRIC_UPDATE_BYTES,
)
from fl.launch.proc import free_port
from fl.launch.procfs import ProcessTreeCollector, read_stat
from fl.node_metrics import (
    FitLogCollector,
    FitRecord,
    metrics_file_of,
    node_registry,
    read_fit_log,
    record_fit,
)

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def _registry(path: Path, stake: float | None = None) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(FitLogCollector(path, stake=stake))
    return registry


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels or None)


def test_fits_become_counters_a_histogram_and_gauges(tmp_path: Path) -> None:
    log = tmp_path / "node" / "fits.jsonl"
    record_fit(log, FitRecord(round=1, examples=2000, loss=2.1, seconds=3.0, epsilon=2.5,
                              update_bytes=104_040))  # fmt: skip
    record_fit(log, FitRecord(round=2, examples=2000, loss=1.4, seconds=7.0, epsilon=3.3,
                              update_bytes=104_040))  # fmt: skip
    registry = _registry(log, stake=2.5)

    assert _value(registry, NODE_METRIC_FIT_ROUNDS) == 2
    assert _value(registry, NODE_METRIC_EXAMPLES) == 4000
    assert _value(registry, NODE_METRIC_UPDATE_BYTES) == 208_080
    assert _value(registry, f"{NODE_METRIC_TRAIN_DURATION}_count") == 2
    assert _value(registry, f"{NODE_METRIC_TRAIN_DURATION}_sum") == pytest.approx(10.0)
    assert _value(registry, f"{NODE_METRIC_TRAIN_DURATION}_bucket", le="5.0") == 1
    assert _value(registry, f"{NODE_METRIC_TRAIN_DURATION}_bucket", le="10.0") == 2
    assert _value(registry, NODE_METRIC_TRAIN_LOSS) == pytest.approx(1.4)  # the last fit
    assert _value(registry, NODE_METRIC_EPSILON) == pytest.approx(3.3)
    assert _value(registry, NODE_METRIC_STAKE) == 2.5
    assert [r.round for r in read_fit_log(log)] == [1, 2]


def test_each_line_is_counted_once_and_only_when_complete(tmp_path: Path) -> None:
    log = tmp_path / "fits.jsonl"
    registry = _registry(log)
    assert _value(registry, NODE_METRIC_FIT_ROUNDS) == 0  # no file yet: zeros, no error
    record_fit(log, FitRecord(1, 100, 2.0, 1.0, 1.0, 10))
    line = log.read_text()
    with log.open("a") as handle:
        handle.write(line[:20])  # a writer caught mid-line
    assert _value(registry, NODE_METRIC_EXAMPLES) == 100
    assert _value(registry, NODE_METRIC_EXAMPLES) == 100  # a second scrape adds nothing
    with log.open("a") as handle:
        handle.write(line[20:])
        handle.write("this is not json\n")
    assert _value(registry, NODE_METRIC_EXAMPLES) == 200
    assert _value(registry, NODE_METRIC_FIT_ROUNDS) == 2  # the malformed line is skipped


def test_a_node_out_of_budget_reports_its_epsilon_but_trains_nothing(tmp_path: Path) -> None:
    log = tmp_path / "fits.jsonl"
    record_fit(log, FitRecord(1, 500, 2.0, 2.0, 7.5, 10))
    record_fit(log, FitRecord(2, 0, math.nan, 0.0, 8.0, 0, "budget-exhausted"))
    registry = _registry(log)
    assert _value(registry, NODE_METRIC_FIT_ROUNDS) == 2
    assert _value(registry, NODE_METRIC_EXAMPLES) == 500
    assert _value(registry, f"{NODE_METRIC_TRAIN_DURATION}_count") == 1
    assert _value(registry, NODE_METRIC_TRAIN_LOSS) == 2.0
    assert _value(registry, NODE_METRIC_EPSILON) == 8.0


def test_recording_never_breaks_training(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    record_fit(None, FitRecord(1, 1, 1.0, 1.0, 1.0, 1))  # simulation: no fit log
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    record_fit(blocker / "fits.jsonl", FitRecord(1, 1, 1.0, 1.0, 1.0, 1))
    assert "cannot write the node's fit log" in caplog.text
    assert metrics_file_of({"metrics-file": "/x/fits.jsonl"}) == "/x/fits.jsonl"
    assert metrics_file_of({"partition-id": 0}) is None


@linux_only
def test_process_tree_cpu_includes_children_that_have_exited() -> None:
    burn = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end: pass"
    script = f"{sys.executable} -c '{burn}'; sleep 30"
    shell = subprocess.Popen(["sh", "-c", script])
    try:
        collector = ProcessTreeCollector(shell.pid)
        deadline = time.monotonic() + 20
        cpu = 0.0
        while time.monotonic() < deadline:
            samples = {m.name: m.samples[0].value for m in collector.collect()}
            cpu = samples["process_cpu_seconds"]  # (the family name drops "_total")
            stat = read_stat(shell.pid)
            assert stat is not None
            if cpu >= 0.55 and stat.child_cpu_ticks:  # the burner has exited and is counted
                break
            time.sleep(0.2)
        assert cpu >= 0.55, cpu
        assert samples["process_resident_memory_bytes"] > 0
    finally:
        shell.kill()
        shell.wait()


@linux_only
def test_the_node_endpoint_serves_process_and_training_metrics(tmp_path: Path) -> None:
    log = tmp_path / "fits.jsonl"
    record_fit(log, FitRecord(1, 1000, 2.2, 1.9, 3.8, 104_040))
    port = free_port()
    server, thread = start_http_server(port, "127.0.0.1",
                                       registry=node_registry(log, stake=1.0))  # fmt: skip
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
    finally:
        server.shutdown()
        thread.join(timeout=5)
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
               if not s.labels}  # fmt: skip
    assert samples["process_cpu_seconds_total"] > 0
    assert samples["process_resident_memory_bytes"] > 10_000_000  # this Python, at least
    assert samples[NODE_METRIC_FIT_ROUNDS] == 1
    assert samples[NODE_METRIC_EXAMPLES] == 1000
    assert samples[NODE_METRIC_UPDATE_BYTES] == 104_040
    assert samples[NODE_METRIC_EPSILON] == pytest.approx(3.8)
