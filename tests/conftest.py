"""Shared fixtures: the offline MNIST copy beside the project."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"


def mnist_dir() -> Path:
    env = os.environ.get("SM_DATA_DIR")
    return Path(env) if env else SHARED_MNIST


@pytest.fixture(scope="session")
def mnist_path() -> Path:
    path = mnist_dir()
    if not (path / "train-images-idx3-ubyte.gz").exists():
        pytest.fail(f"MNIST not found at {path}; set SM_DATA_DIR to the four IDX files")
    return path


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port that something already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]
