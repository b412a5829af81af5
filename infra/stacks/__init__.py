"""Typed, validated stack settings: defaults per stack + the stack's ``Pulumi.<stack>.yaml``."""

from infra.stacks.errors import StackConfigError
from infra.stacks.loader import (
    StackSecrets,
    load_settings,
    secrets_from_pulumi,
    settings_from_pulumi,
)
from infra.stacks.model import StackSettings, Target, node_id

__all__ = [
    "StackConfigError",
    "StackSecrets",
    "StackSettings",
    "Target",
    "load_settings",
    "node_id",
    "secrets_from_pulumi",
    "settings_from_pulumi",
]
