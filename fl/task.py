"""Models, local (DP-)training and evaluation — the ML task every node and the server share.

Layout after Flower's ``quickstart-pytorch`` ``task.py``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from fl.data import Split


# ------------------------------------------------------------------------------ models
class CompactCNN(nn.Module):
    """The default: Opacus' MNIST example network, 26,010 parameters.

    DP-SGD's noise is added per parameter, so a small model loses far less accuracy to it.
    Tanh activations and no batch norm, as Opacus requires and recommends.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 8, stride=2, padding=3)
        self.conv2 = nn.Conv2d(16, 32, 4, stride=2)
        self.fc1 = nn.Linear(32 * 4 * 4, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.conv1(x))  # 14x14
        x = nn.functional.max_pool2d(x, 2, 1)  # 13x13
        x = torch.tanh(self.conv2(x))  # 5x5
        x = nn.functional.max_pool2d(x, 2, 1)  # 4x4
        x = x.flatten(1)
        return self.fc2(torch.tanh(self.fc1(x)))


class OriginalCNN(nn.Module):
    """The original system's CNN: conv 32 → conv 64 → max-pool → fc 128 → fc 10 (1,199,882
    parameters). Dropout is left out (it does nothing useful under DP noise)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


MODELS: dict[str, Callable[[], nn.Module]] = {"compact": CompactCNN, "original": OriginalCNN}
DEFAULT_MODEL = "compact"


def build_model(name: str = DEFAULT_MODEL, seed: int = 0) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    torch.manual_seed(seed)
    return MODELS[name]()


# ------------------------------------------------------------------ weights <-> numpy
def get_weights(model: nn.Module) -> OrderedDict[str, np.ndarray]:
    return OrderedDict((k, v.detach().cpu().numpy().copy()) for k, v in model.state_dict().items())


def set_weights(model: nn.Module, weights: dict[str, np.ndarray]) -> None:
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in weights.items()})


def flatten(weights: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([np.asarray(v, dtype=np.float32).ravel() for v in weights.values()])


def unflatten(vector: np.ndarray, like: dict[str, np.ndarray]) -> OrderedDict[str, np.ndarray]:
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    offset = 0
    for key, ref in like.items():
        size = int(np.prod(ref.shape))
        out[key] = vector[offset : offset + size].reshape(ref.shape).astype(ref.dtype)
        offset += size
    if offset != vector.size:
        raise ValueError(f"vector of {vector.size} values does not fit {offset} parameters")
    return out


# ------------------------------------------------------------------------ training
@dataclass(frozen=True)
class DPConfig:
    """DP-SGD settings. ``noise_multiplier`` None with ``target_epsilon`` set: Opacus picks
    the noise so that ``planned_steps`` steps spend exactly ``target_epsilon``."""

    noise_multiplier: float | None = 1.0
    max_grad_norm: float = 1.0
    delta: float = 1e-5
    target_epsilon: float | None = None
    epsilon_budget: float | None = None  # stop contributing beyond this ε (default: target)

    @property
    def budget(self) -> float | None:
        return self.epsilon_budget if self.epsilon_budget is not None else self.target_epsilon


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 1
    batch_size: int = 64
    lr: float = 0.5
    momentum: float = 0.0
    dp: DPConfig | None = field(default_factory=DPConfig)


# (noise_multiplier, sample_rate, steps) — the RDP accountant's history format.
AccountantHistory = list[tuple[float, float, int]]


@dataclass(frozen=True)
class TrainResult:
    loss: float
    steps: int
    examples: int
    seconds: float
    epsilon: float  # cumulative ε after this round (0 without DP)
    history: AccountantHistory
    noise_multiplier: float


def _epsilon(history: AccountantHistory, delta: float) -> float:
    from opacus.accountants import RDPAccountant

    if not history:
        return 0.0
    accountant = RDPAccountant()
    accountant.history = list(history)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "optimal order is the largest alpha": a looser bound
        return float(accountant.get_epsilon(delta))


def projected_epsilon(
    history: AccountantHistory,
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
) -> float:
    """ε the node would have spent after ``steps`` more steps — checked before training."""
    return _epsilon([*history, (noise_multiplier, sample_rate, steps)], delta)


def resolve_noise_multiplier(dp: DPConfig, sample_rate: float, planned_steps: int) -> float:
    if dp.noise_multiplier is not None:
        return dp.noise_multiplier
    if dp.target_epsilon is None:
        raise ValueError("DP needs a noise multiplier or a target epsilon")
    from opacus.accountants.utils import get_noise_multiplier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sigma = get_noise_multiplier(
            target_epsilon=dp.target_epsilon,
            target_delta=dp.delta,
            sample_rate=sample_rate,
            steps=planned_steps,
            accountant="rdp",
        )
    return float(sigma)


def steps_per_epoch(examples: int, batch_size: int) -> int:
    """Steps in one epoch — as Opacus counts them: the length of the (non-private) data
    loader, whose inverse is the Poisson sampling rate."""
    return max(1, math.ceil(examples / batch_size))


def sample_rate(examples: int, batch_size: int) -> float:
    return 1.0 / steps_per_epoch(examples, batch_size)


def train(
    model: nn.Module,
    data: Split,
    config: TrainConfig,
    *,
    history: AccountantHistory | None = None,
    noise_multiplier: float | None = None,
    seed: int = 0,
) -> TrainResult:
    """Train ``model`` in place for ``config.epochs`` epochs on ``data``.

    With DP (the default): Opacus DP-SGD with Poisson sampling, per-sample clipping to
    ``max_grad_norm`` and Gaussian noise; the RDP accountant starts from ``history`` (the
    node's earlier rounds) so the returned ε is cumulative.
    """
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    dataset = TensorDataset(torch.from_numpy(data.images), torch.from_numpy(data.labels))
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    history = list(history or [])
    sigma = 0.0
    engine = None
    dp = config.dp
    if dp is not None:
        from opacus import PrivacyEngine

        sigma = noise_multiplier if noise_multiplier is not None else dp.noise_multiplier
        if sigma is None:
            raise ValueError("resolve the noise multiplier first (resolve_noise_multiplier)")
        model.train()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "secure RNG turned off": seeded for determinism
            engine = PrivacyEngine(accountant="rdp")
            engine.accountant.history = list(history)
            model, optimizer, loader = engine.make_private(
                module=model,
                optimizer=optimizer,
                data_loader=loader,
                noise_multiplier=sigma,
                max_grad_norm=dp.max_grad_norm,
                noise_generator=torch.Generator().manual_seed(seed + 1),
            )
    criterion = nn.CrossEntropyLoss()
    model.train()
    start = time.perf_counter()
    total_loss, batches, steps = 0.0, 0, 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(config.epochs):
            for images, labels in loader:
                optimizer.zero_grad(set_to_none=True)
                if len(labels) == 0:  # Poisson sampling can draw an empty batch
                    optimizer.step()
                    steps += 1
                    continue
                loss = criterion(model(images), labels)
                loss.backward()
                optimizer.step()
                total_loss += float(loss.detach())
                batches += 1
                steps += 1
    seconds = time.perf_counter() - start
    epsilon = 0.0
    if engine is not None and dp is not None:
        _strip_opacus(model)
        if sigma > 0:
            history = list(engine.accountant.history)
            epsilon = float(engine.accountant.get_epsilon(dp.delta))
        else:  # clipping without noise (the server's root update): no privacy at all
            epsilon = float("inf")
    return TrainResult(
        loss=total_loss / max(batches, 1),
        steps=steps,
        examples=len(data),
        seconds=seconds,
        epsilon=epsilon,
        history=history,
        noise_multiplier=float(sigma),
    )


def _strip_opacus(model: nn.Module) -> None:
    """make_private wraps the module in place via hooks; remove them so the plain weights
    can be read back (GradSampleModule shares parameters with the original module)."""
    remove = getattr(model, "_close", None)
    if callable(remove):
        remove()


@torch.no_grad()
def evaluate(model: nn.Module, data: Split, batch_size: int = 2000) -> tuple[float, float]:
    """(accuracy in percent, mean cross-entropy loss) on ``data``."""
    model.eval()
    criterion = nn.CrossEntropyLoss(reduction="sum")
    correct, loss = 0, 0.0
    for start in range(0, len(data), batch_size):
        images = torch.from_numpy(data.images[start : start + batch_size])
        labels = torch.from_numpy(data.labels[start : start + batch_size])
        logits = model(images)
        loss += float(criterion(logits, labels))
        correct += int((logits.argmax(1) == labels).sum())
    return 100.0 * correct / len(data), loss / len(data)
