"""Where a devnet keeps its things, and the record of what it started (``devnet.json``).

::

    STATE/devnet.json          options, ports and the processes of the last `up`
    STATE/pki/                 the devnet's CA and certificates (``certs`` layout)
    STATE/aggregator/          the aggregator's state: superlink.db, checkpoints/,
                               metrics.sqlite (read by the metrics API), run.json
    STATE/nodes/node-<i>/      each node's state: its fit log (metrics) and Flower home
    STATE/logs/<name>.log      one log per process (aggregator, node-<i>, metrics-api, …)
    STATE/attacks.json         node id -> attack mode of the Byzantine nodes
    STATE/monitoring/          rendered Prometheus configuration (--monitoring)
    STATE/prometheus/          Prometheus' TSDB (--monitoring)
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fl.contract import METRICS_DB_FILE

__all__ = ["DevnetRecord", "Layout", "ProcessRecord", "RecordError"]

STATE_FILE = "devnet.json"
RECORD_FORMAT = 1


class RecordError(Exception):
    """``devnet.json`` is missing or unreadable (the message says which)."""


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / STATE_FILE

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def aggregator(self) -> Path:
        return self.root / "aggregator"

    @property
    def metrics_store(self) -> Path:
        return self.aggregator / METRICS_DB_FILE

    def node(self, node_id: str) -> Path:
        return self.root / "nodes" / node_id

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    @property
    def attacks(self) -> Path:
        return self.root / "attacks.json"

    @property
    def monitoring(self) -> Path:
        return self.root / "monitoring"

    @property
    def prometheus_data(self) -> Path:
        return self.root / "prometheus"


@dataclass
class ProcessRecord:
    """One process `up` started; it leads its own process group (``pgid == pid``)."""

    name: str
    pid: int
    start: int | None  # start time in clock ticks (tells it from a later process with its pid)
    log: str
    argv: list[str]


@dataclass
class DevnetRecord:
    """What ``devnet.json`` holds."""

    options: dict[str, Any]
    ports: dict[str, Any]
    started_at: float = field(default_factory=time.time)
    stopped_at: float | None = None
    processes: list[ProcessRecord] = field(default_factory=list)
    format: int = RECORD_FORMAT

    def save(self, layout: Layout) -> None:
        layout.root.mkdir(parents=True, exist_ok=True)
        tmp = layout.state_file.with_name(STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, layout.state_file)

    @classmethod
    def load(cls, layout: Layout) -> DevnetRecord:
        try:
            raw = json.loads(layout.state_file.read_text())
        except FileNotFoundError:
            raise RecordError(
                f"no devnet in {layout.root} (start one with `sovereign-map devnet up`)"
            ) from None
        except (OSError, json.JSONDecodeError) as exc:
            raise RecordError(f"cannot read {layout.state_file}: {exc}") from None
        try:
            if raw.get("format") != RECORD_FORMAT:
                raise RecordError(f"{layout.state_file} has an unknown format {raw.get('format')}")
            processes = [ProcessRecord(**p) for p in raw.pop("processes", [])]
            return cls(processes=processes, **raw)
        except (TypeError, AttributeError) as exc:
            raise RecordError(f"{layout.state_file} is not a devnet record ({exc})") from None
