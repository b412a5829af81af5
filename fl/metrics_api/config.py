"""What the metrics API knows about the run beyond the store: plan, size, budget, attackers.

The aggregator does not learn a node's attack mode from the node (an attacker would not say).
For testnets the operator configures which nodes attack; that table is handed to the metrics
API so dashboards can show how much weight the configured attackers received.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fl.contract import ATTACK_MODES

HONEST = "honest"


class ConfigError(ValueError):
    """A configuration file or value the metrics API cannot use."""


@dataclass(frozen=True)
class RunConfig:
    """Optional facts about the run; each one that is set is exported as a gauge."""

    rounds_planned: int | None = None
    nodes_expected: int | None = None
    epsilon_budget: float | None = None
    attacks: Mapping[str, str] = field(default_factory=dict)  # node id -> attack mode

    def attack_of(self, node: str) -> str:
        return self.attacks.get(node, HONEST)


def load_attack_table(path: Path) -> dict[str, str]:
    """Read a YAML or JSON mapping of node id to attack mode.

    Each value is either an attack mode (``node-3: sign-flip``) or a mapping with an ``attack``
    key (``node-3: {stake: 2.0, attack: sign-flip}``), so one roster file can carry stakes and
    attacks; a mapping without ``attack`` means honest.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read attack table {path}: {exc.strerror or exc}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"attack table {path} is not valid YAML/JSON: {exc}") from exc
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"attack table {path} must map node ids to attack modes, got {type(raw).__name__}"
        )
    table: dict[str, str] = {}
    for node, value in raw.items():
        mode = value.get("attack", HONEST) if isinstance(value, Mapping) else value
        if not isinstance(node, str) or not node:
            raise ConfigError(f"attack table {path}: node id {node!r} is not a string")
        if mode not in ATTACK_MODES:
            raise ConfigError(
                f"attack table {path}: {node}: {mode!r} is not an attack mode"
                f" (one of {', '.join(ATTACK_MODES)})"
            )
        table[node] = str(mode)
    return table
