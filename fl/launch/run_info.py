"""``STATE/run.json``: the run the aggregator submitted (id, status, rounds).

Written by ``sovereign-map aggregator``; read by the devnet (to know the run was submitted
and how it ended) and by anyone who wants the run id for ``flwr log``/``flwr stop``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from fl.contract import RUN_INFO_FILE

__all__ = ["read_run_info", "write_run_info"]


def read_run_info(state_dir: Path) -> dict[str, Any] | None:
    """What ``STATE/run.json`` says, or None when there is none (yet)."""
    try:
        data = json.loads((state_dir / RUN_INFO_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def write_run_info(
    state_dir: Path, *, run_id: int | None, status: str, start_round: int, rounds: int
) -> None:
    """Record the run (atomically). ``start_round``: rounds done before it began."""
    path = state_dir / RUN_INFO_FILE
    info = {
        "run_id": run_id,
        "status": status,
        "start_round": start_round,
        "rounds": rounds,
        "updated_at": time.time(),
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    os.replace(tmp, path)
