"""`flwr run` on Flower's local simulation runs this project's ServerApp and ClientApp."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fl.metrics_store import MetricsStore

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kill_local_superlink(port: int) -> None:
    found = subprocess.run(
        ["pgrep", "-f", f"flower-superlink.*--port {port}"],
        capture_output=True,
        text=True,
        check=False,
    )
    for pid in found.stdout.split():
        os.kill(int(pid), signal.SIGTERM)


def test_flwr_run_local_simulation(tmp_path: Path, mnist_path: Path) -> None:
    home = tmp_path / "flwr"
    home.mkdir()
    (home / "config.toml").write_text(
        '[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = ":local:"\n'
        "options.num-supernodes = 3\n"
    )
    http_port, control_port = _free_port(), _free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
        "FLWR_HOME": str(home),
        "FLWR_LOCAL_SUPERLINK_HTTP_API_PORT": str(http_port),
        "FLWR_LOCAL_CONTROL_API_PORT": str(control_port),
        # the app's dependencies are this environment: no `uv sync` (and no network)
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "SM_DATA_DIR": str(mnist_path),
        "SM_STATE_DIR": str(tmp_path / "state"),
    }
    try:
        done = subprocess.run(
            [
                f"{bin_dir}/flwr",
                "run",
                str(REPO),
                "local",
                "--stream",
                "--run-config",
                "num-server-rounds=2 num-nodes=3 samples-per-node=1000 rule='fltrust'",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
            check=False,
        )
    finally:
        _kill_local_superlink(http_port)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "ServerApp-side Evaluate Metrics" in output, output[-3000:]
    rows = MetricsStore(tmp_path / "state" / "metrics.sqlite").rounds()
    assert [r.round for r in rows] == [1, 2]
    assert rows[-1].accuracy > rows[0].accuracy > 20 and rows[-1].participants == 3
    assert sorted(p.name for p in (tmp_path / "state" / "checkpoints").iterdir()) == [
        "round-0001.npz",
        "round-0002.npz",
    ]
