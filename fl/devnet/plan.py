"""The devnet's processes as command lines: what `devnet up` starts, with which ports.

Pure functions of the options, so that what runs is visible (``devnet.json`` records the
argv of each process) and testable without starting anything.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fl.contract import (
    AGGREGATOR_PORT,
    METRICS_API_PORT,
    NODE_METRICS_PORT,
    PROMETHEUS_PORT,
)
from fl.devnet.layout import Layout
from fl.launch.proc import free_port, pythonpath_with_our_packages

__all__ = [
    "HOST",
    "DevnetOptions",
    "Ports",
    "aggregator_argv",
    "attack_table",
    "byzantine_count",
    "child_env",
    "metrics_api_argv",
    "node_argv",
    "node_ids",
    "prometheus_argv",
    "resolve_ports",
    "write_attack_table",
]

HOST = "127.0.0.1"
DEFAULT_PORTS = {
    "aggregator": AGGREGATOR_PORT,
    "metrics_api": METRICS_API_PORT,
    "node_metrics": NODE_METRICS_PORT,
    "prometheus": PROMETHEUS_PORT,
}


@dataclass(frozen=True)
class DevnetOptions:
    nodes: int
    byzantine: int  # nodes node-0 .. node-(byzantine-1) attack
    attack: str
    attack_scale: float
    rounds: int
    rule: str
    samples_per_node: int
    data_dir: str | None = None
    run_config: tuple[str, ...] = ()
    monitoring: bool = False
    epsilon_budget: float = 0.0  # per-node ε budget; 0: none

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Ports:
    aggregator: int
    metrics_api: int
    prometheus: int | None  # None without --monitoring
    nodes: dict[str, int] = field(default_factory=dict)  # node id -> metrics port

    def all(self) -> dict[str, int]:
        """Every port by what listens on it."""
        found = {"aggregator": self.aggregator, "metrics API": self.metrics_api}
        if self.prometheus is not None:
            found["Prometheus"] = self.prometheus
        found.update({f"{node} metrics": port for node, port in self.nodes.items()})
        return found

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def byzantine_count(spec: str, nodes: int) -> int:
    """``--byzantine``: a whole number is a count of nodes; a number with a decimal point
    (``0.2``) is a fraction of ``nodes``, rounded to the nearest node."""
    text = spec.strip()
    try:
        if "." in text or "e" in text.lower():
            fraction = float(text)
            if not 0 <= fraction <= 1:
                raise ValueError("a fraction must be between 0 and 1")
            count = int(fraction * nodes + 0.5)
        else:
            count = int(text)
    except ValueError as exc:
        detail = str(exc) if "fraction" in str(exc) else "not a number"
        raise ValueError(
            f"--byzantine {spec!r}: {detail} (a count like 1 or a fraction like 0.2)"
        ) from None
    if not 0 <= count <= nodes:
        raise ValueError(f"--byzantine {spec!r}: must be between 0 and --nodes ({nodes})")
    return count


def node_ids(count: int) -> list[str]:
    from certs.layout import node_id_for

    return [node_id_for(i) for i in range(count)]


def attack_table(options: DevnetOptions) -> dict[str, str]:
    """Node id -> attack mode of the Byzantine nodes (the first ``byzantine`` nodes)."""
    return {node: options.attack for node in node_ids(options.byzantine)}


def resolve_ports(requested: Mapping[str, int], nodes: int, monitoring: bool) -> Ports:
    """Ports from the options; 0 picks a free port. Node i's metrics port is the first
    node port + i (each its own free port when the first is 0)."""

    def pick(port: int) -> int:
        return port or free_port(HOST)

    first = requested["node_metrics"]
    node_ports = {
        node: (first + i if first else free_port(HOST)) for i, node in enumerate(node_ids(nodes))
    }
    return Ports(
        aggregator=pick(requested["aggregator"]),
        metrics_api=pick(requested["metrics_api"]),
        prometheus=pick(requested["prometheus"]) if monitoring else None,
        nodes=node_ports,
    )


def child_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment of the devnet's processes: ours, with this checkout importable and each
    process's Flower home left to its launcher."""
    env = dict(os.environ if base is None else base)
    env.pop("FLWR_HOME", None)
    env["PYTHONPATH"] = pythonpath_with_our_packages(env.get("PYTHONPATH"))
    env["PYTHONUNBUFFERED"] = "1"
    env["FLWR_TELEMETRY_ENABLED"] = "0"
    env["FLWR_DISABLE_UPDATE_CHECK"] = "1"
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "fl.cli", *args]


def aggregator_argv(layout: Layout, options: DevnetOptions, ports: Ports) -> list[str]:
    pki = layout.pki.resolve()
    argv = _cli(
        "aggregator",
        "--tls-dir",
        str(pki / "aggregator"),
        "--operator-tls-dir",
        str(pki / "operator"),
        "--state-dir",
        str(layout.aggregator.resolve()),
        "--host",
        HOST,
        "--port",
        str(ports.aggregator),
        "--rounds",
        str(options.rounds),
        "--nodes",
        str(options.nodes),
        "--min-fit-clients",
        str(options.nodes),
        "--rule",
        options.rule,
        "--samples-per-node",
        str(options.samples_per_node),
        "--epsilon-budget",
        str(options.epsilon_budget),
    )
    if options.data_dir:
        argv += ["--data-dir", options.data_dir]
    for item in options.run_config:
        argv += ["--run-config", item]
    return argv


def node_argv(layout: Layout, options: DevnetOptions, ports: Ports, node: str) -> list[str]:
    attack = attack_table(options).get(node, "honest")
    argv = _cli(
        "node",
        "--tls-dir",
        str((layout.pki / "nodes" / node).resolve()),
        "--node-id",
        node,
        "--nodes",
        str(options.nodes),
        "--aggregator-host",
        HOST,
        "--aggregator-port",
        str(ports.aggregator),
        "--attack",
        attack,
        "--attack-scale",
        str(options.attack_scale),
        "--state-dir",
        str(layout.node(node).resolve()),
        "--metrics-host",
        HOST,
        "--metrics-port",
        str(ports.nodes[node]),
    )
    if options.data_dir:
        argv += ["--data-dir", options.data_dir]
    return argv


def metrics_api_argv(layout: Layout, options: DevnetOptions, ports: Ports) -> list[str]:
    budget = ["--epsilon-budget", str(options.epsilon_budget)] if options.epsilon_budget else []
    return _cli(
        "metrics-api",
        "--store",
        str(layout.metrics_store.resolve()),
        "--host",
        HOST,
        "--port",
        str(ports.metrics_api),
        "--cert-dir",
        str(layout.pki.resolve()),
        "--attack-table",
        str(layout.attacks.resolve()),
        "--num-rounds",
        str(options.rounds),
        "--num-nodes",
        str(options.nodes),
        *budget,
    )


def prometheus_argv(binary: str, layout: Layout, ports: Ports) -> list[str]:
    config = layout.monitoring / "prometheus" / "prometheus.yml"
    return [
        binary,
        f"--config.file={config.resolve()}",
        f"--storage.tsdb.path={layout.prometheus_data.resolve()}",
        f"--web.listen-address={HOST}:{ports.prometheus}",
    ]


def write_attack_table(layout: Layout, options: DevnetOptions) -> Path:
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.attacks.write_text(json.dumps(attack_table(options), indent=2) + "\n")
    return layout.attacks
