"""The one error a bad stack configuration produces."""

from __future__ import annotations

import pulumi

from infra.stacks.keys import NAMESPACE


class StackConfigError(pulumi.RunError):
    """A stack configuration value is invalid.

    Subclasses :class:`pulumi.RunError`, so ``pulumi preview`` / ``pulumi up`` print the
    message alone (no traceback) and exit non-zero. The message names the key as the user
    writes it in ``Pulumi.<stack>.yaml`` (``sovereign-map:byzantine.count``).
    """

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"invalid stack configuration: {NAMESPACE}:{key}: {problem}")
