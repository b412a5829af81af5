"""MNIST from the canonical IDX files, verified by checksum, and its partitioning across nodes.

Where the files come from, in order: an explicit directory (a CLI flag), the directory in
``$SM_DATA_DIR``, else a per-user cache that is filled by downloading the canonical files.
Every file is verified by the SHA-256 of its *decompressed* bytes, so a re-compressed copy
(as in ``../shared/data/mnist``) and the canonical ``.gz`` both pass.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from fl.contract import ENV_DATA_DIR

# file stem -> (SHA-256 of the decompressed IDX bytes, IDX magic number)
MNIST_FILES: dict[str, tuple[str, int]] = {
    "train-images-idx3-ubyte": (
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        2051,
    ),
    "train-labels-idx1-ubyte": (
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        2049,
    ),
    "t10k-images-idx3-ubyte": (
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        2051,
    ),
    "t10k-labels-idx1-ubyte": (
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        2049,
    ),
}
# Mirrors of the canonical files (yann.lecun.com itself no longer serves them reliably).
MNIST_MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
# Normalisation constants used by torchvision's and Opacus' MNIST examples.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


class DataError(RuntimeError):
    """MNIST could not be found, downloaded or verified; the message says what to do."""


@dataclass(frozen=True)
class Split:
    """Images as float32 [n, 1, 28, 28] (normalised) and labels as int64 [n]."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, indices: np.ndarray) -> Split:
        return Split(self.images[indices], self.labels[indices])


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sovereign-map" / "mnist"


def resolve_data_dir(explicit: str | Path | None = None) -> tuple[Path, bool]:
    """Return (directory, may_download). Explicit and environment directories are never
    written to: they must already hold the files."""
    if explicit:
        return Path(explicit), False
    if env := os.environ.get(ENV_DATA_DIR):
        return Path(env), False
    return default_cache_dir(), True


def _find(directory: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def _read_verified(path: Path, stem: str) -> bytes:
    expected, _ = MNIST_FILES[stem]
    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, gzip.BadGzipFile, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise DataError(
            f"{path} fails its checksum (sha256 of the decompressed bytes is {digest},"
            f" expected {expected}); delete it and let it download again, or point"
            f" --data-dir / ${ENV_DATA_DIR} at a good copy"
        )
    return data


def download_file(
    stem: str,
    directory: Path,
    *,
    mirrors: tuple[str, ...] = MNIST_MIRRORS,
    attempts: int = 3,
    timeout: float = 30.0,
    opener: Callable[..., object] = urllib.request.urlopen,
    sleep: Callable[[float], None] = time.sleep,
) -> Path:
    """Download ``stem``.gz from the first mirror that answers, verify it, and move it into
    place atomically. Retries each mirror with exponential back-off."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{stem}.gz"
    errors: list[str] = []
    for mirror in mirrors:
        url = f"{mirror}{stem}.gz"
        for attempt in range(attempts):
            try:
                with opener(url, timeout=timeout) as response:  # type: ignore[attr-defined]
                    payload = response.read()
                tmp = target.with_suffix(".gz.part")
                tmp.write_bytes(payload)
                _read_verified(tmp, stem)
                tmp.replace(target)
                return target
            except (urllib.error.URLError, OSError, DataError) as exc:
                errors.append(f"{url} (try {attempt + 1}): {exc}")
                if attempt + 1 < attempts:
                    sleep(2.0**attempt)
    raise DataError(
        f"could not download MNIST file {stem}.gz — are you offline?\n  "
        + "\n  ".join(errors)
        + "\nPlace the four MNIST IDX files in a directory and pass --data-dir"
        + f" or set ${ENV_DATA_DIR}."
    )


def _parse_idx(data: bytes, magic: int) -> np.ndarray:
    header = np.frombuffer(data[:4], dtype=">i4")[0]
    if header != magic:
        raise DataError(f"not an IDX file with magic {magic}")
    ndim = magic & 0xFF
    dims = np.frombuffer(data[4 : 4 + 4 * ndim], dtype=">i4")
    return np.frombuffer(data[4 + 4 * ndim :], dtype=np.uint8).reshape(tuple(int(d) for d in dims))


def load_raw(directory: str | Path | None = None) -> dict[str, np.ndarray]:
    """The four MNIST arrays (uint8), verified, keyed by file stem."""
    path, may_download = resolve_data_dir(directory)
    arrays: dict[str, np.ndarray] = {}
    for stem, (_, magic) in MNIST_FILES.items():
        found = _find(path, stem)
        if found is None:
            if not may_download:
                raise DataError(
                    f"MNIST file {stem}(.gz) not found in {path}; expected the four canonical"
                    " IDX files there"
                )
            found = download_file(stem, path)
        arrays[stem] = _parse_idx(_read_verified(found, stem), magic)
    return arrays


def _normalise(images: np.ndarray) -> np.ndarray:
    scaled = images.astype(np.float32) / 255.0
    return ((scaled - MNIST_MEAN) / MNIST_STD)[:, None, :, :]


@lru_cache(maxsize=4)
def load_mnist(directory: str | None = None) -> tuple[Split, Split]:
    """(train, test) splits, normalised. Cached per directory within a process."""
    raw = load_raw(directory)
    train = Split(
        _normalise(raw["train-images-idx3-ubyte"]), raw["train-labels-idx1-ubyte"].astype(np.int64)
    )
    test = Split(
        _normalise(raw["t10k-images-idx3-ubyte"]), raw["t10k-labels-idx1-ubyte"].astype(np.int64)
    )
    return train, test


# ------------------------------------------------------------------------ partitioning
def partition_indices(
    labels: np.ndarray,
    num_nodes: int,
    *,
    scheme: str = "iid",
    alpha: float = 0.5,
    seed: int = 0,
    min_size: int = 10,
) -> list[np.ndarray]:
    """Split ``range(len(labels))`` into ``num_nodes`` disjoint shuffled index arrays.

    ``iid``: a seeded permutation cut into near-equal parts. ``dirichlet``: label skew —
    for every class, its samples are divided among nodes in proportions drawn from
    Dirichlet(alpha); redrawn (deterministically) until every node has ``min_size`` samples.
    Node i gets partition i; the same arguments always give the same partitions.
    """
    n = int(labels.shape[0])
    if num_nodes < 1:
        raise ValueError("num_nodes must be at least 1")
    if num_nodes * max(min_size, 1) > n:
        raise ValueError(f"cannot split {n} samples into {num_nodes} partitions")
    rng = np.random.default_rng(seed)
    if scheme == "iid":
        return [np.sort(part) for part in np.array_split(rng.permutation(n), num_nodes)]
    if scheme != "dirichlet":
        raise ValueError(f"unknown partition scheme {scheme!r} (iid or dirichlet)")
    if alpha <= 0:
        raise ValueError("alpha must be > 0")
    classes = np.unique(labels)
    for _ in range(1000):
        parts: list[list[np.ndarray]] = [[] for _ in range(num_nodes)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(labels == c))
            proportions = rng.dirichlet(np.full(num_nodes, alpha))
            cuts = (np.cumsum(proportions)[:-1] * len(idx)).astype(int)
            for node, chunk in enumerate(np.split(idx, cuts)):
                parts[node].append(chunk)
        result = [np.sort(np.concatenate(p)) for p in parts]
        if min(len(p) for p in result) >= min_size:
            return result
    raise ValueError(
        f"Dirichlet(alpha={alpha}) could not give every one of {num_nodes} nodes {min_size}"
        " samples; raise alpha or lower the node count"
    )


def node_partition(
    train: Split,
    partition_id: int,
    num_nodes: int,
    *,
    scheme: str = "iid",
    alpha: float = 0.5,
    seed: int = 0,
    samples_per_node: int | None = None,
) -> Split:
    """The training samples of node ``partition_id`` (optionally capped)."""
    if not 0 <= partition_id < num_nodes:
        raise ValueError(f"partition id {partition_id} outside 0..{num_nodes - 1}")
    parts = _cached_partitions(train.labels.tobytes(), num_nodes, scheme, alpha, seed)
    idx = parts[partition_id]
    if samples_per_node is not None:
        # A seeded sample (not a prefix) so label skew survives the cap.
        rng = np.random.default_rng([seed, partition_id])
        idx = np.sort(rng.permutation(idx)[:samples_per_node])
    return train.subset(idx)


@lru_cache(maxsize=8)
def _cached_partitions(
    labels_bytes: bytes, num_nodes: int, scheme: str, alpha: float, seed: int
) -> list[np.ndarray]:
    labels = np.frombuffer(labels_bytes, dtype=np.int64)
    return partition_indices(labels, num_nodes, scheme=scheme, alpha=alpha, seed=seed)


def root_dataset(train: Split, size: int = 100, *, seed: int = 0) -> Split:
    """The aggregator's small clean root set (for trust bootstrapping): a seeded, class-
    balanced sample of the training set held by the server. It may overlap node data, as
    in FLTrust; it is never drawn from the test set."""
    rng = np.random.default_rng([seed, 0x5EED])
    per_class = max(1, size // 10)
    idx = np.concatenate(
        [rng.choice(np.flatnonzero(train.labels == c), per_class, replace=False) for c in range(10)]
    )
    return train.subset(np.sort(idx))
