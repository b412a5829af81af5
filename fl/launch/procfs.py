"""What Linux's ``/proc`` says about processes: liveness, process groups and trees, CPU.

Launchers use it to know which processes of a process group are still running (a zombie
is not), to stop nothing but their own processes (a PID is matched with its start time),
and to report the CPU time and memory of a whole process tree (a node is a launcher, a
SuperNode, a SuperExec and a ClientApp process). Without ``/proc`` (not Linux) the
functions fall back to ``os.kill(pid, 0)`` or report nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = [
    "ProcStat",
    "ProcessTreeCollector",
    "descendants",
    "group_members",
    "is_running",
    "read_stat",
    "start_ticks",
]

PROC = Path("/proc")
_TICKS = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` launchers need."""

    pid: int
    state: str  # R S D Z T …
    ppid: int
    pgid: int
    cpu_ticks: int  # utime + stime
    child_cpu_ticks: int  # cutime + cstime: CPU of children it has waited for
    start: int  # start time, clock ticks after boot
    rss_pages: int

    @property
    def zombie(self) -> bool:
        return self.state in ("Z", "X")


def read_stat(pid: int) -> ProcStat | None:
    """``/proc/<pid>/stat``, or None when there is no such process (or no /proc)."""
    try:
        raw = (PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses.
    rest = raw[raw.rfind(b")") + 2 :].split()
    try:
        return ProcStat(
            pid=pid,
            state=rest[0].decode(),
            ppid=int(rest[1]),
            pgid=int(rest[2]),
            cpu_ticks=int(rest[11]) + int(rest[12]),
            child_cpu_ticks=int(rest[13]) + int(rest[14]),
            start=int(rest[19]),
            rss_pages=int(rest[21]),
        )
    except (IndexError, ValueError):
        return None


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started (to tell it from a later process that reuses the PID)."""
    stat = read_stat(pid)
    return stat.start if stat else None


def is_running(pid: int, started: int | None = None) -> bool:
    """``pid`` exists, is not a zombie and (when ``started`` is given) is the same process."""
    if PROC.is_dir():
        stat = read_stat(pid)
        if stat is None or stat.zombie:
            return False
        return started is None or stat.start == started
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _all_stats() -> Iterator[ProcStat]:
    try:
        entries = list(PROC.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name.isdigit() and (stat := read_stat(int(entry.name))) is not None:
            yield stat


def group_members(pgid: int) -> list[int]:
    """Running (non-zombie) processes of process group ``pgid``."""
    if not PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    return sorted(s.pid for s in _all_stats() if s.pgid == pgid and not s.zombie)


def descendants(pid: int, stats: Iterable[ProcStat] | None = None) -> list[ProcStat]:
    """Every process below ``pid`` (children, grandchildren, …), zombies included."""
    by_parent: dict[int, list[ProcStat]] = {}
    for stat in _all_stats() if stats is None else stats:
        by_parent.setdefault(stat.ppid, []).append(stat)
    found: list[ProcStat] = []
    todo = [pid]
    while todo:
        for child in by_parent.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


class ProcessTreeCollector(Collector):
    """``process_cpu_seconds_total`` and ``process_resident_memory_bytes`` of a process tree.

    Like ``prometheus_client``'s ``ProcessCollector``, but for this process and everything
    it started: CPU time counts the live processes and the children they have reaped (so
    it does not fall when a ClientApp process exits); memory is the RSS of the live ones.
    """

    def __init__(self, pid: int | None = None) -> None:
        self.pid = os.getpid() if pid is None else pid

    def collect(self) -> Iterable[Metric]:
        root = read_stat(self.pid)
        if root is None:
            return []
        tree = [root, *descendants(self.pid)]
        cpu = sum(s.cpu_ticks + s.child_cpu_ticks for s in tree) / _TICKS
        rss = sum(s.rss_pages for s in tree if not s.zombie) * _PAGE
        return [
            CounterMetricFamily(
                "process_cpu_seconds_total",
                "User and system CPU time of the node's processes, in seconds.",
                value=cpu,
            ),
            GaugeMetricFamily(
                "process_resident_memory_bytes",
                "Resident memory of the node's processes, in bytes.",
                value=rss,
            ),
        ]
