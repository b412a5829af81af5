"""Run settings shared by the ServerApp, the ClientApp and ``simulate``.

Flower passes them as the run config (flat kebab-case keys, defaults in
``[tool.flwr.app.config]`` of pyproject.toml); :class:`RunSettings` validates them once.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from fl.contract import ATTACK_MODES, DEFAULT_RULE
from fl.task import DEFAULT_MODEL, MODELS, DPConfig, TrainConfig


class SettingsError(ValueError):
    """A setting is invalid; the message names it."""


@dataclass(frozen=True)
class RunSettings:
    num_server_rounds: int = 5
    num_nodes: int = 5
    rule: str = DEFAULT_RULE
    model: str = DEFAULT_MODEL
    partition: str = "iid"
    alpha: float = 0.5
    seed: int = 0
    samples_per_node: int = 0  # 0: the node's whole partition
    local_epochs: int = 1
    batch_size: int = 128
    lr: float = 1.0
    dp: bool = True
    noise_multiplier: float = 1.0  # 0 with target-epsilon > 0: derived from the target
    max_grad_norm: float = 1.0
    delta: float = 1e-5
    target_epsilon: float = 0.0  # 0: none
    epsilon_budget: float = 0.0  # 0: the target ε if set, else unlimited
    byzantine: int = 0  # nodes 0..byzantine-1 attack (simulation / flwr run)
    attack: str = "sign-flip"
    attack_scale: float = 1.0
    min_train_nodes: int = 0  # 0: all num-nodes
    max_update_norm: float = 100.0  # updates whose delta norm exceeds this are rejected
    root_size: int = 500  # server-held root samples (fltrust)
    stakes: str = ""  # "" equal; "node-0=2,node-1=1"; or a YAML/JSON file node-id -> stake
    data_dir: str = ""

    def __post_init__(self) -> None:
        from fl.aggregation import RULES

        checks: list[tuple[bool, str]] = [
            (self.num_server_rounds >= 1, "num-server-rounds must be at least 1"),
            (self.num_nodes >= 1, "num-nodes must be at least 1"),
            (self.rule in RULES, f"rule must be one of {', '.join(RULES)}"),
            (self.model in MODELS, f"model must be one of {', '.join(MODELS)}"),
            (self.partition in ("iid", "dirichlet"), "partition must be iid or dirichlet"),
            (self.alpha > 0, "alpha must be > 0"),
            (self.samples_per_node >= 0, "samples-per-node must be >= 0"),
            (self.local_epochs >= 1, "local-epochs must be at least 1"),
            (self.batch_size >= 1, "batch-size must be at least 1"),
            (self.lr > 0, "lr must be > 0"),
            (self.noise_multiplier >= 0, "noise-multiplier must be >= 0"),
            (
                not (self.dp and self.noise_multiplier == 0 and self.target_epsilon <= 0),
                "DP needs noise-multiplier > 0 or target-epsilon > 0",
            ),
            (self.max_grad_norm > 0, "max-grad-norm must be > 0"),
            (0 < self.delta < 1, "delta must be in (0, 1)"),
            (self.target_epsilon >= 0, "target-epsilon must be >= 0"),
            (self.epsilon_budget >= 0, "epsilon-budget must be >= 0"),
            (0 <= self.byzantine <= self.num_nodes, "byzantine must be between 0 and num-nodes"),
            (self.attack in ATTACK_MODES, f"attack must be one of {', '.join(ATTACK_MODES)}"),
            (self.attack_scale > 0, "attack-scale must be > 0"),
            (
                0 <= self.min_train_nodes <= self.num_nodes,
                "min-train-nodes must be between 0 and num-nodes",
            ),
            (self.max_update_norm > 0, "max-update-norm must be > 0"),
            (self.root_size >= 10, "root-size must be at least 10"),
        ]
        for ok, message in checks:
            if not ok:
                raise SettingsError(message)
        self.stake_table()  # validates

    # ------------------------------------------------------------------ conversions
    @classmethod
    def from_run_config(cls, config: Mapping[str, Any]) -> RunSettings:
        known = {f.name.replace("_", "-"): f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in config.items():
            field = known.get(key)
            if field is None:
                continue  # other apps' keys are not ours to judge
            values[field.name] = _coerce(key, value, field.type)
        return cls(**values)

    def to_run_config(self) -> dict[str, bool | int | float | str]:
        return {f.name.replace("_", "-"): getattr(self, f.name) for f in fields(self)}

    def replace(self, **changes: Any) -> RunSettings:
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ derived
    def attack_for(self, partition_id: int) -> str:
        """Nodes ``0 .. byzantine-1`` run the configured attack; the rest are honest."""
        return self.attack if partition_id < self.byzantine else "honest"

    def stake_table(self) -> dict[str, float]:
        """Node id → stake, from ``stakes``; nodes not named have stake 1."""
        spec = self.stakes.strip()
        if not spec:
            return {}
        if "=" in spec:
            table: dict[str, Any] = {}
            for item in spec.split(","):
                node, _, value = item.partition("=")
                table[node.strip()] = value.strip()
        else:
            path = Path(spec)
            if not path.is_file():
                raise SettingsError(f"stakes file {spec} does not exist")
            text = path.read_text()
            table = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
            if not isinstance(table, dict):
                raise SettingsError(f"stakes file {spec} must map node ids to stakes")
        try:
            stakes = {str(k): float(v) for k, v in table.items()}
        except (TypeError, ValueError) as exc:
            raise SettingsError(f"stakes must be numbers: {exc}") from exc
        if any(not v >= 0 for v in stakes.values()):
            raise SettingsError("stakes must be >= 0")
        return stakes

    def stake_of(self, node_id: str) -> float:
        return self.stake_table().get(node_id, 1.0)

    def train_config(self) -> TrainConfig:
        dp = None
        if self.dp:
            dp = DPConfig(
                # a target ε decides the noise; otherwise the configured multiplier does
                noise_multiplier=None if self.target_epsilon else self.noise_multiplier,
                max_grad_norm=self.max_grad_norm,
                delta=self.delta,
                target_epsilon=self.target_epsilon or None,
                epsilon_budget=self.epsilon_budget or None,
            )
        return TrainConfig(epochs=self.local_epochs, batch_size=self.batch_size, lr=self.lr, dp=dp)


def node_name(partition_id: int) -> str:
    return f"node-{partition_id}"


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    kind = {"int": int, "float": float, "bool": bool, "str": str}[str(annotation)]
    if kind is bool:
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise SettingsError(f"{key} must be true or false, got {value!r}")
        return bool(value)
    try:
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError(value)
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"{key} must be a {kind.__name__}, got {value!r}") from exc
