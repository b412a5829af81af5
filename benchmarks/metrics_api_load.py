"""Load test of the metrics API: the real `sovereign-map metrics-api` (waitress) process on
127.0.0.1, driven open-loop at a fixed request rate.

Requests are scheduled at exact times (rate R: one every 1/R s) and latency is measured from
the scheduled time, so a server (or client) that falls behind shows up as latency instead of
silently lowering the rate. Not part of the test suite.

    .venv/bin/python benchmarks/metrics_api_load.py --rate 500 --duration 20 \
        --markdown benchmarks/metrics_api_load.md
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fl.metrics_store import MetricsStore, NodeRoundRow, RoundRow  # noqa: E402

PATHS = ("/convergence", "/metrics_summary", "/health", "/metrics")


@dataclass(frozen=True)
class Sample:
    path: str
    scheduled: float
    sent: float
    done: float
    ok: bool


def fill_store(path: Path, rounds: int, nodes: int) -> None:
    """A store the size of a staging run: ``rounds`` rounds of ``nodes`` nodes each."""
    store = MetricsStore(path)
    t0 = time.time() - rounds * 60
    for n in range(1, rounds + 1):
        store.append(
            RoundRow(
                round=n,
                accuracy=min(99.0, 60 + 0.3 * n),
                loss=2.0 / n,
                duration_s=45.0,
                aggregation_s=0.05,
                participants=nodes - 2,
                rejected=1,
                flagged=1,
                exhausted=0,
                max_epsilon=0.05 * n,
                rule="fltrust",
                timestamp=t0 + 60 * n,
                nodes=[
                    NodeRoundRow(f"node-{i}", 0.05 * n, 1 / nodes, 1.0, 600, "accepted")
                    for i in range(nodes)
                ],
            )
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(store: Path, port: int, threads: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fl.cli",
            "metrics-api",
            "--store",
            str(store),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--threads",
            str(threads),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("metrics API did not start")


def worker(port: int, jobs: queue.Queue[tuple[float, str] | None], out: list[Sample]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while (job := jobs.get()) is not None:
        scheduled, path = job
        sent = time.perf_counter()
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        out.append(Sample(path, scheduled, sent, time.perf_counter(), ok))
    conn.close()


def drive(port: int, rate: float, duration: float, clients: int) -> tuple[list[Sample], float]:
    jobs: queue.Queue[tuple[float, str] | None] = queue.Queue()
    samples: list[Sample] = []
    pool = [
        threading.Thread(target=worker, args=(port, jobs, samples), daemon=True)
        for _ in range(clients)
    ]
    for thread in pool:
        thread.start()
    total = int(rate * duration)
    start = time.perf_counter() + 0.2
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        jobs.put((scheduled, PATHS[i % len(PATHS)]))
    for _ in pool:
        jobs.put(None)
    for thread in pool:
        thread.join()
    return samples, start


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1]


def report(samples: list[Sample], start: float, args: argparse.Namespace) -> str:
    elapsed = max(s.done for s in samples) - start
    latency = [(s.done - s.scheduled) * 1000 for s in samples]
    service = [(s.done - s.sent) * 1000 for s in samples]
    errors = sum(not s.ok for s in samples)
    lines = [
        f"- requested: {args.rate:g} requests/s for {args.duration:g} s "
        f"({int(args.rate * args.duration)} requests, round-robin over {', '.join(PATHS)})",
        f"- completed: {len(samples)} in {elapsed:.2f} s = **{len(samples) / elapsed:.1f} "
        f"requests/s**, errors: **{errors}**",
        "",
        "| latency (ms) | p50 | p95 | p99 | max |",
        "|---|---|---|---|---|",
        f"| from scheduled send time | {percentile(latency, 50):.2f} | "
        f"{percentile(latency, 95):.2f} | {percentile(latency, 99):.2f} | {max(latency):.2f} |",
        f"| service time (sent → body read) | {percentile(service, 50):.2f} | "
        f"{percentile(service, 95):.2f} | {percentile(service, 99):.2f} | {max(service):.2f} |",
        "",
        "| endpoint | requests | p50 ms | p99 ms |",
        "|---|---|---|---|",
    ]
    for path in PATHS:
        mine = [(s.done - s.scheduled) * 1000 for s in samples if s.path == path]
        lines.append(
            f"| {path} | {len(mine)} | {percentile(mine, 50):.2f} | {percentile(mine, 99):.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds")
    parser.add_argument("--server-threads", type=int, default=4, help="waitress threads")
    parser.add_argument("--clients", type=int, default=32, help="client connections")
    parser.add_argument("--rounds", type=int, default=200, help="rounds in the store")
    parser.add_argument("--nodes", type=int, default=50, help="nodes per round in the store")
    parser.add_argument("--markdown", type=Path, help="also write the result here")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "metrics.sqlite"
        fill_store(store, args.rounds, args.nodes)
        port = free_port()
        server = start_server(store, port, args.server_threads)
        try:
            samples, start = drive(port, args.rate, args.duration, args.clients)
        finally:
            server.terminate()
            server.wait(timeout=10)
    result = report(samples, start, args)
    result += (
        f"\n\nMachine load average (1 min) before / after the run: {load_before:.2f} / "
        f"{os.getloadavg()[0]:.2f}."
    )
    print(result)
    if args.markdown:
        command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
        args.markdown.write_text(
            "# Metrics API load test\n\n"
            f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
            f"{os.cpu_count()} CPUs (shared with other work), Python "
            f"{platform.python_version()}; server and load generator on the same machine.\n"
            f"Store: {args.rounds} rounds × {args.nodes} nodes. Server: `sovereign-map "
            f"metrics-api` (waitress, {args.server_threads} threads). Client: "
            f"{args.clients} keep-alive connections, open-loop schedule.\n\n"
            f"```\n{command}\n```\n\n{result}\n\n"
            "Notes: latency is measured from each request's scheduled send time, so any time "
            "the server (or the client, on the same CPUs) fell behind shows up in the tail. "
            "The API re-reads the store only when its files change, so a request costs a "
            "`stat` plus rendering; waitress runs 4 threads by default (the handlers are "
            "CPU-bound and share the GIL). Other jobs ran on the same 2 CPUs during this run "
            "(load average above), so the tail reflects that machine, not an idle one.\n"
        )


if __name__ == "__main__":
    main()
