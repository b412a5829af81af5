"""Process plumbing for launchers: free ports, logging, and what child processes inherit.

Nothing here knows about Flower or TLS.
"""

from __future__ import annotations

import logging
import os
import shlex
import socket
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "check_port",
    "configure_logging",
    "free_port",
    "local_address",
    "prepend_path",
    "python_bin",
    "pythonpath_with_our_packages",
    "swapped_argv",
    "write_python_shims",
]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def check_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise ValueError(f"port must be between 1 and 65535, got {port}")
    return port


def local_address(host: str) -> str:
    """The address a client on this machine uses to reach a server bound to ``host``."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)


def configure_logging(name: str = "sovereign_map") -> None:
    """INFO logs of our loggers to stderr, unless the application configured logging."""
    logger = logging.getLogger(name)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def python_bin() -> str:
    """Directory of this interpreter (a venv's ``bin/``, where console scripts live)."""
    return str(Path(sys.executable).parent)


def prepend_path(*directories: str) -> None:
    """Put ``directories`` first on this process's (and its children's) ``PATH``."""
    rest = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p not in directories]
    os.environ["PATH"] = os.pathsep.join([*directories, *rest])


def pythonpath_with_our_packages(pythonpath: str | None) -> str:
    """A PYTHONPATH that lets child interpreters import ``fl`` and ``certs`` as we do."""
    import fl

    root = str(Path(fl.__file__).resolve().parent.parent)
    parts = [p for p in (pythonpath or "").split(os.pathsep) if p and p != root]
    return os.pathsep.join([root, *parts])


def write_python_shims(bin_dir: Path, commands: Sequence[str], module: str, verb: str) -> Path:
    """Write ``bin_dir/<command>`` scripts running ``python -m <module> <verb> <command> …``.

    Put ``bin_dir`` first on PATH and a child that runs ``<command>`` runs our wrapper
    instead, with this interpreter.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    python = shlex.quote(sys.executable)
    for command in commands:
        script = (
            "#!/bin/sh\n"
            f"# Written by {__name__}: run {command} through {module}.\n"
            f'exec {python} -m {module} {verb} {shlex.quote(command)} "$@"\n'
        )
        path = bin_dir / command
        tmp = bin_dir / f".{command}.tmp"
        tmp.write_text(script)
        tmp.chmod(0o755)
        tmp.replace(path)
    return bin_dir


@contextmanager
def swapped_argv(argv: Sequence[str]) -> Iterator[None]:
    """Run a block with ``sys.argv`` replaced (for commands that parse it themselves)."""
    saved = sys.argv
    sys.argv = list(argv)
    try:
        yield
    finally:
        sys.argv = saved
