"""The metrics API serves the metrics store: JSON endpoints, Prometheus metrics, errors."""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

import fl.contract as contract
from fl.metrics_api import RunConfig, create_app
from fl.metrics_api.config import ConfigError, load_attack_table
from fl.metrics_store import MetricsStore, NodeRoundRow, RoundRow

T0 = 1_700_000_000.0
NODES = [f"node-{i}" for i in range(5)]
ATTACKER = "node-4"


def sample_round(n: int, *, t0: float = T0) -> RoundRow:
    """Round ``n`` of a 5-node run where node-4 attacks and the rule gives it zero weight."""
    nodes = [
        NodeRoundRow(
            node=node,
            epsilon=0.4 * n,
            weight=0.0 if node == ATTACKER else 0.25,
            stake=1.0,
            examples=600,
            status="flagged" if node == ATTACKER else "accepted",
        )
        for node in NODES
    ]
    return RoundRow(
        round=n,
        accuracy=50.0 + 3 * n,
        loss=2.0 / n,
        duration_s=10.0 * n,
        aggregation_s=0.02 * n,
        participants=5,
        rejected=1 if n % 2 else 0,
        flagged=1,
        exhausted=0,
        max_epsilon=0.4 * n,
        rule="fltrust",
        timestamp=t0 + 30.0 * n,
        nodes=nodes,
    )


def fill_store(path: Path, rounds: int, *, t0: float = T0) -> MetricsStore:
    store = MetricsStore(path)
    for n in range(1, rounds + 1):
        store.append(sample_round(n, t0=t0))
    return store


def make_cert(directory: Path, name: str, common_name: str, days: float) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    from cryptography.hazmat.primitives.serialization import Encoding

    (directory / name).parent.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(cert.public_bytes(Encoding.PEM))


def strict_json(data: bytes) -> object:
    def reject(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(data, parse_constant=reject)


def scrape(client: FlaskClient) -> dict[str, list[tuple[str, dict[str, str], float]]]:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples: dict[str, list[tuple[str, dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.name, s.labels, s.value))
    return samples


def value(
    samples: dict[str, list[tuple[str, dict[str, str], float]]], name: str, **labels: str
) -> float:
    matches = [v for _, lab, v in samples[name] if all(lab.get(k) == x for k, x in labels.items())]
    assert len(matches) == 1, (name, labels, samples.get(name))
    return matches[0]


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / contract.METRICS_DB_FILE


@pytest.fixture(scope="module")
def filled_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 rounds, written once for the read-only tests of this module."""
    path = tmp_path_factory.mktemp("filled") / contract.METRICS_DB_FILE
    fill_store(path, 12)
    return path


@pytest.fixture
def client(filled_store: Path) -> FlaskClient:
    return create_app(filled_store).test_client()


# --------------------------------------------------------------------- JSON endpoints


def test_convergence_serves_every_round_in_the_guides_shape(client: FlaskClient) -> None:
    body = client.get("/convergence").json
    assert body["rounds"] == list(range(1, 13))
    assert body["accuracies"] == [50.0 + 3 * n for n in range(1, 13)]
    assert body["losses"] == pytest.approx([2.0 / n for n in range(1, 13)])
    assert body["timestamps"] == [T0 + 30.0 * n for n in range(1, 13)]
    assert body["round_participants"] == [5] * 12
    assert (body["current_round"], body["current_accuracy"]) == (12, 86.0)
    assert body["current_loss"] == pytest.approx(2.0 / 12)


def test_convergence_limit_returns_the_last_rounds(client: FlaskClient) -> None:
    body = client.get("/convergence?limit=3").json
    assert body["rounds"] == [10, 11, 12]
    assert body["current_round"] == 12


@pytest.mark.parametrize(
    "limit", ["0", "-1", "abc", "1e3", "9" * 400, "9" * 5000, " 3", "2000000", "²", "٣"]
)
def test_convergence_rejects_bad_limits_with_json_400(client: FlaskClient, limit: str) -> None:
    response = client.get("/convergence", query_string={"limit": limit})
    assert response.status_code == 400
    assert "limit" in response.json["message"]


@pytest.mark.parametrize(
    ("rounds", "planned", "state"),
    [(0, 3, "waiting for round 1"), (2, 3, "training"), (3, 3, "completed"), (3, None, "training")],
)
def test_the_run_state_says_when_the_planned_rounds_are_done(
    store_path: Path, rounds: int, planned: int | None, state: str
) -> None:
    MetricsStore(store_path).initialise()
    fill_store(store_path, rounds)
    client = create_app(store_path, run_config=RunConfig(rounds_planned=planned)).test_client()
    assert client.get("/convergence").json["status"] == state
    assert client.get("/health").json["state"] == state


def test_summary_reports_current_state_history_and_rates(store_path: Path) -> None:
    fill_store(store_path, 12)
    config = RunConfig(rounds_planned=20, nodes_expected=5, epsilon_budget=8.0)
    body = create_app(store_path, run_config=config).test_client().get("/metrics_summary").json
    assert body["current_round"] == 12
    assert body["rounds_planned"] == 20
    assert body["current_accuracy"] == 86.0
    assert body["participants"] == 5
    assert [h["round"] for h in body["history"]] == list(range(3, 13))
    assert body["rounds_per_minute"] == pytest.approx(2.0)  # one round every 30 s
    assert body["mean_round_duration_s"] == pytest.approx(65.0)  # mean of 10..120
    assert body["rejected_updates_total"] == 6  # odd rounds
    assert body["rejected_updates_last_round"] == 0
    assert body["flagged_updates_total"] == 12
    assert body["max_epsilon"] == pytest.approx(4.8)
    assert body["epsilon_budget"] == 8.0


def test_health_reports_the_current_round(client: FlaskClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json["status"] == "healthy"
    assert response.json["service"] == "metrics-api"
    assert response.json["current_round"] == 12


def test_new_rounds_show_up_without_a_restart(store_path: Path) -> None:
    store = fill_store(store_path, 2)
    client = create_app(store_path).test_client()
    assert client.get("/convergence").json["current_round"] == 2
    store.append(sample_round(3))
    assert client.get("/convergence").json["current_round"] == 3
    assert value(scrape(client), contract.METRIC_ROUND) == 3


def test_non_finite_values_are_valid_json(store_path: Path) -> None:
    # (SQLite turns NaN into NULL, which the store refuses; a diverged loss arrives as inf)
    store = MetricsStore(store_path)
    store.append(
        RoundRow(
            round=1,
            accuracy=9.8,
            loss=math.inf,
            duration_s=1.0,
            aggregation_s=0.1,
            participants=1,
            rejected=0,
            flagged=0,
            exhausted=0,
            max_epsilon=math.inf,
            rule="fedavg",
        )
    )
    client = create_app(store_path).test_client()
    for path in ("/convergence", "/metrics_summary"):
        body = strict_json(client.get(path).data)
        assert isinstance(body, dict)
        assert body["current_loss"] is None


# --------------------------------------------------------------------- empty and broken


def test_before_round_one_the_api_is_healthy_and_empty(store_path: Path) -> None:
    client = create_app(store_path).test_client()  # the aggregator has not created it yet
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json["status"] == "healthy"
    assert health.json["current_round"] == 0
    body = client.get("/convergence").json
    assert body["rounds"] == [] and body["accuracies"] == []
    assert body["current_round"] == 0 and body["current_accuracy"] is None
    summary = client.get("/metrics_summary").json
    assert summary["history"] == [] and summary["rounds_per_minute"] is None
    samples = scrape(client)
    assert value(samples, contract.METRIC_ROUND) == 0
    assert value(samples, contract.METRIC_ROUNDS_TOTAL) == 0
    assert value(samples, contract.METRIC_STORE_UP) == 1
    assert contract.METRIC_ACCURACY not in samples  # no model evaluated yet: no value


def test_store_created_but_without_rounds_is_empty(store_path: Path) -> None:
    MetricsStore(store_path).initialise()
    client = create_app(store_path).test_client()
    assert client.get("/health").status_code == 200
    assert client.get("/convergence").json["rounds"] == []


def test_zero_byte_store_file_is_empty_not_broken(store_path: Path) -> None:
    store_path.parent.mkdir(parents=True)
    store_path.touch()
    assert create_app(store_path).test_client().get("/health").status_code == 200


@pytest.mark.parametrize(
    "content", [b"this is not a database" * 100, b"SQLite format 3\x00" + b"\xff" * 4000]
)
def test_corrupt_store_is_503_with_a_reason(store_path: Path, content: bytes) -> None:
    store_path.parent.mkdir(parents=True)
    store_path.write_bytes(content)
    client = create_app(store_path).test_client()
    for path in ("/health", "/convergence", "/metrics_summary"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert response.json["status"] == "unhealthy"
        assert str(store_path) in response.json["reason"]
    samples = scrape(client)  # the scrape itself still works and says the store is down
    assert value(samples, contract.METRIC_STORE_UP) == 0
    assert contract.METRIC_ROUND not in samples


def test_store_with_a_foreign_schema_is_503(store_path: Path) -> None:
    store_path.parent.mkdir(parents=True)
    with sqlite3.connect(store_path) as conn:
        conn.execute("CREATE TABLE rounds (round INTEGER, something_else TEXT)")
        conn.execute("INSERT INTO rounds VALUES (1, 'x')")
    assert create_app(store_path).test_client().get("/health").status_code == 503


def test_store_path_that_is_a_directory_is_503(store_path: Path) -> None:
    store_path.mkdir(parents=True)
    assert create_app(store_path).test_client().get("/health").status_code == 503


# --------------------------------------------------------------------- Prometheus metrics


def test_metrics_export_every_contract_metric(store_path: Path, tmp_path: Path) -> None:
    fill_store(store_path, 12)
    certs = tmp_path / "pki"
    make_cert(certs, "ca.crt", "Sovereign Map CA", days=365)
    config = RunConfig(
        rounds_planned=20, nodes_expected=5, epsilon_budget=8.0, attacks={ATTACKER: "sign-flip"}
    )
    samples = scrape(create_app(store_path, certs, run_config=config).test_client())
    names = {v for k, v in vars(contract).items() if k.startswith("METRIC_")}
    exported = {
        n.removesuffix("_bucket").removesuffix("_count").removesuffix("_sum") for n in samples
    }
    assert names <= exported, names - exported


def test_metric_values_match_the_store(client: FlaskClient) -> None:
    s = scrape(client)
    assert value(s, contract.METRIC_ACCURACY) == 86.0
    assert value(s, contract.METRIC_LOSS) == pytest.approx(2.0 / 12)
    assert value(s, contract.METRIC_ROUND) == 12
    assert value(s, contract.METRIC_ROUNDS_TOTAL) == 12
    assert value(s, contract.METRIC_ACTIVE_NODES) == 5
    assert value(s, contract.METRIC_REJECTED_UPDATES) == 6
    assert value(s, contract.METRIC_FLAGGED_UPDATES) == 12
    assert value(s, contract.METRIC_ACCEPTED_UPDATES) == 60
    assert value(s, contract.METRIC_MAX_EPSILON) == pytest.approx(4.8)
    assert value(s, contract.METRIC_LAST_ROUND_TIMESTAMP) == T0 + 360
    # round 12: 0 rejected, 1 of 5 accepted updates given zero weight
    assert value(s, contract.METRIC_SUSPECTED_BYZANTINE_SHARE) == pytest.approx(0.2)
    assert value(s, contract.METRIC_NODE_EPSILON, node="node-2") == pytest.approx(4.8)
    assert value(s, contract.METRIC_NODE_WEIGHT, node=ATTACKER) == 0.0
    assert value(s, contract.METRIC_NODE_WEIGHT, node="node-0") == 0.25


def test_replies_that_were_errors_get_no_node_series(store_path: Path) -> None:
    row = sample_round(1)
    gone = NodeRoundRow("unreachable", 0.0, 0.0, 0.0, 0, "error:node unavailable")
    MetricsStore(store_path).append(replace(row, nodes=[*row.nodes, gone]))
    s = scrape(create_app(store_path).test_client())
    nodes = {labels["node"] for _, labels, _ in s[contract.METRIC_NODE_EPSILON]}
    assert nodes == set(NODES)


def test_round_duration_histogram_is_built_from_stored_durations(client: FlaskClient) -> None:
    s = scrape(client)
    name = contract.METRIC_ROUND_DURATION
    durations = [10.0 * n for n in range(1, 13)]  # 10, 20, ... 120 s
    assert value(s, f"{name}_count") == 12
    assert value(s, f"{name}_sum") == pytest.approx(sum(durations))
    for le, expected in (
        ("10.0", 1),
        ("30.0", 3),
        ("60.0", 6),
        ("90.0", 9),
        ("120.0", 12),
        ("+Inf", 12),
    ):
        assert value(s, f"{name}_bucket", le=le) == expected
    agg = contract.METRIC_AGGREGATION_DURATION
    assert value(s, f"{agg}_bucket", le="0.1") == 5  # 0.02 .. 0.10
    assert value(s, f"{agg}_count") == 12


def test_configured_attackers_are_labelled_and_counted(store_path: Path, tmp_path: Path) -> None:
    fill_store(store_path, 3)
    table = tmp_path / "attacks.yaml"
    table.write_text(f"{ATTACKER}: sign-flip\nnode-1: {{stake: 2.0, attack: honest}}\n")
    config = RunConfig(nodes_expected=5, attacks=load_attack_table(table))
    s = scrape(create_app(store_path, run_config=config).test_client())
    attack = contract.METRIC_NODE_CONFIGURED_ATTACK
    assert value(s, attack, node=ATTACKER) == 1
    assert {lab["node"]: lab["attack"] for _, lab, _ in s[attack]} == {
        "node-0": "honest",
        "node-1": "honest",
        "node-2": "honest",
        "node-3": "honest",
        ATTACKER: "sign-flip",
    }
    assert value(s, contract.METRIC_CONFIGURED_BYZANTINE_SHARE) == pytest.approx(0.2)
    assert value(s, contract.METRIC_NODES_EXPECTED) == 5


def test_certificate_expiry_days_per_certificate(store_path: Path, tmp_path: Path) -> None:
    certs = tmp_path / "pki"
    make_cert(certs, "ca.crt", "Sovereign Map CA", days=365)
    make_cert(certs, "nodes/node-1/tls.crt", "node-1", days=10)
    (certs / "tls.key").write_text("-----BEGIN PRIVATE KEY-----\nnot a cert\n")
    (certs / "broken.pem").write_text("garbage")
    s = scrape(create_app(store_path, certs).test_client())
    name = contract.METRIC_CERT_EXPIRY_DAYS
    assert value(s, name, subject="Sovereign Map CA", file="ca.crt") == pytest.approx(365, abs=0.01)
    assert value(s, name, subject="node-1", file="nodes/node-1/tls.crt") == pytest.approx(
        10, abs=0.01
    )
    assert len(s[name]) == 2


def test_no_certificate_metric_without_a_cert_dir(client: FlaskClient) -> None:
    assert contract.METRIC_CERT_EXPIRY_DAYS not in scrape(client)


# --------------------------------------------------------------------- errors and odd input


def test_unknown_path_is_a_json_404(client: FlaskClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.is_json and response.json["status"] == 404


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_wrong_method_is_a_json_405_with_allow(client: FlaskClient, method: str) -> None:
    response = client.open("/convergence", method=method, data=b"{}")
    assert response.status_code == 405
    assert response.is_json
    assert "GET" in response.headers["Allow"]


ODD_REQUESTS = [
    ("GET", "/convergence?limit=%00", {}, b""),
    ("GET", "/convergence?limit=%ff%fe", {}, b""),
    ("GET", "/convergence?limit=1&limit=abc", {}, b""),
    ("GET", "/%ff%fe%00", {}, b""),
    ("GET", "/" + "a" * 5000, {}, b""),
    ("GET", "/health/", {}, b""),
    ("GET", "/../../etc/passwd", {}, b""),
    ("GET", "/metrics_summary?x=" + "%" * 300, {}, b""),
    ("GET", "/metrics", {"Accept": "application/openmetrics-text; version=banana"}, b""),
    ("GET", "/metrics", {"Accept": "text/plain; version=1.0.0; escaping=🙂"}, b""),
    ("GET", "/health", {"Content-Type": "application/json"}, b"{not json"),
    ("POST", "/metrics", {"Content-Type": "application/json"}, b"\xff" * 1000),
    ("OPTIONS", "/health", {}, b""),
    ("HEAD", "/convergence", {}, b""),
    ("TRACE", "/", {}, b""),
]


@pytest.mark.parametrize(("method", "path", "headers", "body"), ODD_REQUESTS)
def test_odd_requests_never_cause_a_server_error(
    client: FlaskClient, method: str, path: str, headers: dict[str, str], body: bytes
) -> None:
    response = client.open(path, method=method, headers=headers, data=body)
    assert response.status_code < 500
    if response.status_code >= 400:
        assert response.is_json


def test_internal_errors_are_json_500(store_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fl.metrics_api.app as app_module

    def explode(*args: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(app_module, "convergence", explode)
    response = create_app(store_path).test_client().get("/convergence")
    assert response.status_code == 500
    assert response.is_json and "boom" not in response.get_data(as_text=True)


# --------------------------------------------------------------------- attack table


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- node-1\n- node-2\n", "must map node ids"),
        ("node-1: teleport\n", "not an attack mode"),
        ("node-1: 2.5\n", "not an attack mode"),
        ("node-1: {attack: banana}\n", "not an attack mode"),
        ("node-1: [unclosed\n", "not valid YAML"),
        ("1: sign-flip\n", "is not a string"),
    ],
)
def test_bad_attack_tables_are_refused_clearly(tmp_path: Path, text: str, message: str) -> None:
    table = tmp_path / "attacks.yaml"
    table.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_attack_table(table)


def test_attack_table_reads_json_and_empty_files(tmp_path: Path) -> None:
    table = tmp_path / "attacks.json"
    table.write_text('{"node-3": "gaussian", "node-4": {"attack": "label-flip", "stake": 1}}')
    assert load_attack_table(table) == {"node-3": "gaussian", "node-4": "label-flip"}
    table.write_text("")
    assert load_attack_table(table) == {}


def test_a_repaired_store_is_served_again(store_path: Path, tmp_path: Path) -> None:
    store_path.parent.mkdir(parents=True)
    store_path.write_bytes(b"garbage" * 500)
    client = create_app(store_path).test_client()
    assert client.get("/health").status_code == 503
    good = tmp_path / "good.sqlite"
    fill_store(good, 4)
    good.replace(store_path)  # e.g. restored from a backup
    assert client.get("/health").status_code == 200
    assert client.get("/convergence").json["current_round"] == 4


def test_repeated_reads_see_every_round_as_it_is_recorded(store_path: Path) -> None:
    store = fill_store(store_path, 1)
    client = create_app(store_path).test_client()
    for n in range(2, 7):
        store.append(sample_round(n))
        assert client.get("/convergence").json["rounds"] == list(range(1, n + 1))
        assert value(scrape(client), contract.METRIC_ROUNDS_TOTAL) == n


def test_a_body_is_rendered_once_per_store_snapshot() -> None:
    from fl.metrics_api.app import RenderedCache
    from fl.metrics_api.snapshot import Snapshot

    cache, calls = RenderedCache(), []
    first, second = Snapshot(rounds=[], latest_nodes=[]), Snapshot(rounds=[], latest_nodes=[])

    def render() -> bytes:
        calls.append(1)
        return f"body {len(calls)}".encode()

    assert cache.get("k", first, render) == b"body 1"
    assert cache.get("k", first, render) == b"body 1"  # same snapshot: not rendered again
    assert cache.get("other", first, render) == b"body 2"  # each key its own body
    assert cache.get("k", second, render) == b"body 3"  # the store changed: rendered anew
