"""Stack settings: the presets and YAML files load, and every kind of bad config fails with one
message that names the key (also through the Pulumi program, where it would stop a preview)."""

from __future__ import annotations

import pulumi
import pytest

from infra.mocked import run_program, stack_file_config
from infra.stacks import StackConfigError, Target, load_settings
from infra.stacks.quantity import QuantityError, cpu_cores, memory_bytes, memory_mib

PASSWORD = {"grafanaAdminPassword": "correct-horse"}


@pytest.mark.parametrize(
    ("stack", "target", "nodes", "byzantine"),
    [
        ("local", Target.DOCKER, 5, 0),
        ("staging", Target.DOCKER, 50, 2),
        ("prod", Target.KUBERNETES, 100, 0),
    ],
)
def test_stack_files_give_the_scales_of_the_guide(
    stack: str, target: Target, nodes: int, byzantine: int
) -> None:
    settings = load_settings(stack_file_config(stack), stack)
    assert settings.target is target
    assert settings.nodes.count == nodes
    assert settings.byzantine.count == byzantine
    assert settings.node_ids[0] == "node-0" and settings.node_ids[-1] == f"node-{nodes - 1}"


def test_every_stack_switches_target_with_one_key() -> None:
    for stack in ("local", "staging", "prod"):
        for target in Target:
            raw = {**stack_file_config(stack), "target": target.value}
            assert load_settings(raw, stack).target is target


def test_byzantine_nodes_are_the_first_k_and_stakes_come_from_the_table() -> None:
    settings = load_settings(
        {
            "nodes": {"count": 4, "stakes": {"node-2": 3.5}, "defaultStake": 2},
            "byzantine": {"count": 1, "mode": "gaussian"},
        },
        "local",
    )
    assert [settings.attack_of(i) for i in range(4)] == ["gaussian", "honest", "honest", "honest"]
    assert settings.stake_table() == {"node-0": 2, "node-1": 2, "node-2": 3.5, "node-3": 2}
    assert settings.attack_table() == {"node-0": "gaussian"}


def test_partial_override_keeps_the_other_defaults() -> None:
    settings = load_settings({"resources": {"node": {"limits": {"cpu": 2}}}}, "prod")
    assert settings.resources.node.limits.cpu == "2"
    assert settings.resources.node.limits.memory == "768Mi"  # prod preset
    assert settings.resources.node.requests.cpu == "250m"


def test_min_fit_clients_defaults_to_every_node() -> None:
    assert load_settings({}, "local").min_fit_clients == 5
    assert load_settings({"training": {"minFitClients": 3}}, "local").min_fit_clients == 3


@pytest.mark.parametrize(
    ("raw", "key", "fragment"),
    [
        ({"byzantine": {"count": 5}}, "byzantine.count", "at least one node must be honest"),
        ({"byzantine": {"count": 7}}, "byzantine.count", "more than 7 nodes"),
        ({"training": {"minFitClients": 6}}, "training.minFitClients", "more than the 5 nodes"),
        ({"target": "swarm"}, "target", "'docker' or 'kubernetes'"),
        ({"training": {"rule": "average"}}, "training.rule", "unknown aggregation rule 'average'"),
        ({"byzantine": {"mode": "evil"}}, "byzantine.mode", "unknown attack mode 'evil'"),
        ({"storage": {"prometheus": "-10Gi"}}, "storage.prometheus", "greater than zero"),
        ({"storage": {"grafana": "lots"}}, "storage.grafana", "is not a size"),
        ({"nodes": {"count": -3}}, "nodes.count", "greater than 0"),
        ({"nodes": {"count": 0}}, "nodes.count", "greater than 0"),
        (
            {"resources": {"node": {"limits": {"cpu": "-1"}}}},
            "resources.node.limits.cpu",
            "greater than zero",
        ),
        (
            {"resources": {"node": {"requests": {"memory": "2Gi"}}}},
            "resources.node",
            "exceeds limits.memory",
        ),
        (
            {"certificates": {"renewBeforeDays": 90}},
            "certificates.renewBeforeDays",
            "shorter than the certificate validity",
        ),
        (
            {"certificates": {"validityDays": 20}},
            "certificates.renewBeforeDays",
            "renewal window (30 days)",
        ),
        ({"certificates": {"caValidityDays": 60}}, "certificates.caValidityDays", "must outlive"),
        (
            {"certificates": {"extraDnsNames": ["not a name"]}},
            "certificates.extraDnsNames",
            "not a DNS name",
        ),
        (
            {"nodes": {"count": 3, "stakes": {"node-7": 2.0}}},
            "nodes.stakes",
            "node-7 is not a node",
        ),
        ({"nodes": {"cuont": 3}}, "nodes.cuont", "did you mean 'count'"),
        ({"image": {"tag": "latest"}}, "image.tag", "'latest' is not allowed"),
        (
            {"monitoring": {"grafanaImage": "grafana/grafana"}},
            "monitoring.grafanaImage",
            "has no tag",
        ),
        (
            {"image": {"push": True, "repository": "sovereign-map"}},
            "image.repository",
            "names no registry",
        ),
        ({"kubernetes": {"namespace": "Not_A_Label"}}, "kubernetes.namespace", "DNS label"),
        ({"docker": {"publishHost": "localhost"}}, "docker.publishHost", "not an IP address"),
        ({"privacy": {"delta": 2}}, "privacy.delta", "less than 1"),
    ],
)
def test_invalid_config_names_the_key(raw: dict, key: str, fragment: str) -> None:
    with pytest.raises(StackConfigError) as caught:
        load_settings(raw, "local")
    error = caught.value
    assert error.key == key
    assert str(error).startswith(f"invalid stack configuration: sovereign-map:{key}: ")
    assert fragment in str(error)
    assert "\n" not in str(error)  # one message, not a report


def test_a_stack_without_preset_must_say_how_many_nodes() -> None:
    with pytest.raises(StackConfigError, match=r"sovereign-map:nodes\.count: is required"):
        load_settings({}, "dev-alice")
    assert load_settings({"nodes": {"count": 2}}, "dev-alice").nodes.count == 2


def test_the_error_is_a_pulumi_run_error() -> None:
    """Pulumi prints a RunError's message alone, without a traceback."""
    assert issubclass(StackConfigError, pulumi.RunError)


def test_bad_config_stops_the_program_with_the_clear_error() -> None:
    with pytest.raises(StackConfigError, match=r"sovereign-map:byzantine\.count"):
        run_program(
            "staging", {**stack_file_config("staging"), "byzantine": {"count": 60}}, PASSWORD
        )


def test_unknown_top_level_key_stops_the_program() -> None:
    with pytest.raises(
        StackConfigError, match=r"sovereign-map:nodez: unknown key; did you mean 'nodes'"
    ):
        run_program("local", {"nodez": {"count": 3}}, PASSWORD)


def test_missing_or_short_grafana_password_is_a_clear_error() -> None:
    with pytest.raises(
        StackConfigError, match="pulumi config set --secret sovereign-map:grafanaAdminPassword"
    ):
        run_program("local", {}, {})
    with pytest.raises(StackConfigError, match="at least 8 characters"):
        run_program("local", {}, {"grafanaAdminPassword": "short"})


def test_pushing_needs_the_registry_password() -> None:
    config = {"image": {"push": True, "build": True, "repository": "ghcr.io/acme/sovereign-map"}}
    with pytest.raises(StackConfigError, match="sovereign-map:registryPassword: is needed"):
        run_program("local", config, PASSWORD)


def test_webhook_must_be_http() -> None:
    with pytest.raises(StackConfigError, match="alertWebhookUrl: must be an http"):
        run_program("local", {}, {**PASSWORD, "alertWebhookUrl": "ftp://example.com"})


def test_quantities() -> None:
    assert cpu_cores("500m") == cpu_cores("0.5")
    assert memory_bytes("1Gi") == 2**30 and memory_bytes("1G") == 10**9
    assert memory_mib("768Mi") == 768
    for bad in ("", "1.5.3", "5x", "-1"):
        with pytest.raises(QuantityError):
            cpu_cores(bad)
    with pytest.raises(QuantityError):
        memory_bytes("0")
