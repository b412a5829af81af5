"""Turning a run's per-round results into the JSON, the plot and the summary users read."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fl.federation import RoundResult


def rounds_to(accuracies: Sequence[float], threshold: float) -> int | None:
    """The first round (1-based) whose global accuracy reaches ``threshold`` percent."""
    for index, accuracy in enumerate(accuracies, start=1):
        if accuracy >= threshold:
            return index
    return None


def build_report(
    results: Sequence[RoundResult],
    settings: dict[str, Any],
    attackers: Sequence[str],
    seconds: float,
) -> dict[str, Any]:
    accuracies = [r.accuracy for r in results]
    attacker_set = set(attackers)
    final_eps: dict[str, float] = {}
    for r in results:
        final_eps.update(r.epsilons)
    return {
        "settings": settings,
        "rounds": [r.round for r in results],
        "accuracies": accuracies,
        "losses": [r.loss for r in results],
        "epsilons": [r.max_epsilon for r in results],
        "participants": [r.participants for r in results],
        "rejected": [r.rejected for r in results],
        "flagged": [r.flagged for r in results],
        "budget_exhausted": [r.exhausted for r in results],
        "failed": [r.failed for r in results],
        "attacker_weight": [
            sum(w for node, w in r.weights.items() if node in attacker_set) for r in results
        ],
        "round_seconds": [r.duration_s for r in results],
        "attackers": list(attackers),
        "node_final_epsilon": dict(sorted(final_eps.items(), key=lambda kv: int(kv[0][5:]))),
        "rounds_to_80": rounds_to(accuracies, 80.0),
        "rounds_to_95": rounds_to(accuracies, 95.0),
        "final_accuracy": accuracies[-1] if accuracies else None,
        "wall_seconds": seconds,
    }


def write_report(report: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``out`` (JSON) and the convergence plot beside it (same name, ``.png``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    png = out.with_suffix(".png")
    plot_convergence(report, png)
    return out, png


def plot_convergence(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = report["settings"]
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    ax_acc.plot(report["rounds"], report["accuracies"], marker="o", label="test accuracy")
    for level in (80, 95):
        ax_acc.axhline(level, color="grey", linestyle=":", linewidth=1)
    ax_acc.set(
        xlabel="round",
        ylabel="accuracy (%)",
        ylim=(0, 100),
        title=f"{s['num-nodes']} nodes, {s['byzantine']} × {s['attack']}, rule {s['rule']}",
    )
    ax_eps = ax_acc.twinx()
    ax_eps.plot(
        report["rounds"], report["epsilons"], color="tab:red", linestyle="--", label="max node ε"
    )
    ax_eps.set_ylabel("cumulative ε (max over nodes)")
    lines = ax_acc.get_lines()[:1] + ax_eps.get_lines()
    ax_acc.legend(lines, [line.get_label() for line in lines], loc="lower right")
    ax_loss.plot(report["rounds"], report["losses"], marker="o", color="tab:orange")
    ax_loss.set(xlabel="round", ylabel="test loss", title="global model loss")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
