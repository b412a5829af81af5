"""The child processes of a launcher: started together, watched, stopped together.

``sovereign-map aggregator`` and ``sovereign-map node`` are small supervisors: they check
their configuration, start Flower's processes as children (through ``fl.launch.mtls``)
and stay in the foreground. On SIGTERM or SIGINT (``docker stop``, Kubernetes, Ctrl-C,
``devnet down``) they stop every child and the processes those started — SIGTERM first,
SIGKILL after a grace period — so nothing outlives them.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from types import FrameType

from fl.launch.procfs import descendants, is_running

__all__ = ["Child", "Children", "Stop", "shielded", "stop_signals"]

log = logging.getLogger("sovereign_map.launch")

GRACE_S = 10.0


class Stop(Exception):  # noqa: N818 (a request, not an error)
    """SIGTERM or SIGINT arrived: stop the children and exit."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def stop_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into :class:`Stop` in the main thread for the block."""

    def handler(signum: int, _frame: FrameType | None) -> None:
        raise Stop(signum)

    saved = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, previous in saved.items():
            signal.signal(signum, previous)


@contextmanager
def shielded() -> Iterator[None]:
    """Ignore SIGTERM and SIGINT for the block (while stopping, within the grace period)."""
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, previous in saved.items():
            signal.signal(signum, previous)


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> int | None:
        return self.process.poll()


class Children:
    """Processes started by this launcher (same process group, output inherited)."""

    def __init__(self, grace: float = GRACE_S) -> None:
        self.grace = grace
        self._children: list[Child] = []

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Child:
        log.info("starting %s", name)
        process = subprocess.Popen(list(argv), env=dict(env) if env is not None else None)
        child = Child(name, process)
        self._children.append(child)
        return child

    def __iter__(self) -> Iterator[Child]:
        return iter(list(self._children))

    def stop(self, child: Child) -> int:
        """Stop ``child`` and everything it started; return its exit status."""
        tree = [(s.pid, s.start) for s in descendants(child.pid)]
        if child.exited() is None:
            child.process.send_signal(signal.SIGTERM)
            try:
                child.process.wait(timeout=self.grace)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s; killing it", child.name, self.grace)
                child.process.kill()
                child.process.wait()
        deadline = time.monotonic() + self.grace
        while any(is_running(p, s) for p, s in tree) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid, started in tree:
            if is_running(pid, started):
                log.warning("killing pid %d, left behind by %s", pid, child.name)
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        if child in self._children:
            self._children.remove(child)
        code = child.process.returncode
        return code if code is not None else 0

    def stop_all(self) -> None:
        """Stop every child, the last started first."""
        for child in reversed(list(self._children)):
            self.stop(child)
