"""Model checkpoints of the aggregator: one ``round-NNNN.npz`` per round in its state dir.

Written by the ServerApp (``fl.federation``); read by it on resume and by the aggregator
launcher, which needs to know the last completed round without loading the FL runtime.
"""

from __future__ import annotations

import json
import os
import re
from collections import OrderedDict
from pathlib import Path

import numpy as np

__all__ = ["KEEP_CHECKPOINTS", "Checkpoints"]

KEEP_CHECKPOINTS = 5


class Checkpoints:
    """One ``round-NNNN.npz`` per round (the last few kept), written atomically."""

    pattern = re.compile(r"round-(\d+)\.npz$")

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def save(
        self, server_round: int, weights: dict[str, np.ndarray], meta: dict[str, object]
    ) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"round-{server_round:04d}.npz"
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as handle:
            np.savez(
                handle, __meta__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), **weights
            )
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
        for old in self.rounds()[:-KEEP_CHECKPOINTS]:
            (self.directory / f"round-{old:04d}.npz").unlink(missing_ok=True)
        return path

    def rounds(self) -> list[int]:
        if not self.directory.is_dir():
            return []
        found = (self.pattern.match(p.name) for p in self.directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def load_latest(self) -> tuple[int, OrderedDict[str, np.ndarray], dict[str, object]] | None:
        rounds = self.rounds()
        if not rounds:
            return None
        with np.load(self.directory / f"round-{rounds[-1]:04d}.npz") as data:
            meta = json.loads(bytes(data["__meta__"]).decode())
            weights = OrderedDict((k, data[k]) for k in data.files if k != "__meta__")
        return rounds[-1], weights, meta
