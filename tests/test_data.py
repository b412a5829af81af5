"""MNIST loading, verification, download and partitioning."""

from __future__ import annotations

import gzip
import io
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from fl.data import (
    MNIST_FILES,
    DataError,
    download_file,
    load_mnist,
    load_raw,
    node_partition,
    partition_indices,
    root_dataset,
)


def test_loads_and_verifies_the_real_files(mnist_path: Path) -> None:
    train, test = load_mnist(str(mnist_path))
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.images.dtype == np.float32
    assert np.bincount(test.labels).tolist()[:3] == [980, 1135, 1032]  # canonical counts


def test_a_tampered_file_is_refused(tmp_path: Path, mnist_path: Path) -> None:
    for stem in MNIST_FILES:
        (tmp_path / f"{stem}.gz").write_bytes((mnist_path / f"{stem}.gz").read_bytes())
    labels = gzip.decompress((tmp_path / "t10k-labels-idx1-ubyte.gz").read_bytes())
    tampered = labels[:-1] + bytes([(labels[-1] + 1) % 10])
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(tampered))
    with pytest.raises(DataError, match="fails its checksum"):
        load_raw(tmp_path)


def test_missing_files_in_an_explicit_directory_say_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found in"):
        load_raw(tmp_path)


class _Response(io.BytesIO):
    def __enter__(self) -> _Response:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


def test_download_retries_then_verifies(tmp_path: Path, mnist_path: Path) -> None:
    good = (mnist_path / "t10k-labels-idx1-ubyte.gz").read_bytes()
    calls: list[str] = []

    def opener(url: str, timeout: float) -> _Response:
        calls.append(url)
        if len(calls) < 3:
            raise urllib.error.URLError("connection refused")
        return _Response(good)

    path = download_file("t10k-labels-idx1-ubyte", tmp_path, opener=opener, sleep=lambda s: None)
    assert path.read_bytes() == good and len(calls) == 3
    assert not list(tmp_path.glob("*.part"))


def test_download_offline_gives_a_clear_error(tmp_path: Path) -> None:
    def offline(url: str, timeout: float) -> _Response:
        raise urllib.error.URLError("Name or service not known")

    with pytest.raises(DataError, match="are you offline") as info:
        download_file("t10k-labels-idx1-ubyte", tmp_path, opener=offline, sleep=lambda s: None)
    assert "--data-dir" in str(info.value)
    assert not (tmp_path / "t10k-labels-idx1-ubyte.gz").exists()


def test_download_rejects_a_corrupt_payload(tmp_path: Path) -> None:
    def corrupt(url: str, timeout: float) -> _Response:
        return _Response(gzip.compress(b"not mnist"))

    with pytest.raises(DataError):
        download_file(
            "t10k-labels-idx1-ubyte", tmp_path, opener=corrupt, sleep=lambda s: None, attempts=1
        )
    assert not (tmp_path / "t10k-labels-idx1-ubyte.gz").exists()


LABELS = np.repeat(np.arange(10), 600)


def test_iid_partitions_are_disjoint_complete_and_deterministic() -> None:
    parts = partition_indices(LABELS, 7, seed=3)
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(len(LABELS)))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    again = partition_indices(LABELS, 7, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    other = partition_indices(LABELS, 7, seed=4)
    assert not np.array_equal(parts[0], other[0])


def test_dirichlet_partitions_are_label_skewed_and_deterministic() -> None:
    parts = partition_indices(LABELS, 10, scheme="dirichlet", alpha=0.1, seed=1)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(LABELS)))
    # with alpha=0.1 most nodes are dominated by one or two classes
    top_share = [np.bincount(LABELS[p], minlength=10).max() / len(p) for p in parts]
    assert np.median(top_share) > 0.5
    iid_share = [
        np.bincount(LABELS[p], minlength=10).max() / len(p)
        for p in partition_indices(LABELS, 10, seed=1)
    ]
    assert max(iid_share) < 0.2
    again = partition_indices(LABELS, 10, scheme="dirichlet", alpha=0.1, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


def test_bad_partition_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown partition scheme"):
        partition_indices(LABELS, 3, scheme="zipf")
    with pytest.raises(ValueError, match="cannot split"):
        partition_indices(LABELS[:20], 5)
    with pytest.raises(ValueError, match="alpha"):
        partition_indices(LABELS, 3, scheme="dirichlet", alpha=0)


def test_node_i_gets_partition_i_capped(mnist_path: Path) -> None:
    train, _ = load_mnist(str(mnist_path))
    full = node_partition(train, 2, 50)
    capped = node_partition(train, 2, 50, samples_per_node=100)
    assert len(full) == 1200 and len(capped) == 100
    whole = {tuple(x) for x in full.images[:, 0, 14, :].tolist()}
    assert all(tuple(x) in whole for x in capped.images[:, 0, 14, :].tolist())
    with pytest.raises(ValueError):
        node_partition(train, 50, 50)


def test_root_dataset_is_small_balanced_and_seeded(mnist_path: Path) -> None:
    train, _ = load_mnist(str(mnist_path))
    root = root_dataset(train, 200, seed=0)
    assert len(root) == 200 and np.bincount(root.labels).tolist() == [20] * 10
    assert np.array_equal(root.labels, root_dataset(train, 200, seed=0).labels)
