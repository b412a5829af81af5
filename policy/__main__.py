"""Entry point of the policy pack: ``pulumi preview --policy-pack policy``."""

import sys
from pathlib import Path

# The pack runs with this directory as its program; make its module importable by name.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sovereign_map_policies import build_pack

build_pack()
