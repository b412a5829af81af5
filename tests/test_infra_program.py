"""The Pulumi program under mocks, for every stack on both targets: the resources it creates
and their key inputs (counts, replicas, ports, volumes, secrets, limits, labels, outputs)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
import yaml

from certs.pki import load_cert_pem, load_key_pem, verify
from fl.contract import (
    AGGREGATOR_PORT,
    AGGREGATOR_STATE_MOUNT,
    ALERTMANAGER_PORT,
    ENV_AGGREGATOR_HOST,
    ENV_MIN_FIT_CLIENTS,
    ENV_NODE_ATTACK,
    ENV_NODE_ID,
    ENV_NODE_STAKE,
    ENV_NUM_NODES,
    ENV_NUM_ROUNDS,
    ENV_OPERATOR_TLS_DIR,
    ENV_RULE,
    ENV_STAKES_FILE,
    ENV_TLS_DIR,
    GRAFANA_DASHBOARDS_MOUNT,
    GRAFANA_PORT,
    LABEL_COMPONENT,
    LABEL_NODE_ID,
    LABEL_PART_OF,
    METRICS_API_PORT,
    NODE_METRICS_PORT,
    OPERATOR_TLS_MOUNT,
    PROMETHEUS_PORT,
    TLS_MOUNT,
)
from infra.components.common import LABEL_INSTANCE, STAKES_FILE
from infra.mocked import PKI_TYPE, ProgramRun, Registered, run_stack, stack_file_config
from infra.stacks import load_settings
from infra.stacks.quantity import memory_bytes
from tests.test_infra_runs import COMBINATIONS, SECRETS, STACKS, stack_run

CONTAINER = "docker:index/container:Container"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
SECRET = "kubernetes:core/v1:Secret"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
SERVICE = "kubernetes:core/v1:Service"
POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"


def run(stack: str, target: str) -> ProgramRun:
    return stack_run(stack, target)


def settings_for(stack: str, target: str):
    return load_settings({**stack_file_config(stack), "target": target}, stack)


def env_of(container: Registered) -> dict[str, str]:
    return dict(item.split("=", 1) for item in container.inputs["envs"])


def uploads_of(container: Registered) -> dict[str, dict[str, Any]]:
    return {u["file"]: u for u in container.inputs.get("uploads", [])}


def is_secret(resource: Registered, path: str) -> bool:
    """Whether the input at ``path`` is a secret (itself, or inside a secret property)."""
    return any(
        path == p or path.startswith(f"{p}.") or path.startswith(f"{p}[")
        for p in resource.secret_paths
    )


def labels_of(container: Registered) -> dict[str, str]:
    return {item["label"]: item["value"] for item in container.inputs["labels"]}


# ------------------------------------------------------------------ every combination
@pytest.mark.parametrize(("stack", "target"), COMBINATIONS)
def test_outputs(stack: str, target: str) -> None:
    result = run(stack, target)
    settings = settings_for(stack, target)
    out = result.outputs
    assert out["target"] == target
    assert out["nodeCount"] == settings.nodes.count
    ca = load_cert_pem(out["caCertificate"].encode())
    assert ca.subject.rfc4514_string() == "CN=Sovereign Map CA"
    operator = load_cert_pem(out["operatorCertificate"].encode())
    verify(operator, ca, now=datetime.fromisoformat(out["certificateExpiry"]), usage="client")
    assert load_key_pem(out["operatorKey"].encode()).public_key() == operator.public_key()
    assert result.secret_outputs == {"operatorKey"}
    expiry = datetime.fromisoformat(out["certificateExpiry"])
    pki = result.of_type(PKI_TYPE)[0]
    assert expiry.date() < ca.not_valid_after_utc.date()  # the leaves expire first
    assert len(pki.inputs["node_ids"]) == settings.nodes.count
    if target == "docker":
        offset = settings.docker.port_offset
        assert out["metricsApiUrl"] == f"http://127.0.0.1:{METRICS_API_PORT + offset}"
        assert out["aggregatorAddress"] == f"127.0.0.1:{AGGREGATOR_PORT + offset}"
        assert out["grafanaUrl"] == f"http://127.0.0.1:{GRAFANA_PORT + offset}"
        assert out["prometheusUrl"] == f"http://127.0.0.1:{PROMETHEUS_PORT + offset}"
        assert out["alertmanagerUrl"] == f"http://127.0.0.1:{ALERTMANAGER_PORT + offset}"
    else:
        ns = settings.kubernetes.namespace
        assert (
            out["metricsApiUrl"] == f"http://metrics-api.{ns}.svc.cluster.local:{METRICS_API_PORT}"
        )
        assert out["aggregatorAddress"] == f"aggregator.{ns}.svc.cluster.local:{AGGREGATOR_PORT}"
        assert out["grafanaUrl"] == f"http://grafana.{ns}.svc.cluster.local:{GRAFANA_PORT}"
        assert out["prometheusUrl"] == f"http://prometheus.{ns}.svc.cluster.local:{PROMETHEUS_PORT}"
        assert (
            out["alertmanagerUrl"]
            == f"http://alertmanager.{ns}.svc.cluster.local:{ALERTMANAGER_PORT}"
        )


@pytest.mark.parametrize(("stack", "target"), COMBINATIONS)
def test_server_certificate_names_match_the_target(stack: str, target: str) -> None:
    pki = run(stack, target).of_type(PKI_TYPE)[0].inputs
    names = set(pki["server_dns_names"])
    assert {"aggregator", "localhost"} <= names
    assert "127.0.0.1" in pki["server_ip_addresses"]
    ns = settings_for(stack, target).kubernetes.namespace
    in_cluster = {f"aggregator.{ns}", f"aggregator.{ns}.svc", f"aggregator.{ns}.svc.cluster.local"}
    assert (in_cluster <= names) is (target == "kubernetes")


# ------------------------------------------------------------------ Docker form
DOCKER = [(s, "docker") for s in STACKS]


@pytest.mark.parametrize(("stack", "target"), DOCKER)
def test_docker_resources(stack: str, target: str) -> None:
    result = run(stack, target)
    settings = settings_for(stack, target)
    n = settings.nodes.count
    assert not [r for r in result.resources if r.type.startswith("kubernetes:")]
    networks = result.of_type("docker:index/network:Network")
    assert [net.inputs["name"] for net in networks] == [f"sovereign-map-{stack}"]
    volumes = {v.inputs["name"] for v in result.of_type("docker:index/volume:Volume")}
    assert volumes == {
        f"sovereign-map-{stack}-{v}"
        for v in ("aggregator-state", "prometheus-data", "alertmanager-data", "grafana-data")
    }
    containers = result.of_type(CONTAINER)
    assert len(containers) == n + 5
    assert {c.inputs["name"] for c in containers} == {
        f"sovereign-map-{stack}-{name}"
        for name in (
            "aggregator",
            "metrics-api",
            "prometheus",
            "alertmanager",
            "grafana",
            *settings.node_ids,
        )
    }
    image = result.of_type("docker:index/image:Image")
    assert len(image) == 1 and image[0].inputs["imageName"] == settings.image.reference
    assert image[0].inputs["build"]["dockerfile"].endswith("/Dockerfile")
    assert image[0].inputs["skipPush"] is True
    for container in containers:
        inputs = container.inputs
        assert inputs["memory"] > 0 and float(inputs["cpus"]) > 0, container.name
        assert 0 < inputs["memoryReservation"] <= inputs["memory"]
        assert inputs["restart"] == "unless-stopped"
        assert inputs["healthcheck"]["tests"][0] == "CMD"
        assert inputs["capabilities"]["drops"] == ["ALL"]
        assert "no-new-privileges:true" in inputs["securityOpts"]
        assert inputs["networksAdvanced"][0]["name"] == f"sovereign-map-{stack}"
        labels = labels_of(container)
        assert labels[LABEL_PART_OF] == "sovereign-map"
        assert labels[LABEL_INSTANCE] == stack
        assert labels[LABEL_COMPONENT]


@pytest.mark.parametrize(("stack", "target"), DOCKER)
def test_docker_aggregator(stack: str, target: str) -> None:
    result = run(stack, target)
    settings = settings_for(stack, target)
    aggregator = result.named(CONTAINER, "aggregator")
    metrics = result.named(CONTAINER, "metrics-api")
    assert aggregator.inputs["command"] == ["aggregator"]
    assert aggregator.inputs["entrypoints"] == ["sovereign-map"]
    assert aggregator.inputs["ports"] == [
        {"internal": AGGREGATOR_PORT, "external": AGGREGATOR_PORT, "ip": "127.0.0.1"}
    ]
    assert metrics.inputs["ports"][0]["internal"] == METRICS_API_PORT
    state = f"sovereign-map-{stack}-aggregator-state"
    for container in (aggregator, metrics):
        assert container.inputs["volumes"] == [
            {"volumeName": state, "containerPath": AGGREGATOR_STATE_MOUNT}
        ]
    env = env_of(aggregator)
    assert env[ENV_NUM_ROUNDS] == str(settings.training.rounds)
    assert env[ENV_MIN_FIT_CLIENTS] == str(settings.min_fit_clients)
    assert env[ENV_RULE] == settings.training.rule
    assert env[ENV_NUM_NODES] == str(settings.nodes.count)
    assert env[ENV_TLS_DIR] == TLS_MOUNT and env[ENV_STAKES_FILE] == STAKES_FILE
    files = uploads_of(aggregator)
    assert json.loads(files[STAKES_FILE]["content"]) == settings.stake_table()
    key = files[f"{TLS_MOUNT}/tls.key"]
    assert key["permissions"] == "0640"
    index = aggregator.inputs["uploads"].index(key)
    assert is_secret(aggregator, f"uploads[{index}].content")
    assert not is_secret(result.named(CONTAINER, "prometheus"), "uploads")
    ca = load_cert_pem(files[f"{TLS_MOUNT}/ca.crt"]["content"].encode())
    server = load_cert_pem(files[f"{TLS_MOUNT}/tls.crt"]["content"].encode())
    verify(server, ca, now=server.not_valid_before_utc, usage="server", name="aggregator")
    assert f"{TLS_MOUNT}/ca.crl" in files
    assert f"{OPERATOR_TLS_MOUNT}/tls.key" in files
    assert env[ENV_OPERATOR_TLS_DIR] == OPERATOR_TLS_MOUNT
    # the metrics API watches every public certificate and knows the attackers
    metric_files = uploads_of(metrics)
    watched = [f for f in metric_files if f.endswith(".crt")]
    assert len(watched) == settings.nodes.count + 3
    assert not any("PRIVATE KEY" in u["content"] for u in metric_files.values())
    attack_table = next(u for f, u in metric_files.items() if f.endswith("attacks.json"))
    assert json.loads(attack_table["content"]) == settings.attack_table()


@pytest.mark.parametrize(("stack", "target"), DOCKER)
def test_docker_nodes(stack: str, target: str) -> None:
    result = run(stack, target)
    settings = settings_for(stack, target)
    attackers = []
    for ordinal, node in enumerate(settings.node_ids):
        container = result.named(CONTAINER, node)
        env = env_of(container)
        assert env[ENV_NODE_ID] == node
        assert env[ENV_AGGREGATOR_HOST] == "aggregator"
        assert env[ENV_NODE_STAKE] == str(settings.stake_of(node))
        if env[ENV_NODE_ATTACK] != "honest":
            attackers.append(ordinal)
        assert labels_of(container)[LABEL_NODE_ID] == node
        assert container.inputs["ports"] == []  # only Prometheus, on the network, scrapes them
        files = uploads_of(container)
        cert = load_cert_pem(files[f"{TLS_MOUNT}/tls.crt"]["content"].encode())
        assert cert.subject.rfc4514_string() == f"CN={node}"
        key = load_key_pem(files[f"{TLS_MOUNT}/tls.key"]["content"].encode())
        assert key.public_key() == cert.public_key()
        assert (
            container.inputs["memory"]
            == memory_bytes(settings.resources.node.limits.memory) // 2**20
        )
    assert attackers == list(range(settings.byzantine.count))


@pytest.mark.parametrize(("stack", "target"), DOCKER)
def test_docker_monitoring(stack: str, target: str) -> None:
    result = run(stack, target)
    prometheus = result.named(CONTAINER, "prometheus")
    config = yaml.safe_load(uploads_of(prometheus)["/etc/prometheus/prometheus.yml"]["content"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    node_job = jobs["sovereign-map-nodes"]
    sd = node_job["docker_sd_configs"][0]
    assert f"{LABEL_INSTANCE}={stack}" in sd["filters"][0]["values"]
    assert any(
        rule.get("regex") == f"sovereign-map-{stack}" for rule in node_job["relabel_configs"]
    )
    mounts = prometheus.inputs["mounts"]
    assert mounts == [
        {
            "type": "bind",
            "source": "/var/run/docker.sock",
            "target": "/var/run/docker.sock",
            "readOnly": True,
        }
    ]
    assert "/etc/prometheus/rules/sovereign-map.yml" in uploads_of(prometheus)
    grafana = result.named(CONTAINER, "grafana")
    env = env_of(grafana)
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == SECRETS["grafanaAdminPassword"]
    index = sorted(grafana.inputs["envs"]).index(
        f"GF_SECURITY_ADMIN_PASSWORD={SECRETS['grafanaAdminPassword']}"
    )
    assert is_secret(grafana, f"envs[{index}]")
    dashboards = [f for f in uploads_of(grafana) if f.startswith(GRAFANA_DASHBOARDS_MOUNT)]
    assert len(dashboards) == 3
    for name in ("prometheus", "alertmanager", "grafana"):
        image = result.named("docker:index/remoteImage:RemoteImage", f"{name}-image")
        assert image.inputs["name"].split(":")[-1] not in ("", "latest")


def test_docker_socket_group_runs_prometheus_unprivileged() -> None:
    result = run_stack("local", {"docker": {"socketGid": 998}}, SECRETS)
    prometheus = result.named(CONTAINER, "prometheus")
    assert prometheus.inputs["user"] == "65534:65534"
    assert prometheus.inputs["groupAdds"] == ["998"]
    assert "adds" not in prometheus.inputs["capabilities"]
    as_root = run("local", "docker").named(CONTAINER, "prometheus").inputs
    assert as_root["user"] == "0:0"
    assert as_root["capabilities"] == {"drops": ["ALL"], "adds": ["DAC_OVERRIDE"]}
    others = [c for c in run("local", "docker").of_type(CONTAINER) if c.name != "prometheus"]
    assert all("adds" not in c.inputs["capabilities"] for c in others)
    assert all(not c.inputs.get("user", "").startswith("0") for c in others)


def test_docker_port_offset_moves_every_published_port() -> None:
    result = run_stack("local", {"docker": {"portOffset": 100}}, SECRETS)
    assert result.outputs["grafanaUrl"] == f"http://127.0.0.1:{GRAFANA_PORT + 100}"
    ports = [p["external"] for c in result.of_type(CONTAINER) for p in c.inputs["ports"]]
    assert sorted(ports) == sorted(
        p + 100
        for p in (
            AGGREGATOR_PORT,
            METRICS_API_PORT,
            PROMETHEUS_PORT,
            ALERTMANAGER_PORT,
            GRAFANA_PORT,
        )
    )


# ------------------------------------------------------------------ Kubernetes form
KUBERNETES = [(s, "kubernetes") for s in STACKS]


def pod(statefulset: Registered) -> dict[str, Any]:
    return statefulset.inputs["spec"]["template"]["spec"]


@pytest.mark.parametrize(("stack", "target"), KUBERNETES)
def test_kubernetes_namespace_and_default_deny(stack: str, target: str) -> None:
    result = run(stack, target)
    ns = settings_for(stack, target).kubernetes.namespace
    assert not [r for r in result.resources if r.type.startswith("docker:")]
    namespace = result.of_type("kubernetes:core/v1:Namespace")[0]
    assert namespace.inputs["metadata"]["name"] == ns
    assert (
        namespace.inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    )
    deny = result.named(POLICY, "foundation-default-deny")
    assert deny.inputs["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    for resource in result.resources:
        if (
            resource.type.startswith("kubernetes:")
            and resource.type != "kubernetes:core/v1:Namespace"
        ):
            assert resource.inputs["metadata"]["namespace"] == ns, resource.name


@pytest.mark.parametrize(("stack", "target"), KUBERNETES)
def test_kubernetes_every_pod_is_restricted_and_limited(stack: str, target: str) -> None:
    result = run(stack, target)
    statefulsets = result.of_type(STATEFULSET)
    assert {s.inputs["metadata"]["name"] for s in statefulsets} == {
        "aggregator",
        "node",
        "prometheus",
        "alertmanager",
        "grafana",
    }
    for statefulset in statefulsets:
        spec = pod(statefulset)
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] > 0
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["enableServiceLinks"] is False
        labels = statefulset.inputs["spec"]["template"]["metadata"]["labels"]
        for key in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
            "app.kubernetes.io/part-of",
            "app.kubernetes.io/managed-by",
        ):
            assert labels[key], (statefulset.name, key)
        selector = statefulset.inputs["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items()
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert (
                container["resources"]["limits"]["cpu"]
                and container["resources"]["limits"]["memory"]
            )
            assert container["resources"]["requests"]["memory"]
            if container not in spec.get("initContainers", []):
                assert {"livenessProbe", "readinessProbe", "startupProbe"} <= container.keys()


@pytest.mark.parametrize(("stack", "target"), KUBERNETES)
def test_kubernetes_aggregator(stack: str, target: str) -> None:
    result = run(stack, target)
    settings = settings_for(stack, target)
    statefulset = result.named(STATEFULSET, "aggregator")
    spec = statefulset.inputs["spec"]
    assert spec["replicas"] == 1
    [claim] = spec["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == settings.storage.aggregator
    containers = {c["name"]: c for c in pod(statefulset)["containers"]}
    assert set(containers) == {"aggregator", "metrics-api"}
    for container in containers.values():
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts[AGGREGATOR_STATE_MOUNT] == claim["metadata"]["name"]  # one shared PVC
    assert containers["aggregator"]["ports"][0]["containerPort"] == AGGREGATOR_PORT
    assert containers["metrics-api"]["ports"][0]["containerPort"] == METRICS_API_PORT
    assert containers["aggregator"]["resources"]["limits"] == {
        "cpu": settings.resources.aggregator.limits.cpu,
        "memory": settings.resources.aggregator.limits.memory,
    }
    env = {e["name"]: e["value"] for e in containers["aggregator"]["env"]}
    assert env[ENV_MIN_FIT_CLIENTS] == str(settings.min_fit_clients)
    volumes = {v["name"]: v for v in pod(statefulset)["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "aggregator-tls"
    assert volumes["operator-tls"]["secret"]["secretName"] == "operator-tls"
    mounts = {m["name"]: m["mountPath"] for m in containers["aggregator"]["volumeMounts"]}
    assert mounts["tls"] == TLS_MOUNT and mounts["operator-tls"] == OPERATOR_TLS_MOUNT
    assert env[ENV_OPERATOR_TLS_DIR] == OPERATOR_TLS_MOUNT
    assert "tls" not in {m["name"] for m in containers["metrics-api"]["volumeMounts"]}
    server = result.named(SECRET, "aggregator-tls")
    assert server.inputs["type"] == "kubernetes.io/tls"
    assert set(server.inputs["stringData"]) == {"tls.crt", "tls.key", "ca.crt", "ca.crl"}
    assert is_secret(server, "stringData.tls.key")
    services = {s.inputs["metadata"]["name"]: s.inputs["spec"] for s in result.of_type(SERVICE)}
    assert services["aggregator"]["ports"][0]["port"] == AGGREGATOR_PORT
    assert services["metrics-api"]["ports"][0]["port"] == METRICS_API_PORT


def ingress_rule(result: ProgramRun, name: str) -> tuple[str, int, list[str] | None]:
    policy = result.named(POLICY, name).inputs["spec"]
    target = policy["podSelector"]["matchLabels"][LABEL_COMPONENT]
    [rule] = policy["ingress"]
    sources = (
        [s["podSelector"]["matchLabels"][LABEL_COMPONENT] for s in rule["from"]]
        if "from" in rule
        else None
    )
    return target, rule["ports"][0]["port"], sources


@pytest.mark.parametrize(("stack", "target"), KUBERNETES)
def test_kubernetes_network_policies(stack: str, target: str) -> None:
    result = run(stack, target)
    assert ingress_rule(result, "aggregator-from-nodes") == (
        "aggregator",
        AGGREGATOR_PORT,
        ["node"],
    )
    assert ingress_rule(result, "metrics-api-from-prometheus") == (
        "aggregator",
        METRICS_API_PORT,
        ["prometheus"],
    )
    assert ingress_rule(result, "node-metrics-from-prometheus") == (
        "node",
        NODE_METRICS_PORT,
        ["prometheus"],
    )
    assert ingress_rule(result, "prometheus-from-grafana") == (
        "prometheus",
        PROMETHEUS_PORT,
        ["grafana"],
    )
    assert ingress_rule(result, "alertmanager-from-monitoring") == (
        "alertmanager",
        ALERTMANAGER_PORT,
        ["prometheus", "grafana"],
    )
    assert ingress_rule(result, "grafana-from-anywhere") == ("grafana", GRAFANA_PORT, None)
    allowed_8080 = [
        ingress_rule(result, p.name)[2]
        for p in result.of_type(POLICY)
        if p.name != "foundation-default-deny"
        and ingress_rule(result, p.name)[1] == AGGREGATOR_PORT
    ]
    assert allowed_8080 == [["node"]]


@pytest.mark.parametrize(("stack", "target"), KUBERNETES)
def test_kubernetes_node_fleet(stack: str, target: str) -> None:
    result = run(stack, target)
    settings = settings_for(stack, target)
    n = settings.nodes.count
    statefulset = result.named(STATEFULSET, "node-fleet")
    spec = statefulset.inputs["spec"]
    assert statefulset.inputs["metadata"]["name"] == "node"  # pods node-0 … node-<n-1>
    assert spec["replicas"] == n
    assert spec["podManagementPolicy"] == "Parallel"
    template = pod(statefulset)
    [main] = template["containers"]
    [init] = template["initContainers"]
    node_id = next(e for e in main["env"] if e["name"] == ENV_NODE_ID)
    assert node_id["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert main["resources"]["limits"]["memory"] == settings.resources.node.limits.memory
    pki = next(v for v in template["volumes"] if v["name"] == "pki")
    assert len(pki["projected"]["sources"]) == n
    assert all(m["name"] != "pki" for m in main["volumeMounts"])  # only the init step sees all keys
    assert any(m["name"] == "pki" for m in init["volumeMounts"])
    assert "install -m 0600" in init["command"][-1]
    secrets = [s for s in result.of_type(SECRET) if s.name.startswith("node-")]
    assert len(secrets) == n
    for secret in secrets:
        assert secret.inputs["type"] == "kubernetes.io/tls"
        node = secret.name.removesuffix("-tls")
        cert = load_cert_pem(secret.inputs["stringData"]["tls.crt"].encode())
        assert cert.subject.rfc4514_string() == f"CN={node}"
    profiles = result.named(CONFIGMAP, "node-profiles").inputs["data"]
    assert len(profiles) == n
    attackers = sorted(
        int(k.removeprefix("node-").removesuffix(".env"))
        for k, v in profiles.items()
        if "honest" not in v
    )
    assert attackers == list(range(settings.byzantine.count))
    assert all(f"{ENV_NODE_STAKE}=" in v for v in profiles.values())
    pdb = result.of_type("kubernetes:policy/v1:PodDisruptionBudget")[0]
    assert pdb.inputs["spec"]["minAvailable"] == settings.min_fit_clients
    checksum = statefulset.inputs["spec"]["template"]["metadata"]["annotations"]
    assert len(next(iter(checksum.values()))) == 16


@pytest.mark.parametrize(("stack", "target"), KUBERNETES)
def test_kubernetes_monitoring(stack: str, target: str) -> None:
    result = run(stack, target)
    settings = settings_for(stack, target)
    for name, size in (
        ("prometheus", settings.storage.prometheus),
        ("alertmanager", settings.storage.alertmanager),
        ("grafana", settings.storage.grafana),
    ):
        statefulset = result.named(STATEFULSET, name)
        [claim] = statefulset.inputs["spec"]["volumeClaimTemplates"]
        assert claim["spec"]["resources"]["requests"]["storage"] == size
    dashboards = [c for c in result.of_type(CONFIGMAP) if c.name.startswith("dashboard-")]
    assert len(dashboards) == 3
    assert all(c.inputs["metadata"]["labels"]["grafana_dashboard"] == "1" for c in dashboards)
    grafana = pod(result.named(STATEFULSET, "grafana"))
    mounted = next(v for v in grafana["volumes"] if v["name"] == "dashboards")
    assert len(mounted["projected"]["sources"]) == 3
    password = next(
        e for e in grafana["containers"][0]["env"] if e["name"] == "GF_SECURITY_ADMIN_PASSWORD"
    )
    assert password["valueFrom"]["secretKeyRef"]["name"] == "grafana-admin"
    admin = result.named(SECRET, "grafana-admin")
    assert admin.inputs["stringData"]["admin-password"] == SECRETS["grafanaAdminPassword"]
    assert is_secret(admin, "stringData.admin-password")
    prometheus = pod(result.named(STATEFULSET, "prometheus"))
    assert prometheus["serviceAccountName"] == "prometheus"
    assert prometheus["automountServiceAccountToken"] is True
    role = result.named("kubernetes:rbac.authorization.k8s.io/v1:Role", "prometheus-discovery")
    assert role.inputs["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
    ]
    config = yaml.safe_load(
        result.named(CONFIGMAP, "prometheus-config").inputs["data"]["prometheus.yml"]
    )
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    sd = jobs["sovereign-map-nodes"]["kubernetes_sd_configs"][0]
    assert sd["namespaces"]["names"] == [settings.kubernetes.namespace]
    # the metrics API runs in the aggregator's pod
    keep = [
        r
        for r in jobs["sovereign-map-metrics-api"]["relabel_configs"]
        if r.get("action") == "keep"
        and r["source_labels"] == ["__meta_kubernetes_pod_label_app_kubernetes_io_component"]
    ]
    assert keep[0]["regex"] == "aggregator"


def test_kubernetes_context_gets_an_explicit_provider() -> None:
    result = run_stack("prod", {"kubernetes": {"context": "kind-testnet"}}, SECRETS)
    [provider] = result.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["context"] == "kind-testnet"


def test_prod_pulls_the_configured_image_on_kubernetes() -> None:
    result = run("prod", "kubernetes")
    assert not result.of_type("docker:index/image:Image")
    assert result.outputs["image"] == "ghcr.io/sovereign-map/sovereign-map:0.1.0"
    images = {c["image"] for s in result.of_type(STATEFULSET) for c in pod(s)["containers"]}
    assert "ghcr.io/sovereign-map/sovereign-map:0.1.0" in images


def test_webhook_reaches_alertmanager_as_a_secret() -> None:
    url = "https://hooks.example.com/services/T000/B000/XXXX"
    result = run_stack("prod", {}, {**SECRETS, "alertWebhookUrl": url})
    secret = result.named(SECRET, "alertmanager-config")
    config = yaml.safe_load(secret.inputs["stringData"]["alertmanager.yml"])
    assert config["route"]["receiver"] == "webhook"
    assert config["receivers"][1]["webhook_configs"][0]["url"] == url
    assert is_secret(secret, "stringData.alertmanager.yml")


@pytest.mark.parametrize(("stack", "target"), [("local", "docker"), ("local", "kubernetes")])
def test_nodes_are_created_after_the_aggregator(stack: str, target: str) -> None:
    result = run(stack, target)
    if target == "docker":
        waiting = [result.named(CONTAINER, node) for node in settings_for(stack, target).node_ids]
        aggregator = "$docker:index/container:Container::aggregator"
    else:
        waiting = [result.named(STATEFULSET, "node-fleet")]
        aggregator = "$kubernetes:apps/v1:StatefulSet::aggregator"
    for resource in waiting:
        assert any(urn.endswith(aggregator) for urn in resource.dependencies), resource.name
    monitoring = result.named(CONTAINER if target == "docker" else STATEFULSET, "prometheus")
    assert not any(urn.endswith(aggregator) for urn in monitoring.dependencies)
