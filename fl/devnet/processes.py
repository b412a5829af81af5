"""Starting and stopping the devnet's processes.

Each process `up` starts leads a new session and process group, with its output in its
own log file; everything it starts (the SuperLink, SuperNodes, SuperExec, ServerApp and
ClientApp processes) stays in that group. Stopping a process sends SIGTERM to its whole
group, waits for the group to empty and then sends SIGKILL — nothing is left behind.
Before signalling, the recorded PID is matched with its start time, so a PID the system
gave to another process since is left alone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from fl.devnet.layout import ProcessRecord
from fl.launch.procfs import group_members, is_running, read_stat, start_ticks

__all__ = ["alive", "spawn", "stop", "tail"]

TERM_GRACE_S = 20.0
KILL_GRACE_S = 5.0


def spawn(
    name: str, argv: Sequence[str], log: Path, env: Mapping[str, str], cwd: Path
) -> tuple[ProcessRecord, subprocess.Popen[bytes]]:
    """Start ``argv`` in a new process group, appending its output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}\n".encode())
        out.flush()
        process = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    record = ProcessRecord(name, process.pid, start_ticks(process.pid), str(log), list(argv))
    return record, process


def alive(record: ProcessRecord) -> bool:
    """The recorded process still runs (and is the one we started)."""
    return is_running(record.pid, record.start)


def _group_is_ours(record: ProcessRecord) -> bool:
    """Whether process group ``record.pid`` is still the one `up` created."""
    if alive(record):
        return True
    stat = read_stat(record.pid)
    # The leader is gone; its group may live on. A new process with the leader's PID
    # (another start time, not a zombie) would mean the number was reused: not ours.
    return stat is None or stat.zombie or stat.start == record.start


def stop(
    records: Sequence[ProcessRecord],
    *,
    reap: Callable[[], None] | None = None,
    term_grace: float = TERM_GRACE_S,
) -> list[ProcessRecord]:
    """Stop the process groups of ``records`` together; return those that were running.

    SIGTERM to every group, then wait (up to ``term_grace``) for all of them to empty,
    then SIGKILL what is left. ``reap`` collects exited children of this process (the
    foreground `up`), which would otherwise linger as zombies.
    """
    running = [r for r in records if _group_is_ours(r) and group_members(r.pid)]
    for record in running:
        _signal_group(record.pid, signal.SIGTERM)
    _wait_empty(running, term_grace, reap)
    left = [r for r in running if group_members(r.pid)]
    for record in left:
        _signal_group(record.pid, signal.SIGKILL)
    _wait_empty(left, KILL_GRACE_S, reap)
    if reap:
        reap()
    return running


def _wait_empty(
    records: Sequence[ProcessRecord], timeout: float, reap: Callable[[], None] | None
) -> None:
    deadline = time.monotonic() + timeout
    while any(group_members(r.pid) for r in records) and time.monotonic() < deadline:
        if reap:
            reap()
        time.sleep(0.1)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def tail(path: Path | str, lines: int = 15) -> str:
    """The last ``lines`` lines of a log (for error messages)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
