"""Entry point of the Pulumi program (``main: infra/`` in Pulumi.yaml)."""

import pulumi

from infra.program import build
from infra.stacks import secrets_from_pulumi, settings_from_pulumi

settings = settings_from_pulumi()
for name, value in build(pulumi.get_stack(), settings, secrets_from_pulumi(settings)).items():
    pulumi.export(name, value)
