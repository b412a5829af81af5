"""Convergence benchmarks (not run by CI): real DP federations through `sovereign-map simulate`.

    python benchmarks/convergence.py run [--only NAME ...] [--data-dir DIR]
    python benchmarks/convergence.py report        # -> benchmarks/convergence.md

(a) the original guide's table — rounds until the global model first reaches 80% / 95% —
    measured with DP on, each node's final ε stated;
(b) aggregation rules side by side at 0 / 5 / 20 / 50% sign-flippers on 50 nodes.

Each scenario runs as its own `sovereign-map simulate` process and leaves its JSON (and plot)
in benchmarks/results/; finished scenarios are skipped on a re-run. The Markdown is generated
from those JSON files only — no number in it is written by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
ROUNDS_TABLE = 15
ROUNDS_RULES = 10
SAMPLES_RULES = 300  # per node, to keep 20 runs of 50 nodes affordable on 2 cores

# name -> (extra simulate args, what the guide claimed: rounds to 80 / 95)
TABLE: dict[str, tuple[list[str], tuple[int, int]]] = {
    "a-10-honest": (["--nodes", "10"], (5, 15)),
    "a-50-honest": (["--nodes", "50"], (3, 10)),
    "a-100-honest": (["--nodes", "100"], (2, 8)),
    "a-50-byz05": (["--nodes", "50", "--byzantine", "0.05"], (3, 11)),
    "a-50-byz20": (["--nodes", "50", "--byzantine", "0.20"], (5, 15)),
    "a-50-byz50": (["--nodes", "50", "--byzantine", "0.50"], (8, 25)),
}
RULES = ("fedavg", "median", "trimmed-mean", "multi-krum", "fltrust")
LEVELS = (0.0, 0.05, 0.20, 0.50)


def scenarios() -> dict[str, list[str]]:
    runs: dict[str, list[str]] = {}
    for name, (args, _) in TABLE.items():
        runs[name] = [*args, "--rounds", str(ROUNDS_TABLE), "--attack", "sign-flip"]
    for rule in RULES:
        for level in LEVELS:
            runs[f"b-{rule}-{round(level * 100):02d}"] = [
                "--nodes",
                "50",
                "--byzantine",
                str(level),
                "--attack",
                "sign-flip",
                "--rule",
                rule,
                "--rounds",
                str(ROUNDS_RULES),
                "--samples-per-node",
                str(SAMPLES_RULES),
            ]
    return runs


def command(name: str, args: list[str], data_dir: str | None) -> list[str]:
    cmd = [
        "sovereign-map",
        "simulate",
        *args,
        "--seed",
        "0",
        "--out",
        str((RESULTS / f"{name}.json").relative_to(HERE.parent)),
    ]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    return cmd


def _run_one(label: str, name: str, args: list[str], data_dir: str | None, jobs: int) -> None:
    cmd = command(name, args, data_dir)
    print(f"{label} {name}: {shlex.join(cmd)}", flush=True)
    start = time.time()
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    env = dict(os.environ)
    if jobs > 1:  # one core each, so that side-by-side runs do not fight over threads
        env |= {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log = RESULTS / f"{name}.log"
    with log.open("w") as out:
        subprocess.run(cmd, cwd=HERE.parent, check=True, env=env, stdout=out, stderr=out)
    result = RESULTS / f"{name}.json"
    data = json.loads(result.read_text())
    data["code_version"] = commit  # the commit that produced these numbers
    data["parallel_jobs"] = jobs  # wall times are comparable only within the same setting
    result.write_text(json.dumps(data, indent=2) + "\n")
    log.unlink()
    print(f"    {name} finished in {time.time() - start:.0f}s", flush=True)


def run(only: list[str] | None, data_dir: str | None, jobs: int = 1) -> None:
    RESULTS.mkdir(exist_ok=True)
    todo = {k: v for k, v in scenarios().items() if not only or k in only}
    pending = []
    for index, (name, args) in enumerate(todo.items(), start=1):
        label = f"[{index}/{len(todo)}]"
        if (RESULTS / f"{name}.json").exists():
            print(f"{label} {name}: done already", flush=True)
        else:
            pending.append((label, name, args))
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(_run_one, *item, data_dir, jobs) for item in pending]
        for future in futures:
            future.result()  # a failed scenario stops the report with its error


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _rounds(value: int | None, cap: int) -> str:
    return str(value) if value is not None else f"not in {cap}"


def report() -> str:
    lines = [
        "# Convergence benchmarks",
        "",
        "Generated by `python benchmarks/convergence.py report` from the JSON files in",
        "`benchmarks/results/` that `python benchmarks/convergence.py run` wrote; each row's exact",
        "command is listed below its table. Machine: "
        f"{platform.machine()}, {platform.python_version()}; 2 CPU cores shared with other work.",
        "DP is on in every run (Opacus DP-SGD, σ = 1.0, C = 1.0, δ = 1e-5, batch 128, 1 local",
        "epoch per round); accuracy is the global model's on the 10,000 MNIST test images.",
        "",
        "## (a) The original guide's table, measured",
        "",
        f"Rounds until the global model first reaches 80% / 95% (at most {ROUNDS_TABLE} rounds; "
        "default rule `fltrust`, attackers sign-flip).",
        "",
        "| scenario | guide claimed (80% / 95%) | measured rounds to 80% | measured rounds to 95% "
        "| final accuracy | node ε after the last round (min–max) | wall time |",
        "|---|---|---|---|---|---|---|",
    ]
    commands: list[str] = []
    for name, (_, claimed) in TABLE.items():
        data = _load(name)
        if data is None:
            lines.append(f"| {name} | {claimed[0]} / {claimed[1]} | not run yet | | | | |")
            continue
        eps = list(data["node_final_epsilon"].values())
        lines.append(
            f"| {name} | {claimed[0]} / {claimed[1]} | "
            f"{_rounds(data['rounds_to_80'], ROUNDS_TABLE)} | "
            f"{_rounds(data['rounds_to_95'], ROUNDS_TABLE)} | {data['final_accuracy']:.2f}% | "
            f"{min(eps):.2f}–{max(eps):.2f} | {data['wall_seconds'] / 60:.1f} min |"
        )
        commands.append(f"- {name}: `{shlex.join(command(name, scenarios()[name], None))}`")
    lines += [
        "",
        "Commands (plus `--data-dir DIR` where MNIST is not in the default place):",
        "",
        *commands,
        "",
    ]
    lines += [
        "## (b) Rules side by side: 50 nodes, sign-flip attackers",
        "",
        f"Final test accuracy after {ROUNDS_RULES} rounds ({SAMPLES_RULES} samples per node), and "
        "the share of the aggregate given to attackers in the last round.",
        "",
        "| rule | " + " | ".join(f"{round(level * 100)}% attackers" for level in LEVELS) + " |",
        "|---|" + "---|" * len(LEVELS),
    ]
    b_eps = [
        max(data["node_final_epsilon"].values())
        for name in scenarios()
        if name.startswith("b-") and (data := _load(name)) is not None
    ]
    if b_eps:
        lines.insert(
            -3,
            f"Each node's ε after the last round: {min(b_eps):.2f}–{max(b_eps):.2f} (small "
            "partitions mean a high sampling rate, so a high ε).",
        )
    commands = []
    for rule in RULES:
        cells = []
        for level in LEVELS:
            name = f"b-{rule}-{round(level * 100):02d}"
            data = _load(name)
            if data is None:
                cells.append("not run yet")
                continue
            cells.append(
                f"{data['final_accuracy']:.2f}% (attackers {data['attacker_weight'][-1]:.0%})"
            )
            commands.append(f"- {name}: `{shlex.join(command(name, scenarios()[name], None))}`")
        lines.append(f"| {rule} | " + " | ".join(cells) + " |")
    lines += ["", "Commands:", "", *commands, ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    run_p = sub.add_parser("run", help="run the scenarios not run yet")
    run_p.add_argument("--only", nargs="*", help="scenario names")
    run_p.add_argument("--data-dir")
    run_p.add_argument(
        "--jobs", type=int, default=1, help="scenarios side by side (one thread each)"
    )
    sub.add_parser("report", help="write benchmarks/convergence.md")
    sub.add_parser("list", help="list the scenarios and their commands")
    args = parser.parse_args()
    if args.what == "run":
        run(args.only, args.data_dir, args.jobs)
    elif args.what == "list":
        for name, sargs in scenarios().items():
            print(f"{name}: {shlex.join(command(name, sargs, None))}")
    else:
        (HERE / "convergence.md").write_text(report())
        print(f"wrote {HERE / 'convergence.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
