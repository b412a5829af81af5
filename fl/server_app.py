"""The aggregator's ServerApp: stake-weighted robust strategy, server-side evaluation on the
MNIST test set every round, a checkpoint per round, and the metrics store.

Runs under a SuperLink (``sovereign-map aggregator``, the devnet, the stacks) or Flower's
local simulation (``flwr run .``).
"""

from __future__ import annotations

import os
from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from fl.contract import ENV_STATE_DIR
from fl.federation import Federation
from fl.launch.proc import configure_logging
from fl.records import from_numpy
from fl.settings import RunSettings

app = ServerApp()


def state_dir_for(context: Context) -> Path:
    """Where checkpoints and the metrics store go: ``$SM_STATE_DIR`` (the aggregator's data
    volume), else a per-run directory in the user's state folder."""
    if env := os.environ.get(ENV_STATE_DIR):
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "sovereign-map" / f"run-{context.run_id}"


@app.main()
def main(grid: Grid, context: Context) -> None:
    configure_logging()  # per-round lines reach the run's log (`flwr log`, the aggregator)
    settings = RunSettings.from_run_config(context.run_config)
    federation = Federation(settings, state_dir=state_dir_for(context), resume=True)
    if federation.remaining_rounds == 0:
        return
    federation.strategy.start(
        grid=grid,
        initial_arrays=from_numpy(federation.initial_weights),
        num_rounds=federation.remaining_rounds,
        evaluate_fn=federation.evaluate,
    )
