"""A running devnet, seen from the `devnet up` process: start, wait, follow, stop."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

from fl.devnet.layout import DevnetRecord, Layout, ProcessRecord, RecordError
from fl.devnet.processes import alive, spawn, stop, tail
from fl.devnet.progress import completed_rounds, round_line, run_info, run_line

__all__ = ["Devnet", "run_finished"]

AGGREGATOR = "aggregator"
POLL_S = 1.0

Echo = Callable[[str], None]


def run_finished(info: Mapping[str, Any] | None) -> bool | None:
    """None while the run goes on; else whether it completed."""
    status = str((info or {}).get("status", ""))
    if status == "complete" or status.endswith(":completed"):
        return True
    if status.startswith("finished") or status == "ended":
        return False
    return None


class Devnet:
    """The processes of one `devnet up`, recorded in ``devnet.json`` as they start."""

    def __init__(self, layout: Layout, record: DevnetRecord, echo: Echo = click.echo) -> None:
        self.layout = layout
        self.record = record
        self.echo = echo
        self._popens: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> ProcessRecord:
        record, process = spawn(name, argv, self.layout.log(name), env, self.layout.root)
        self._popens[record.pid] = process
        self.record.processes.append(record)
        self.record.save(self.layout)
        return record

    def process(self, name: str) -> ProcessRecord:
        return next(p for p in self.record.processes if p.name == name)

    def _reap(self) -> None:
        for process in self._popens.values():
            process.poll()

    def stop(self) -> list[ProcessRecord]:
        """Stop every process (all groups at once); record it."""
        stopped = stop(self.record.processes, reap=self._reap)
        self.record.stopped_at = time.time()
        self.record.save(self.layout)
        return stopped

    def _check_aggregator(self) -> None:
        aggregator = self.process(AGGREGATOR)
        if not alive(aggregator):
            raise click.ClickException(
                f"the aggregator exited; the end of {aggregator.log}:\n{tail(aggregator.log)}"
            )

    def wait_submitted(self, timeout: float) -> dict[str, Any]:
        """Wait until the aggregator has submitted the run (``run.json`` appears)."""
        deadline = time.monotonic() + timeout
        while (info := run_info(self.layout)) is None:
            self._check_aggregator()
            if time.monotonic() > deadline:
                log = self.process(AGGREGATOR).log
                raise click.ClickException(
                    f"the run was not submitted within {timeout:.0f} s; the end of {log}:\n"
                    f"{tail(log)}"
                )
            time.sleep(0.5)
        return info

    def _stopped_elsewhere(self) -> bool:
        try:
            return DevnetRecord.load(self.layout).stopped_at is not None
        except RecordError:
            return True

    def follow(self, planned: int, *, stop_when_done: bool) -> int:
        """Print each round as the metrics store records it, until the run ends (with
        ``stop_when_done``) or forever; return the exit status for `up`."""
        shown = {row.round for row in completed_rounds(self.layout)}
        if shown:
            self.echo(f"rounds already done: {max(shown)}")
        reported_dead: set[str] = set()
        announced = False
        while True:
            for row in completed_rounds(self.layout):
                if row.round not in shown:
                    shown.add(row.round)
                    self.echo(round_line(row, planned))
            if self._stopped_elsewhere():
                self.echo("the devnet was stopped (`devnet down`)")
                return 0
            self._check_aggregator()
            for process in self.record.processes:
                if process.name not in reported_dead and not alive(process):
                    reported_dead.add(process.name)
                    self.echo(
                        f"warning: {process.name} exited; the end of {process.log}:\n"
                        f"{tail(process.log, 8)}"
                    )
            info = run_info(self.layout)
            finished = run_finished(info)
            if finished is not None and not announced:
                announced = True
                self.echo(run_line(info))
                if not stop_when_done:
                    self.echo(
                        "the testnet keeps serving; Ctrl-C (or `sovereign-map devnet "
                        "down`) stops it"
                    )
            if finished is not None and stop_when_done:
                return 0 if finished else 1
            time.sleep(POLL_S)
