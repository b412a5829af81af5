"""The node's ClientApp: local DP-SGD on its MNIST partition, honest or attacking.

Each reply carries the new weights and a MetricRecord with ``num-examples``,
``train-loss``, ``epsilon`` (cumulative, from Opacus' RDP accountant), ``train-time``,
``partition-id`` and ``budget-exhausted``. A node whose ε budget would be exceeded by
another round stops contributing and says so (a reply without weights).

With the node-config key ``metrics-file`` (set by ``sovereign-map node``) every fit is
also appended to that file, which the node's Prometheus exporter reads
(``fl.node_metrics``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from fl.attacks import poison_delta, poison_labels, validate_attack
from fl.data import Split, load_mnist, node_partition
from fl.node_metrics import FitRecord, metrics_file_of, record_fit
from fl.records import from_numpy, to_numpy
from fl.settings import RunSettings
from fl.task import (
    AccountantHistory,
    build_model,
    flatten,
    get_weights,
    projected_epsilon,
    resolve_noise_multiplier,
    sample_rate,
    set_weights,
    steps_per_epoch,
    train,
    unflatten,
)

app = ClientApp()

STATE_KEY = "dp-accountant"


@dataclass(frozen=True)
class NodeIdentity:
    partition_id: int
    num_nodes: int
    attack: str
    attack_scale: float
    data_dir: str


def identity(context: Context, settings: RunSettings) -> NodeIdentity:
    """Who this node is: from its node config (``partition-id``, ``num-partitions``,
    optionally ``attack``, ``attack-scale``, ``data-dir`` — set by ``sovereign-map node`` or
    Flower's simulation), falling back to the run config."""
    cfg = context.node_config
    partition_id = int(cfg.get("partition-id", 0))
    num_nodes = int(cfg.get("num-partitions", settings.num_nodes))
    attack = str(cfg.get("attack", settings.attack_for(partition_id)))
    scale = float(cfg.get("attack-scale", settings.attack_scale))
    validate_attack(attack, scale)
    data_dir = str(cfg.get("data-dir", settings.data_dir)) or ""
    return NodeIdentity(partition_id, num_nodes, attack, scale, data_dir)


def _load_history(context: Context) -> AccountantHistory:
    record = context.state.config_records.get(STATE_KEY)
    if record is None:
        return []
    return [
        (float(s), float(q), int(n))
        for s, q, n in zip(record["sigmas"], record["rates"], record["steps"], strict=True)
    ]


def _save_history(context: Context, history: AccountantHistory) -> None:
    context.state.config_records[STATE_KEY] = ConfigRecord(
        {
            "sigmas": [float(h[0]) for h in history],
            "rates": [float(h[1]) for h in history],
            "steps": [int(h[2]) for h in history],
        }
    )


def local_data(ident: NodeIdentity, settings: RunSettings) -> Split:
    train_split, _ = load_mnist(ident.data_dir or None)
    part = node_partition(
        train_split,
        ident.partition_id,
        ident.num_nodes,
        scheme=settings.partition,
        alpha=settings.alpha,
        seed=settings.seed,
        samples_per_node=settings.samples_per_node or None,
    )
    return Split(part.images, poison_labels(part.labels, ident.attack))


@app.train()
def train_handler(msg: Message, context: Context) -> Message:
    settings = RunSettings.from_run_config(context.run_config)
    ident = identity(context, settings)
    server_round = int(msg.content["config"]["server-round"])
    data = local_data(ident, settings)
    config = settings.train_config()
    history = _load_history(context)
    delta_eps = config.dp.delta if config.dp else 0.0

    sigma = None
    if config.dp is not None:
        steps = config.epochs * steps_per_epoch(len(data), config.batch_size)
        rate = sample_rate(len(data), config.batch_size)
        sigma = resolve_noise_multiplier(config.dp, rate, steps * settings.num_server_rounds)
        budget = config.dp.budget
        if (
            budget is not None
            and projected_epsilon(history, sigma, rate, steps, delta_eps) > budget
        ):
            spent = projected_epsilon(history, sigma, rate, 0, delta_eps) if history else 0.0
            metrics = MetricRecord(
                {
                    "partition-id": ident.partition_id,
                    "epsilon": spent,
                    "budget-exhausted": 1,
                    "num-examples": 0,
                }
            )
            record_fit(
                metrics_file_of(context.node_config),
                FitRecord(server_round, 0, float("nan"), 0.0, spent, 0, "budget-exhausted"),
            )
            return Message(RecordDict({"metrics": metrics}), reply_to=msg)

    global_weights = to_numpy(msg.content["arrays"])
    model = build_model(settings.model)
    set_weights(model, global_weights)
    seed = _seed(settings.seed, server_round, ident.partition_id)
    result = train(model, data, config, history=history, noise_multiplier=sigma, seed=seed)
    if config.dp is not None:
        _save_history(context, result.history)

    new_weights = get_weights(model)
    global_flat = flatten(global_weights)
    delta = flatten(new_weights) - global_flat
    sent = poison_delta(
        delta, ident.attack, scale=ident.attack_scale, rng=np.random.default_rng(seed)
    )
    out_weights = unflatten(global_flat + sent, global_weights)

    metrics = MetricRecord(
        {
            "partition-id": ident.partition_id,
            "num-examples": result.examples,
            "train-loss": result.loss,
            "train-time": result.seconds,
            "epsilon": result.epsilon,
            "noise-multiplier": result.noise_multiplier,
            "budget-exhausted": 0,
        }
    )
    record_fit(
        metrics_file_of(context.node_config),
        FitRecord(
            round=server_round,
            examples=result.examples,
            loss=result.loss,
            seconds=result.seconds,
            epsilon=result.epsilon,
            update_bytes=sum(int(w.nbytes) for w in out_weights.values()),
        ),
    )
    content = RecordDict({"arrays": from_numpy(out_weights), "metrics": metrics})
    return Message(content, reply_to=msg)


def _seed(base: int, server_round: int, partition_id: int) -> int:
    return int(np.random.SeedSequence([base, server_round, partition_id]).generate_state(1)[0])
