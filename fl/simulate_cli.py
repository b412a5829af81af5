"""``sovereign-map simulate``: a whole federation in this process, measured for real."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import click

from fl.contract import ATTACK_MODES, DEFAULT_RULE

RULE_NAMES = ("fedavg", "median", "trimmed-mean", "multi-krum", "centered-clipping", "fltrust")


@click.command(context_settings={"show_default": True})
@click.option("--nodes", type=click.IntRange(1, 1000), default=10, help="Number of nodes.")
@click.option(
    "--byzantine",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    help="Fraction of nodes that attack (rounded to whole nodes; nodes 0..k-1).",
)
@click.option(
    "--attack",
    type=click.Choice(ATTACK_MODES[1:]),
    default="sign-flip",
    help="What the Byzantine nodes do.",
)
@click.option(
    "--attack-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    help="Scale of the sign-flip / gaussian update.",
)
@click.option(
    "--rule",
    type=click.Choice(RULE_NAMES),
    default=DEFAULT_RULE,
    help="Aggregation rule (fltrust survives 50% sign-flippers).",
)
@click.option("--rounds", type=click.IntRange(1, 10_000), default=10, help="Federated rounds.")
@click.option(
    "--partition",
    type=click.Choice(["iid", "dirichlet"]),
    default="iid",
    help="How the 60k training images are split across nodes.",
)
@click.option(
    "--alpha",
    type=click.FloatRange(min=0, min_open=True),
    default=0.5,
    help="Dirichlet concentration (smaller = more label skew).",
)
@click.option(
    "--samples-per-node",
    type=click.IntRange(0),
    default=0,
    help="Cap on each node's training samples (0 = its whole partition).",
)
@click.option(
    "--model",
    type=click.Choice(["compact", "original"]),
    default="compact",
    help="compact: 26k-parameter DP CNN; original: the old system's 1.2M CNN.",
)
@click.option("--local-epochs", type=click.IntRange(1), default=1)
@click.option("--batch-size", type=click.IntRange(1), default=128)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1.0)
@click.option("--no-dp", is_flag=True, help="Turn differential privacy OFF (it is on by default).")
@click.option(
    "--noise-multiplier",
    type=click.FloatRange(0),
    default=1.0,
    help="DP-SGD noise multiplier σ (ignored with --target-epsilon).",
)
@click.option(
    "--max-grad-norm",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    help="DP-SGD per-sample clipping norm C.",
)
@click.option(
    "--delta", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=1e-5, help="DP δ."
)
@click.option(
    "--target-epsilon",
    type=click.FloatRange(0),
    default=0.0,
    help="Pick σ so that all rounds spend this ε (0 = use --noise-multiplier).",
)
@click.option(
    "--epsilon-budget",
    type=click.FloatRange(0),
    default=0.0,
    help="A node stops contributing beyond this ε (0 = the target ε, or no limit).",
)
@click.option(
    "--stakes",
    default="",
    help="Stakes: 'node-0=2,node-3=0.5' or a YAML/JSON file node id -> stake "
    "(unlisted nodes: 1). There is no blockchain: stake is configuration.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Directory with the four MNIST IDX files (else $SM_DATA_DIR, else a download cache).",
)
@click.option("--seed", type=int, default=0, help="Seed: the same seed gives the same run.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Result JSON (a convergence plot .png is written beside it). "
    "Default: runs/simulate-<time>.json",
)
def simulate(**opts: object) -> None:
    """Run a whole federation in this process: N nodes train MNIST under DP, some attack,
    the aggregator combines their updates with a robust rule and evaluates the global model
    on the 10k test images after every round.

    Writes JSON (rounds, accuracies, losses, epsilons, settings, ...) and a plot, and prints
    the rounds it took to reach 80% and 95% test accuracy.
    """
    from fl.data import DataError
    from fl.settings import RunSettings, SettingsError, node_name

    nodes = int(opts["nodes"])  # type: ignore[call-overload]
    byzantine = round(float(opts["byzantine"]) * nodes)  # type: ignore[arg-type]
    try:
        settings = RunSettings(
            num_server_rounds=opts["rounds"],
            num_nodes=nodes,
            rule=opts["rule"],
            model=opts["model"],
            partition=opts["partition"],
            alpha=opts["alpha"],
            seed=opts["seed"],
            samples_per_node=opts["samples_per_node"],
            local_epochs=opts["local_epochs"],
            batch_size=opts["batch_size"],
            lr=opts["lr"],
            dp=not opts["no_dp"],
            noise_multiplier=opts["noise_multiplier"],
            max_grad_norm=opts["max_grad_norm"],
            delta=opts["delta"],
            target_epsilon=opts["target_epsilon"],
            epsilon_budget=opts["epsilon_budget"],
            byzantine=byzantine,
            attack=opts["attack"],
            attack_scale=opts["attack_scale"],
            stakes=opts["stakes"],
            data_dir=str(opts["data_dir"] or ""),
        )  # type: ignore[arg-type]
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from exc
    out = opts["out"] or Path("runs") / f"simulate-{datetime.now():%Y%m%d-%H%M%S}.json"
    assert isinstance(out, Path)

    from fl.federation import RoundResult
    from fl.report import build_report, write_report
    from fl.simulation import run_federation

    click.echo(
        f"simulating {nodes} nodes ({byzantine} × {settings.attack}), rule {settings.rule}, "
        f"{settings.num_server_rounds} rounds, DP {'on' if settings.dp else 'OFF'}"
    )
    start = time.perf_counter()

    def progress(r: RoundResult) -> None:
        click.echo(
            f"  round {r.round:>3}/{settings.num_server_rounds}: accuracy {r.accuracy:6.2f}%  "
            f"loss {r.loss:.4f}  accepted {r.participants - r.flagged}  flagged {r.flagged}  "
            f"rejected {r.rejected}"
            + (f"  ε-exhausted {r.exhausted}" if r.exhausted else "")
            + (f"  failed {r.failed}" if r.failed else "")
            + f"  max ε {r.max_epsilon:.3f}  "
            f"({time.perf_counter() - start:.0f}s)"
        )

    try:
        results = run_federation(settings, on_round=progress)
    except DataError as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        raise click.Abort() from None
    attackers = [node_name(i) for i in range(byzantine)]
    report = build_report(results, settings.to_run_config(), attackers, time.perf_counter() - start)
    report["settings"]["byzantine-fraction"] = opts["byzantine"]
    json_path, png_path = write_report(report, out)
    r80, r95 = report["rounds_to_80"], report["rounds_to_95"]
    click.echo(
        f"final accuracy {report['final_accuracy']:.2f}%; rounds to 80%: "
        f"{r80 if r80 else 'not reached'}; rounds to 95%: {r95 if r95 else 'not reached'}"
    )
    click.echo(f"wrote {json_path} and {png_path}")
