"""Alert rules: ``promtool test rules`` for every alert (firing and quiet), ``promtool check
rules``, and ``amtool check-config`` on the Alertmanager configuration."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.alertmanager import alertmanager_config
from dashboards.alerts import Thresholds, alert_rules, alerts
from dashboards.render import to_yaml

PROMTOOL = shutil.which("promtool")
AMTOOL = shutil.which("amtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")
needs_amtool = pytest.mark.skipif(AMTOOL is None, reason="amtool not installed")

API = 'job="sovereign-map-metrics-api",instance="api:8000"'
API_LABELS = {"job": "sovereign-map-metrics-api", "instance": "api:8000"}


def api(metric: str, values: str, extra: str = "") -> dict[str, str]:
    labels = f"{API},{extra}" if extra else API
    return {"series": f"{metric}{{{labels}}}", "values": values}


def labels(severity: str, area: str, **more: str) -> dict[str, str]:
    return {"severity": severity, "area": area, **more}


def case(
    name: str,
    series: list[dict[str, str]],
    eval_time: str,
    fired: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One promtool test group: ``fired`` is the alerts expected at ``eval_time`` ([] = quiet)."""
    return {
        "name": name,
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [{"eval_time": eval_time, "exp_alerts": fired or []}],
    }


ACCURACY_DESCRIPTION = (
    "Accuracy is {} points below its best of the last 30 minutes (threshold 5.0); look for "
    "attackers the rule let through or a poisoned checkpoint."
)
STALL_DESCRIPTION = (
    "No round completed for {} and the configured rounds are not done; check that "
    "MIN_FIT_CLIENTS <= connected nodes and the aggregator's log."
)

# alert name -> promtool test groups (at least one firing, one quiet)
CASES: dict[str, list[dict[str, Any]]] = {
    "SovereignMapAccuracyDegraded": [
        case(
            "accuracy fell 10 points and stayed down",
            [api("sovereignmap_fl_accuracy", "90 90 90 90 80 80 80 80 80")],
            "7m",
            [
                {
                    "exp_labels": labels("warning", "training", **API_LABELS),
                    "exp_annotations": {
                        "summary": "Global model accuracy dropped",
                        "description": ACCURACY_DESCRIPTION.format("10.0"),
                    },
                }
            ],
        ),
        case(
            "accuracy wobbles by 2 points",
            [api("sovereignmap_fl_accuracy", "90 90 90 88 88 88 88 88 88")],
            "7m",
        ),
        case(
            "a dip shorter than 2 minutes",
            [api("sovereignmap_fl_accuracy", "90 90 80 90 90 90 90")],
            "5m",
        ),
    ],
    "SovereignMapNoRoundProgress": [
        case(
            "last round 12 minutes ago, 3 of 10 done",
            [
                api("sovereignmap_fl_last_round_timestamp_seconds", "0x15"),
                api("sovereignmap_fl_round", "3x15"),
                api("sovereignmap_fl_rounds_planned", "10x15"),
            ],
            "12m",
            [
                {
                    "exp_labels": labels("critical", "training"),
                    "exp_annotations": {
                        "summary": "No FL round completed recently",
                        "description": STALL_DESCRIPTION.format("12m 0s"),
                    },
                }
            ],
        ),
        case(
            "stalled with an unknown plan",
            [
                api("sovereignmap_fl_last_round_timestamp_seconds", "0x15"),
                api("sovereignmap_fl_round", "3x15"),
            ],
            "12m",
            [
                {
                    "exp_labels": labels("critical", "training"),
                    "exp_annotations": {
                        "summary": "No FL round completed recently",
                        "description": STALL_DESCRIPTION.format("12m 0s"),
                    },
                }
            ],
        ),
        case(
            "a round every minute",
            [
                api("sovereignmap_fl_last_round_timestamp_seconds", "0+60x15"),
                api("sovereignmap_fl_round", "1+1x15"),
                api("sovereignmap_fl_rounds_planned", "100x15"),
            ],
            "12m",
        ),
        case(
            "all planned rounds done",
            [
                api("sovereignmap_fl_last_round_timestamp_seconds", "0x15"),
                api("sovereignmap_fl_round", "10x15"),
                api("sovereignmap_fl_rounds_planned", "10x15"),
            ],
            "12m",
        ),
    ],
    "SovereignMapNoFirstRound": [
        case(
            "no round after 16 minutes",
            [api("sovereignmap_fl_round", "0x20")],
            "16m",
            [
                {
                    "exp_labels": labels("warning", "training"),
                    "exp_annotations": {
                        "summary": "Round 1 has not completed",
                        "description": "The metrics API has been up for 15m with no completed "
                        "round; are enough nodes connected (MIN_FIT_CLIENTS)?",
                    },
                }
            ],
        ),
        case("round 1 done after 3 minutes", [api("sovereignmap_fl_round", "0 0 0 1+1x17")], "16m"),
        case("only 10 minutes without a round", [api("sovereignmap_fl_round", "0x20")], "10m"),
    ],
    "SovereignMapParticipationLow": [
        case(
            "2 of 5 configured nodes",
            [
                api("sovereignmap_active_nodes", "2x10"),
                api("sovereignmap_fl_nodes_expected", "5x10"),
            ],
            "6m",
            [
                {
                    "exp_labels": labels("warning", "training"),
                    "exp_annotations": {
                        "summary": "Few nodes participate",
                        "description": "Only 40% of the nodes had an update accepted in the "
                        "last round (threshold 60%).",
                    },
                }
            ],
        ),
        case(
            "2 of 5 discovered node targets, no configured count",
            [
                api("sovereignmap_active_nodes", "2x10"),
                *[
                    {
                        "series": f'up{{job="sovereign-map-nodes",instance="n{i}:9101"}}',
                        "values": "1x10",
                    }
                    for i in range(5)
                ],
            ],
            "6m",
            [
                {
                    "exp_labels": labels("warning", "training"),
                    "exp_annotations": {
                        "summary": "Few nodes participate",
                        "description": "Only 40% of the nodes had an update accepted in the "
                        "last round (threshold 60%).",
                    },
                }
            ],
        ),
        case(
            "4 of 5 nodes",
            [
                api("sovereignmap_active_nodes", "4x10"),
                api("sovereignmap_fl_nodes_expected", "5x10"),
            ],
            "6m",
        ),
    ],
    "SovereignMapByzantineShareHigh": [
        case(
            "half the updates suspect",
            [api("sovereignmap_fl_suspected_byzantine_share", "0.5x5")],
            "2m",
            [
                {
                    "exp_labels": labels("critical", "byzantine"),
                    "exp_annotations": {
                        "summary": "Many updates were rejected or given zero weight",
                        "description": "50% of last round's updates were malformed or ignored by "
                        "the robust rule; close to the share the rule can tolerate.",
                    },
                }
            ],
        ),
        case("a fifth suspect", [api("sovereignmap_fl_suspected_byzantine_share", "0.2x5")], "2m"),
    ],
    "SovereignMapPrivacyBudgetNearlySpent": [
        case(
            "largest epsilon at 94% of the budget",
            [
                api("sovereignmap_fl_max_epsilon", "7.5x3"),
                api("sovereignmap_fl_epsilon_budget", "8x3"),
                api("sovereignmap_fl_budget_exhausted_nodes", "0x3"),
            ],
            "1m",
            [
                {
                    "exp_labels": labels("warning", "privacy"),
                    "exp_annotations": {
                        "summary": "Differential-privacy budget nearly spent",
                        "description": "The largest ε is above 90% of the budget or nodes "
                        "stopped because their budget is spent (value 0.9375).",
                    },
                }
            ],
        ),
        case(
            "two nodes exhausted, budget unknown",
            [
                api("sovereignmap_fl_max_epsilon", "1x3"),
                api("sovereignmap_fl_budget_exhausted_nodes", "2x3"),
            ],
            "1m",
            [
                {
                    "exp_labels": labels("warning", "privacy"),
                    "exp_annotations": {
                        "summary": "Differential-privacy budget nearly spent",
                        "description": "The largest ε is above 90% of the budget or nodes "
                        "stopped because their budget is spent (value 2).",
                    },
                }
            ],
        ),
        case(
            "half the budget used",
            [
                api("sovereignmap_fl_max_epsilon", "4x3"),
                api("sovereignmap_fl_epsilon_budget", "8x3"),
                api("sovereignmap_fl_budget_exhausted_nodes", "0x3"),
            ],
            "1m",
        ),
    ],
    "SovereignMapCertificateExpiring": [
        case(
            "node certificate with 5 days left",
            [
                api(
                    "sovereignmap_certificate_expiry_days",
                    "5x3",
                    'subject="node-1",file="nodes/node-1/tls.crt"',
                ),
                api("sovereignmap_certificate_expiry_days", "300x3", 'subject="CA",file="ca.crt"'),
            ],
            "1m",
            [
                {
                    "exp_labels": labels(
                        "warning",
                        "operations",
                        subject="node-1",
                        file="nodes/node-1/tls.crt",
                        **API_LABELS,
                    ),
                    "exp_annotations": {
                        "summary": "Certificate node-1 expires soon",
                        "description": "nodes/node-1/tls.crt expires in 5.0 days; run `pulumi "
                        "refresh` and `pulumi up` to rotate it.",
                    },
                }
            ],
        ),
        case(
            "a month left",
            [api("sovereignmap_certificate_expiry_days", "30x3", 'subject="CA",file="ca.crt"')],
            "1m",
        ),
    ],
    "SovereignMapTargetDown": [
        case(
            "a node stops answering",
            [
                {
                    "series": 'up{job="sovereign-map-nodes",instance="n1:9101"}',
                    "values": "1 0 0 0 0",
                },
                {
                    "series": 'up{job="sovereign-map-nodes",instance="n2:9101"}',
                    "values": "1 1 1 1 1",
                },
            ],
            "4m",
            [
                {
                    "exp_labels": labels(
                        "critical", "operations", job="sovereign-map-nodes", instance="n1:9101"
                    ),
                    "exp_annotations": {
                        "summary": "sovereign-map-nodes target down",
                        "description": "Prometheus cannot scrape n1:9101 (sovereign-map-nodes).",
                    },
                }
            ],
        ),
        case(
            "a blip of one scrape",
            [
                {
                    "series": 'up{job="sovereign-map-nodes",instance="n1:9101"}',
                    "values": "1 0 1 1 1",
                },
            ],
            "4m",
        ),
        case(
            "someone else's target",
            [{"series": 'up{job="grafana",instance="g:3000"}', "values": "0 0 0 0 0"}],
            "4m",
        ),
    ],
    "SovereignMapMetricsStoreUnreadable": [
        case(
            "store unreadable for 3 minutes",
            [api("sovereignmap_metrics_store_up", "0x5")],
            "3m",
            [
                {
                    "exp_labels": labels("critical", "operations", **API_LABELS),
                    "exp_annotations": {
                        "summary": "The metrics store cannot be read",
                        "description": "The metrics API at api:8000 cannot read the aggregator's "
                        "metrics store; see its /health for the reason.",
                    },
                }
            ],
        ),
        case("store readable", [api("sovereignmap_metrics_store_up", "1x5")], "3m"),
    ],
}


@pytest.fixture(scope="module")
def rules_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rules") / "sovereign-map.rules.yml"
    path.write_text(to_yaml(alert_rules()))
    return path


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=120, check=False
    )


def test_every_alert_has_a_firing_and_a_quiet_test() -> None:
    assert set(CASES) == {a.name for a in alerts()}
    for name, groups in CASES.items():
        outcomes = {bool(g["alert_rule_test"][0]["exp_alerts"]) for g in groups}
        assert outcomes == {True, False}, name


@needs_promtool
@pytest.mark.parametrize("alert_name", sorted(CASES))
def test_alert_fires_when_it_should_and_only_then(rules_file: Path, alert_name: str) -> None:
    groups = [
        {**g, "alert_rule_test": [{**t, "alertname": alert_name} for t in g["alert_rule_test"]]}
        for g in CASES[alert_name]
    ]
    spec = rules_file.parent / f"{alert_name}.test.yml"
    spec.write_text(
        yaml.safe_dump(
            {"rule_files": [rules_file.name], "evaluation_interval": "1m", "tests": groups},
            sort_keys=False,
            allow_unicode=True,
        )
    )
    result = run(PROMTOOL or "promtool", "test", "rules", spec)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_a_wrong_expectation_fails(rules_file: Path) -> None:
    # the harness above can fail: expect the quiet case to fire
    quiet = CASES["SovereignMapByzantineShareHigh"][1]
    wrong = {
        **quiet,
        "alert_rule_test": [
            {
                "eval_time": "2m",
                "alertname": "SovereignMapByzantineShareHigh",
                "exp_alerts": [{"exp_labels": {}}],
            }
        ],
    }
    spec = rules_file.parent / "wrong.test.yml"
    spec.write_text(yaml.safe_dump({"rule_files": [rules_file.name], "tests": [wrong]}))
    assert run(PROMTOOL or "promtool", "test", "rules", spec).returncode != 0


@needs_promtool
def test_rules_pass_promtool_check_with_lint(rules_file: Path) -> None:
    result = run(PROMTOOL or "promtool", "check", "rules", "--lint=all", "--lint-fatal", rules_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(alerts())} rules found" in result.stdout


def test_thresholds_are_configurable() -> None:
    rules = alert_rules(Thresholds(certificate_days=30, byzantine_share=0.45))["groups"][0]["rules"]
    by_name = {r["alert"]: r["expr"] for r in rules}
    assert by_name["SovereignMapCertificateExpiring"].endswith("< 30")
    assert by_name["SovereignMapByzantineShareHigh"].endswith("> 0.45")


@needs_amtool
@pytest.mark.parametrize("webhook", [None, "https://hooks.example.org/alerts"])
def test_alertmanager_config_passes_amtool(tmp_path: Path, webhook: str | None) -> None:
    path = tmp_path / "alertmanager.yml"
    path.write_text(to_yaml(alertmanager_config(webhook)))
    result = run(AMTOOL or "amtool", "check-config", path)
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(path.read_text())
    assert config["route"]["receiver"] == ("webhook" if webhook else "default")


@pytest.mark.parametrize("url", ["ftp://x/y", "not a url", "http://", ""])
def test_bad_webhook_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="webhook URL"):
        alertmanager_config(url)
