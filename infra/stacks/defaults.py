"""Per-stack defaults: the scale of each stack in the original deployment guide.

A stack's YAML is merged over its preset (objects key by key), and the model's own
defaults fill in the rest. A stack with another name starts from no preset, so it must
at least say ``nodes.count``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

PRESETS: dict[str, dict[str, Any]] = {
    # A laptop: 5 nodes on Docker.
    "local": {
        "target": "docker",
        "nodes": {"count": 5},
        "training": {"rounds": 10},
    },
    # 50 nodes, 2 of them Byzantine; sized for 4–6 GB of node memory requests.
    "staging": {
        "target": "docker",
        "nodes": {"count": 50},
        "byzantine": {"count": 2, "mode": "sign-flip"},
        "training": {"rounds": 50, "minFitClients": 40},
        "resources": {
            "node": {
                "requests": {"cpu": "50m", "memory": "256Mi"},
                "limits": {"cpu": "500m", "memory": "768Mi"},
            },
            "aggregator": {
                "requests": {"cpu": "1", "memory": "2Gi"},
                "limits": {"cpu": "2", "memory": "4Gi"},
            },
        },
    },
    # 100 nodes on Kubernetes with persistent volumes and a longer retention.
    "prod": {
        "target": "kubernetes",
        "nodes": {"count": 100},
        "training": {"rounds": 1000, "minFitClients": 80},
        "image": {"pullPolicy": "IfNotPresent"},
        "resources": {
            "node": {
                "requests": {"cpu": "250m", "memory": "256Mi"},
                "limits": {"cpu": "500m", "memory": "768Mi"},
            },
            "aggregator": {
                "requests": {"cpu": "2", "memory": "4Gi"},
                "limits": {"cpu": "4", "memory": "8Gi"},
            },
            "prometheus": {
                "requests": {"cpu": "500m", "memory": "1Gi"},
                "limits": {"cpu": "2", "memory": "4Gi"},
            },
        },
        "storage": {"aggregator": "20Gi", "prometheus": "50Gi"},
        "monitoring": {"retention": "30d"},
    },
}


def preset(stack: str) -> dict[str, Any]:
    """The model's defaults for every section, with the stack's preset over them; a partial
    override in YAML (``resources.node.limits.cpu`` alone) then keeps the other defaults."""
    return deep_merge(section_defaults(), PRESETS.get(stack, {}))


def section_defaults() -> dict[str, Any]:
    """Each section of :class:`StackSettings` that has a default, as YAML would spell it."""
    from infra.stacks.model import StackSettings

    sections: dict[str, Any] = {}
    for name, field in StackSettings.model_fields.items():
        if isinstance(field.default, BaseModel):
            sections[field.alias or name] = field.default.model_dump(by_alias=True, mode="json")
    return sections


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``: nested mappings merge key by key, anything else replaces."""
    merged: dict[str, Any] = {key: _copy(value) for key, value in base.items()}
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = _copy(value)
    return merged


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return deep_merge({}, value)
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value
