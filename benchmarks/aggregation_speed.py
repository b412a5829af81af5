"""How long each aggregation rule takes, next to two plain numpy baselines (not a test).

For n = 10 / 50 / 100 float32 updates at the two model sizes of the project

* d = 26,010: the compact DP CNN (the Opacus MNIST example network:
  conv 16@8x8/2 -> conv 32@4x4/2 -> fc 32 -> fc 10), and
* d = 1,199,882: the original guide's CNN (conv 32 -> conv 64 -> max-pool -> fc 128 -> fc 10
  on 28x28),

every rule in ``fl.aggregation.RULES`` is timed against ``np.median(U, axis=0)`` and against
the plain weighted mean ``w @ U / w.sum()`` (one pass over U: the memory-bound floor). All
methods of one (n, d) case are timed side by side: each repetition times every method once,
in a fresh random order, and the report gives the median over repetitions. Fast methods are
called several times per sample so that a sample lasts at least ``--min-sample-s``.

    .venv/bin/python benchmarks/aggregation_speed.py --output benchmarks/aggregation_speed.md

BLAS runs single-threaded by default (``--blas-threads``): on a shared 2-core machine a
multi-threaded OpenBLAS that loses a core to another process can be ten times slower.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

MODEL_SIZES = {
    26_010: "compact DP CNN (Opacus MNIST example)",
    1_199_882: "original CNN (conv32-conv64-pool-fc128-fc10)",
}
BASELINE_MEDIAN = "np.median(U, axis=0)"
BASELINE_MEAN = "w @ U / w.sum()"


@dataclass(frozen=True)
class Timing:
    method: str
    n: int
    d: int
    seconds: float  # median seconds per call
    samples: int
    calls_per_sample: int


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10, 50, 100], help="update counts")
    parser.add_argument(
        "--d", type=int, nargs="+", default=list(MODEL_SIZES), help="parameters per update"
    )
    parser.add_argument("--rules", nargs="+", default=None, help="rules to time (default: all)")
    parser.add_argument("--repeats", type=int, default=5, help="samples per method and case")
    parser.add_argument(
        "--min-sample-s", type=float, default=0.05, help="shortest sample (fast calls repeat)"
    )
    parser.add_argument("--blas-threads", type=int, default=1, help="OpenBLAS/OpenMP threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="also write the Markdown report to this file")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.min_sample_s <= 0 or args.blas_threads < 1:
        parser.error("--repeats and --blas-threads must be >= 1, --min-sample-s > 0")
    if min(args.n) < 1 or min(args.d) < 1:
        parser.error("--n and --d must be >= 1")
    return args


def make_case(np_mod: Any, n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float32 updates (as Flower ships them), stake x examples weights, a reference."""
    rng = np_mod.random.default_rng(seed)
    direction = rng.standard_normal(d, dtype=np_mod.float32)
    updates = direction + rng.standard_normal((n, d), dtype=np_mod.float32)
    weights = rng.uniform(1.0, 10.0, n) * rng.integers(100, 1200, n)
    reference = direction + rng.standard_normal(d, dtype=np_mod.float32)
    return updates, weights, reference


def methods_for(
    np_mod: Any, aggregation: Any, rule_names: list[str], case: tuple[Any, Any, Any]
) -> dict[str, Callable[[], object]]:
    updates, weights, reference = case
    w32 = weights.astype(np_mod.float32)
    methods: dict[str, Callable[[], object]] = {
        BASELINE_MEDIAN: lambda: np_mod.median(updates, axis=0),
        BASELINE_MEAN: lambda: w32 @ updates / w32.sum(),
    }
    for name in rule_names:
        rule = aggregation.RULES[name]
        kwargs = {"reference": reference} if rule.reference_kind != "none" else {}
        methods[name] = lambda rule=rule, kwargs=kwargs: rule(updates, weights, **kwargs)
    return methods


def time_case(
    methods: dict[str, Callable[[], object]], n: int, d: int, repeats: int, min_sample_s: float
) -> list[Timing]:
    calls: dict[str, int] = {}
    for name, fn in methods.items():  # warm-up call, also sizes the samples
        start = time.perf_counter()
        fn()
        calls[name] = max(1, math.ceil(min_sample_s / (time.perf_counter() - start)))
    samples: dict[str, list[float]] = {name: [] for name in methods}
    order = list(methods)
    for _ in range(repeats):
        random.shuffle(order)
        for name in order:
            fn, k = methods[name], calls[name]
            start = time.perf_counter()
            for _ in range(k):
                fn()
            samples[name].append((time.perf_counter() - start) / k)
    return [
        Timing(name, n, d, statistics.median(samples[name]), repeats, calls[name])
        for name in methods
    ]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 1 else f"{ms:.3f}"


def report(timings: list[Timing], args: argparse.Namespace, np_version: str, wall_s: float) -> str:
    by_key = {(t.method, t.n, t.d): t for t in timings}
    methods = list(dict.fromkeys(t.method for t in timings))
    lines = [
        "# Aggregation speed",
        "",
        "Median wall time per call (ms) of every rule in `fl.aggregation.RULES` and of two plain "
        "numpy baselines, float32 updates `U[n, d]`, weights `w[n]` = stake x examples. "
        f"`x med` = time / `{BASELINE_MEDIAN}`, `x mean` = time / `{BASELINE_MEAN}` "
        "(one pass over U, the memory-bound floor). fltrust gets a random root update and "
        "centered-clipping a random previous aggregate as `reference`; all options default.",
        "",
        "Command (repository root):",
        "",
        "```",
        " ".join([".venv/bin/python", "benchmarks/aggregation_speed.py", *sys.argv[1:]]),
        "```",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} cores (shared, noisy), Python "
        f"{platform.python_version()}, numpy {np_version}, BLAS threads {args.blas_threads}; "
        f"{args.repeats} samples per method and case, all methods of a case interleaved in "
        f"random order; total run {wall_s:.0f} s.",
    ]
    for d in args.d:
        lines += ["", f"## d = {d:,} ({MODEL_SIZES.get(d, 'custom size')})", ""]
        header = "| method |" + "".join(f" n={n} ms | x med | x mean |" for n in args.n)
        lines += [header, "|---|" + "---:|---:|---:|" * len(args.n)]
        for method in methods:
            cells = []
            for n in args.n:
                t = by_key[(method, n, d)]
                med = by_key[(BASELINE_MEDIAN, n, d)].seconds
                mean = by_key[(BASELINE_MEAN, n, d)].seconds
                cells.append(
                    f" {fmt_ms(t.seconds)} | {t.seconds / med:.2f} | {t.seconds / mean:.1f} |"
                )
            lines.append(f"| {method} |" + "".join(cells))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    # BLAS reads these when it is loaded: set them before numpy is imported.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.blas_threads)
    np_mod = importlib.import_module("numpy")
    aggregation = importlib.import_module("fl.aggregation")
    rule_names = args.rules or list(aggregation.RULES)
    unknown = sorted(set(rule_names) - set(aggregation.RULES))
    if unknown:
        sys.exit(f"unknown rules {unknown}; choose from {', '.join(aggregation.RULES)}")
    random.seed(args.seed)

    started = time.perf_counter()
    timings: list[Timing] = []
    for d in args.d:
        for n in args.n:
            case = make_case(np_mod, n, d, args.seed)
            methods = methods_for(np_mod, aggregation, rule_names, case)
            timings += time_case(methods, n, d, args.repeats, args.min_sample_s)
            print(f"done n={n} d={d} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
            del case, methods
    text = report(timings, args, np_mod.__version__, time.perf_counter() - started)
    print(text)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)


if __name__ == "__main__":
    main()
