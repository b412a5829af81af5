"""The runtime contract shared by ``fl/``, ``certs/``, ``dashboards/`` and ``infra/``.

Every port, environment variable, file name and metric name that more than one part of
the system relies on is fixed here, once, and imported by both the processes that run
(``fl``) and the programs that deploy them (``infra``). See ``ARCHITECTURE.md``.

This module must stay importable without the FL runtime (no torch, no flwr).
"""

from __future__ import annotations

from typing import Final

# --------------------------------------------------------------------------- ports
AGGREGATOR_PORT: Final = 8080  # Flower SuperLink: Fleet, Control and Runtime APIs (mTLS)
METRICS_API_PORT: Final = 8000  # Flask metrics API: /health /convergence /metrics_summary /metrics
NODE_METRICS_PORT: Final = 9101  # each node's Prometheus /metrics endpoint
PROMETHEUS_PORT: Final = 9090
ALERTMANAGER_PORT: Final = 9093
GRAFANA_PORT: Final = 3000

# ------------------------------------------------------------ environment variables
# Names the original deployment guide used are kept as they were.
ENV_AGGREGATOR_HOST: Final = "AGGREGATOR_HOST"
ENV_AGGREGATOR_PORT: Final = "AGGREGATOR_PORT"
ENV_NODE_ID: Final = "NODE_ID"  # e.g. "node-3"; the ordinal after the last '-' is the partition
ENV_NUM_ROUNDS: Final = "NUM_ROUNDS"
ENV_MIN_FIT_CLIENTS: Final = "MIN_FIT_CLIENTS"
# Ours.
ENV_NUM_NODES: Final = "SM_NUM_NODES"  # number of partitions the training set is split into
ENV_PARTITION_ID: Final = "SM_PARTITION_ID"  # overrides the ordinal taken from NODE_ID
ENV_NODE_STAKE: Final = "SM_NODE_STAKE"
ENV_NODE_ATTACK: Final = "SM_NODE_ATTACK"  # honest | sign-flip | gaussian | label-flip | free-rider
ENV_ATTACK_SCALE: Final = "SM_ATTACK_SCALE"
ENV_STAKES_FILE: Final = "SM_STAKES_FILE"  # aggregator: YAML/JSON table node id -> stake
ENV_RULE: Final = "SM_RULE"  # aggregation rule name (fl.aggregation.RULES)
ENV_PARTITION: Final = "SM_PARTITION"  # iid | dirichlet
ENV_ALPHA: Final = "SM_DIRICHLET_ALPHA"
ENV_SEED: Final = "SM_SEED"
ENV_SAMPLES_PER_NODE: Final = "SM_SAMPLES_PER_NODE"
ENV_DP_ENABLED: Final = "SM_DP"  # "1" (default) or "0"
ENV_DP_NOISE_MULTIPLIER: Final = "SM_DP_NOISE_MULTIPLIER"
ENV_DP_MAX_GRAD_NORM: Final = "SM_DP_MAX_GRAD_NORM"
ENV_DP_DELTA: Final = "SM_DP_DELTA"
ENV_DP_EPSILON_BUDGET: Final = "SM_DP_EPSILON_BUDGET"
ENV_DATA_DIR: Final = "SM_DATA_DIR"  # MNIST IDX files; unset: a cache filled by download
ENV_STATE_DIR: Final = "SM_STATE_DIR"  # aggregator: SuperLink DB, checkpoints, metrics store
ENV_TLS_DIR: Final = "SM_TLS_DIR"  # ca.crt, tls.crt, tls.key (+ ca.crl on the aggregator)
ENV_OPERATOR_TLS_DIR: Final = "SM_OPERATOR_TLS_DIR"  # aggregator: operator bundle (client cert)
ENV_METRICS_API_PORT: Final = "SM_METRICS_API_PORT"
ENV_NODE_METRICS_PORT: Final = "SM_NODE_METRICS_PORT"
ENV_METRICS_DB: Final = "SM_METRICS_DB"  # metrics API: path of the metrics store
ENV_METRICS_API_HOST: Final = "SM_METRICS_API_HOST"  # metrics API bind address (0.0.0.0)
ENV_METRICS_CERT_DIR: Final = "SM_METRICS_CERT_DIR"  # metrics API: PEM certificates to watch
ENV_ATTACK_TABLE: Final = "SM_ATTACK_TABLE"  # metrics API: YAML/JSON node id -> attack mode
ENV_NODE_STATE_DIR: Final = "SM_NODE_STATE_DIR"  # node: its fit log and Flower home (scratch)

# ------------------------------------------------------------ files and volumes
TLS_CA_FILE: Final = "ca.crt"
TLS_CERT_FILE: Final = "tls.crt"
TLS_KEY_FILE: Final = "tls.key"
TLS_CRL_FILE: Final = "ca.crl"
METRICS_DB_FILE: Final = "metrics.sqlite"  # under the aggregator's state dir
CHECKPOINT_DIR: Final = "checkpoints"  # under the aggregator's state dir
SUPERLINK_DB_FILE: Final = "superlink.db"  # under the aggregator's state dir
RUN_INFO_FILE: Final = "run.json"  # under the aggregator's state dir: the run it submitted
NODE_FIT_LOG_FILE: Final = "fits.jsonl"  # under a node's state dir: one JSON line per fit
AGGREGATOR_STATE_MOUNT: Final = "/var/lib/sovereign-map"  # container path of the data volume
TLS_MOUNT: Final = "/etc/sovereign-map/tls"
OPERATOR_TLS_MOUNT: Final = "/etc/sovereign-map/operator-tls"  # aggregator: operator bundle
DATA_MOUNT: Final = "/var/cache/sovereign-map/mnist"

# ------------------------------------------------------------ Prometheus metric names
METRIC_ACCURACY: Final = "sovereignmap_fl_accuracy"  # gauge, percent
METRIC_LOSS: Final = "sovereignmap_fl_loss"  # gauge
METRIC_ROUND: Final = "sovereignmap_fl_round"  # gauge, last completed round
METRIC_ROUNDS_TOTAL: Final = "sovereignmap_fl_rounds_total"  # counter
METRIC_ACTIVE_NODES: Final = "sovereignmap_active_nodes"  # gauge, participants last round
METRIC_ROUND_DURATION: Final = "sovereignmap_fl_round_duration_seconds"  # histogram
METRIC_REJECTED_UPDATES: Final = "sovereignmap_fl_rejected_updates_total"  # counter
METRIC_FLAGGED_UPDATES: Final = "sovereignmap_fl_byzantine_flagged_total"  # counter
METRIC_NODE_EPSILON: Final = "sovereignmap_node_epsilon"  # gauge{node}
METRIC_NODE_WEIGHT: Final = "sovereignmap_node_aggregation_weight"  # gauge{node}
METRIC_MAX_EPSILON: Final = "sovereignmap_fl_max_epsilon"  # gauge
METRIC_CERT_EXPIRY_DAYS: Final = "sovereignmap_certificate_expiry_days"  # gauge{subject,file}
# Served by the metrics API as well (from the store and its run configuration).
METRIC_ACCEPTED_UPDATES: Final = "sovereignmap_fl_accepted_updates_total"  # counter
METRIC_AGGREGATION_DURATION: Final = "sovereignmap_fl_aggregation_duration_seconds"  # histogram
METRIC_LAST_ROUND_TIMESTAMP: Final = "sovereignmap_fl_last_round_timestamp_seconds"  # gauge, unix
METRIC_SUSPECTED_BYZANTINE_SHARE: Final = "sovereignmap_fl_suspected_byzantine_share"  # gauge 0..1
METRIC_EXHAUSTED_NODES: Final = "sovereignmap_fl_budget_exhausted_nodes"  # gauge, last round
METRIC_ROUNDS_PLANNED: Final = "sovereignmap_fl_rounds_planned"  # gauge, NUM_ROUNDS (if set)
METRIC_NODES_EXPECTED: Final = "sovereignmap_fl_nodes_expected"  # gauge, SM_NUM_NODES (if set)
METRIC_EPSILON_BUDGET: Final = "sovereignmap_fl_epsilon_budget"  # gauge (if set)
METRIC_CONFIGURED_BYZANTINE_SHARE: Final = "sovereignmap_fl_configured_byzantine_share"  # gauge
METRIC_NODE_CONFIGURED_ATTACK: Final = "sovereignmap_node_configured_attack"  # gauge{node,attack}=1
METRIC_STORE_UP: Final = "sovereignmap_metrics_store_up"  # gauge, 1 when the store is readable

# Exported by each node on NODE_METRICS_PORT (besides prometheus_client's process_* metrics).
# Deliberately not METRIC_*: the metrics API does not serve them.
NODE_METRIC_FIT_ROUNDS: Final = "sovereignmap_node_fit_rounds_total"  # counter, fits done
NODE_METRIC_TRAIN_DURATION: Final = "sovereignmap_node_train_duration_seconds"  # histogram
NODE_METRIC_TRAIN_LOSS: Final = "sovereignmap_node_train_loss"  # gauge, last local loss
NODE_METRIC_EXAMPLES: Final = "sovereignmap_node_examples_total"  # counter, examples trained
NODE_METRIC_UPDATE_BYTES: Final = "sovereignmap_node_update_bytes_total"  # counter, bytes sent
NODE_METRIC_EPSILON: Final = "sovereignmap_node_dp_epsilon"  # gauge, the node's own cumulative ε
NODE_METRIC_STAKE: Final = "sovereignmap_node_stake"  # gauge, the stake the node was given

# ------------------------------------------------------------ Prometheus jobs and labels
PROM_JOB_METRICS_API: Final = "sovereign-map-metrics-api"
PROM_JOB_NODES: Final = "sovereign-map-nodes"
PROM_JOB_PROMETHEUS: Final = "prometheus"
PROM_JOB_ALERTMANAGER: Final = "alertmanager"
PROM_NODE_LABEL: Final = "node"  # target label naming the node a series came from
LABEL_NODE_ID: Final = "sovereign-map/node-id"  # container/pod label: the NODE_ID (optional)
# Labels on every container / pod of a stack (Docker labels and Kubernetes labels alike).
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_PART_OF_VALUE: Final = "sovereign-map"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
COMPONENT_AGGREGATOR: Final = "aggregator"
COMPONENT_METRICS_API: Final = "metrics-api"
COMPONENT_NODE: Final = "node"
COMPONENT_PROMETHEUS: Final = "prometheus"
COMPONENT_ALERTMANAGER: Final = "alertmanager"
COMPONENT_GRAFANA: Final = "grafana"
GRAFANA_DASHBOARDS_MOUNT: Final = "/var/lib/grafana/dashboards/sovereign-map"
GRAFANA_PROVISIONING_MOUNT: Final = "/etc/grafana/provisioning"

# ------------------------------------------------------------ defaults
DEFAULT_RULE: Final = "fltrust"
ATTACK_MODES: Final = ("honest", "sign-flip", "gaussian", "label-flip", "free-rider")
