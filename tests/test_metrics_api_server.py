"""The metrics API behind the real waitress server, and the ``metrics-api`` command."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from fl.metrics_api import create_app
from fl.metrics_api.cli import metrics_api, resolve_store
from fl.metrics_api.server import BackgroundServer
from tests.test_metrics_api import fill_store

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[int]:
    store = tmp_path / "metrics.sqlite"
    fill_store(store, 5)
    background = BackgroundServer(create_app(store), "127.0.0.1", 0, threads=4)
    with background as port:
        yield port
    assert not background.thread.is_alive()


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def raw(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server refused (e.g. a too-large header) and hung up first
            pass
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:  # the server may hang up on a request it refused
            pass
    return b"".join(chunks)


def test_waitress_serves_the_endpoints(served: int) -> None:
    status, body = get(served, "/convergence")
    assert status == 200
    assert json.loads(body)["rounds"] == [1, 2, 3, 4, 5]
    status, body = get(served, "/metrics")
    assert status == 200 and b"sovereignmap_fl_round 5.0" in body


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00\xff\xfe garbage\r\n\r\n",
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000 + b"\r\n\r\n",
        b"GET /health HTTP/9.9\r\n\r\n",
        b"GET /health HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        b"GET /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 9999999\r\n\r\n" + b"x" * 1000,
        b"GET /health",  # never finished
    ],
)
def test_malformed_http_does_not_take_the_server_down(served: int, payload: bytes) -> None:
    answer = raw(served, payload)
    assert not answer.startswith((b"HTTP/1.1 5", b"HTTP/1.0 5")), answer[:200]
    assert get(served, "/health")[0] == 200  # still serving


def test_cli_help_explains_the_options() -> None:
    result = CliRunner().invoke(metrics_api, ["--help"])
    assert result.exit_code == 0
    for option in ("--store", "--port", "--host", "--cert-dir", "--attack-table", "SM_METRICS_DB"):
        assert option in result.output


def test_cli_refuses_a_bad_attack_table(tmp_path: Path) -> None:
    table = tmp_path / "attacks.yaml"
    table.write_text("node-1: teleport\n")
    result = CliRunner().invoke(
        metrics_api, ["--store", str(tmp_path / "m.sqlite"), "--attack-table", str(table)]
    )
    assert result.exit_code == 1
    assert "not an attack mode" in result.output
    assert "Traceback" not in result.output


def test_cli_reports_a_busy_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(
            metrics_api,
            ["--store", str(tmp_path / "m.sqlite"), "--host", "127.0.0.1", "--port", str(port)],
        )
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_cli_takes_settings_from_the_environment(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        metrics_api,
        [],
        env={"SM_METRICS_DB": str(tmp_path / "m.sqlite"), "SM_METRICS_API_PORT": "70000"},
    )
    assert result.exit_code == 2
    assert "70000" in result.output  # the env port was read and validated


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sovereign_map_metrics_api_command_serves(tmp_path: Path) -> None:
    store = tmp_path / "metrics.sqlite"
    fill_store(store, 3)
    port = free_port()
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
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                status, body = get(port, "/health")
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "metrics API did not come up"
                time.sleep(0.1)
        assert status == 200
        assert json.loads(body)["current_round"] == 3
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_needs_a_store(tmp_path: Path) -> None:
    result = CliRunner().invoke(metrics_api, [], env={"SM_METRICS_DB": None, "SM_STATE_DIR": None})
    assert result.exit_code == 2
    assert "--store" in result.output and "SM_STATE_DIR" in result.output


def test_store_defaults_to_the_aggregators_state_dir(tmp_path: Path) -> None:
    assert resolve_store(None, str(tmp_path)) == tmp_path / "metrics.sqlite"
    assert resolve_store(tmp_path / "x.sqlite", str(tmp_path)) == tmp_path / "x.sqlite"
