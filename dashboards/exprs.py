"""The PromQL the dashboards and alert rules share, built from the contract's metric names.

Rules followed here: ``rate``/``increase`` only over counters (and histogram ``_bucket``/
``_sum``/``_count`` series); ``histogram_quantile`` only over ``rate(…_bucket[…])`` summed
``by (le)``. Round-based series use a fixed window of ``ROUND_WINDOW``: a round takes 30-120 s,
so a shorter window would often hold no round at all.
"""

from __future__ import annotations

from fl.contract import (
    METRIC_ACCEPTED_UPDATES,
    METRIC_ACCURACY,
    METRIC_ACTIVE_NODES,
    METRIC_AGGREGATION_DURATION,
    METRIC_CERT_EXPIRY_DAYS,
    METRIC_CONFIGURED_BYZANTINE_SHARE,
    METRIC_EPSILON_BUDGET,
    METRIC_EXHAUSTED_NODES,
    METRIC_FLAGGED_UPDATES,
    METRIC_LAST_ROUND_TIMESTAMP,
    METRIC_LOSS,
    METRIC_MAX_EPSILON,
    METRIC_NODE_CONFIGURED_ATTACK,
    METRIC_NODE_EPSILON,
    METRIC_NODE_WEIGHT,
    METRIC_NODES_EXPECTED,
    METRIC_REJECTED_UPDATES,
    METRIC_ROUND,
    METRIC_ROUND_DURATION,
    METRIC_ROUNDS_PLANNED,
    METRIC_ROUNDS_TOTAL,
    METRIC_STORE_UP,
    METRIC_SUSPECTED_BYZANTINE_SHARE,
    NODE_METRIC_EXAMPLES,
    NODE_METRIC_FIT_ROUNDS,
    NODE_METRIC_TRAIN_DURATION,
    NODE_METRIC_TRAIN_LOSS,
    NODE_METRIC_UPDATE_BYTES,
    PROM_JOB_METRICS_API,
    PROM_JOB_NODES,
    PROM_NODE_LABEL,
)

ROUND_WINDOW = "10m"
RATE_INTERVAL = "$__rate_interval"  # Grafana's; see queries.promql() for plain Prometheus
NODES = f'job="{PROM_JOB_NODES}"'
API = f'job="{PROM_JOB_METRICS_API}"'
N = PROM_NODE_LABEL


def quantile(
    q: float, histogram: str, window: str = ROUND_WINDOW, *, by: str = "", selector: str = ""
) -> str:
    """The ``q`` quantile of a histogram over ``window``, per ``by`` label if given."""
    labels = f"le, {by}" if by else "le"
    matchers = f"{{{selector}}}" if selector else ""
    return (
        f"histogram_quantile({q}, sum by ({labels}) (rate({histogram}_bucket{matchers}[{window}])))"
    )


def mean(histogram: str, window: str = ROUND_WINDOW) -> str:
    return f"rate({histogram}_sum[{window}]) / rate({histogram}_count[{window}])"


# ----------------------------------------------------------------- training progress
ACCURACY = METRIC_ACCURACY
LOSS = METRIC_LOSS
ROUND = METRIC_ROUND
ROUNDS_PLANNED = METRIC_ROUNDS_PLANNED
ACTIVE_NODES = METRIC_ACTIVE_NODES
NODES_EXPECTED = METRIC_NODES_EXPECTED
ACCURACY_DROP = f"max_over_time({METRIC_ACCURACY}[30m]) - {METRIC_ACCURACY}"
SECONDS_SINCE_LAST_ROUND = f"time() - max({METRIC_LAST_ROUND_TIMESTAMP})"
ROUNDS_PER_MINUTE = f"60 * rate({METRIC_ROUNDS_TOTAL}[{ROUND_WINDOW}])"
ROUND_DURATION_P50 = quantile(0.5, METRIC_ROUND_DURATION)
ROUND_DURATION_P95 = quantile(0.95, METRIC_ROUND_DURATION)
ROUND_DURATION_MEAN = mean(METRIC_ROUND_DURATION)
# Participation: against the configured node count, else the node targets Prometheus found.
PARTICIPATION = (
    f"max({METRIC_ACTIVE_NODES}) / (max({METRIC_NODES_EXPECTED}) or count(up{{{NODES}}}))"
)

# ----------------------------------------------------------------- privacy
NODE_EPSILON = METRIC_NODE_EPSILON
MAX_EPSILON = METRIC_MAX_EPSILON
EPSILON_BUDGET = METRIC_EPSILON_BUDGET
EPSILON_BUDGET_USED = f"max({METRIC_MAX_EPSILON}) / max({METRIC_EPSILON_BUDGET})"
EXHAUSTED_NODES = METRIC_EXHAUSTED_NODES

# ----------------------------------------------------------------- Byzantine tolerance
REJECTED_TOTAL = METRIC_REJECTED_UPDATES
FLAGGED_TOTAL = METRIC_FLAGGED_UPDATES
REJECTED_RECENT = f"increase({METRIC_REJECTED_UPDATES}[{ROUND_WINDOW}])"
FLAGGED_RECENT = f"increase({METRIC_FLAGGED_UPDATES}[{ROUND_WINDOW}])"
SUSPECTED_SHARE = METRIC_SUSPECTED_BYZANTINE_SHARE
CONFIGURED_SHARE = METRIC_CONFIGURED_BYZANTINE_SHARE
NODE_WEIGHT = METRIC_NODE_WEIGHT
_WEIGHT_BY_ATTACK = (
    f"max by ({N}) ({METRIC_NODE_WEIGHT}) * on({N}) group_left(attack) "
    f"max by ({N}, attack) ({METRIC_NODE_CONFIGURED_ATTACK})"
)
WEIGHT_BY_ATTACK = f"sum by (attack) ({_WEIGHT_BY_ATTACK})"
# Weight the configured attackers received in the last aggregate (0 when there are none).
ATTACKER_WEIGHT = (
    f"sum(max by ({N}) ({METRIC_NODE_WEIGHT}) * on({N}) group_left(attack) "
    f'max by ({N}, attack) ({METRIC_NODE_CONFIGURED_ATTACK}{{attack!="honest"}})) '
    f"or vector(0)"
)

# ----------------------------------------------------------------- operations
CERT_EXPIRY_DAYS = METRIC_CERT_EXPIRY_DAYS
STORE_UP = METRIC_STORE_UP
TARGETS_UP = 'sum by (job) (up{job=~"sovereign-map-.*"})'
TARGETS_DOWN = 'up{job=~"sovereign-map-.*"}'

# ----------------------------------------------------------------- system performance
NODE_CPU = f"rate(process_cpu_seconds_total{{{NODES}}}[{RATE_INTERVAL}])"
NODE_MEMORY = f"process_resident_memory_bytes{{{NODES}}}"
API_CPU = f"rate(process_cpu_seconds_total{{{API}}}[{RATE_INTERVAL}])"
API_MEMORY = f"process_resident_memory_bytes{{{API}}}"
AGGREGATION_P95 = quantile(0.95, METRIC_AGGREGATION_DURATION)
AGGREGATION_MEAN = mean(METRIC_AGGREGATION_DURATION)
UPDATES_PER_MINUTE = f"60 * rate({METRIC_ACCEPTED_UPDATES}[{ROUND_WINDOW}])"
NODE_EXAMPLES_PER_SECOND = f"sum(rate({NODE_METRIC_EXAMPLES}{{{NODES}}}[{RATE_INTERVAL}]))"
NODE_UPLOAD_BYTES = f"sum by ({N}) (rate({NODE_METRIC_UPDATE_BYTES}{{{NODES}}}[{RATE_INTERVAL}]))"
NODE_TRAIN_P95 = quantile(0.95, NODE_METRIC_TRAIN_DURATION, by=N, selector=NODES)
NODE_FITS_PER_MINUTE = f"60 * sum(rate({NODE_METRIC_FIT_ROUNDS}{{{NODES}}}[{ROUND_WINDOW}]))"
NODE_TRAIN_LOSS = f"{NODE_METRIC_TRAIN_LOSS}{{{NODES}}}"
