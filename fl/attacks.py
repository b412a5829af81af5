"""Byzantine behaviour a node can be switched into for testing.

Every attack acts on what the node sends: the update *delta* (new weights minus the global
weights it received), except ``label-flip`` which poisons the training data itself.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from fl.contract import ATTACK_MODES

HONEST: Final = "honest"
NUM_CLASSES: Final = 10


def validate_attack(mode: str, scale: float = 1.0) -> None:
    if mode not in ATTACK_MODES:
        raise ValueError(f"unknown attack mode {mode!r}; choose from {', '.join(ATTACK_MODES)}")
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"attack scale must be a positive number, got {scale}")


def poison_labels(labels: np.ndarray, mode: str) -> np.ndarray:
    """``label-flip`` trains on permuted labels (y → 9 − y); other modes leave them alone."""
    return (NUM_CLASSES - 1 - labels) if mode == "label-flip" else labels


def poison_delta(
    delta: np.ndarray, mode: str, *, scale: float = 1.0, rng: np.random.Generator | None = None
) -> np.ndarray:
    """The update delta a node in ``mode`` sends instead of its honest ``delta``.

    - ``sign-flip``: ``-scale * delta`` (the negated update, optionally amplified);
    - ``gaussian``: a random Gaussian vector with the same norm as ``delta`` (× scale);
    - ``free-rider``: the zero update (takes the reward, contributes nothing);
    - ``honest`` and ``label-flip``: unchanged.
    """
    validate_attack(mode, scale)
    if mode == "sign-flip":
        return (-scale * delta).astype(delta.dtype)
    if mode == "gaussian":
        rng = rng or np.random.default_rng()
        noise = rng.standard_normal(delta.shape)
        norm = float(np.linalg.norm(noise))
        target = scale * float(np.linalg.norm(delta))
        return (noise * (target / norm if norm > 0 else 0.0)).astype(delta.dtype)
    if mode == "free-rider":
        return np.zeros_like(delta)
    return delta
