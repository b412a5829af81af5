"""``promtool check metrics`` accepts what ``/metrics`` serves, in every state of the store."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import fl.contract as contract
from fl.metrics_api import RunConfig, create_app
from tests.test_metrics_api import ATTACKER, fill_store, make_cert

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed")

# The contract fixes this name; promtool's linter prefers base units (seconds). It is the one
# finding we accept; anything else promtool reports fails the test.
ACCEPTED_FINDINGS = {
    f'{contract.METRIC_CERT_EXPIRY_DAYS} use base unit "seconds" instead of "days"',
}


def promtool_findings(exposition: bytes) -> set[str]:
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=exposition,
        capture_output=True,
        timeout=60,
        check=False,
    )
    findings = {
        line.strip()
        for line in (result.stdout + result.stderr).decode().splitlines()
        if line.strip()
    }
    if result.returncode not in (0, 3):  # 3: lint findings only
        pytest.fail(f"promtool failed ({result.returncode}): {findings}")
    if result.returncode == 0:
        assert not findings
    return findings


@pytest.mark.parametrize("accept", ["", "application/openmetrics-text; version=1.0.0"])
def test_filled_store_metrics_pass_promtool(tmp_path: Path, accept: str) -> None:
    store = tmp_path / "metrics.sqlite"
    fill_store(store, 12)
    certs = tmp_path / "pki"
    make_cert(certs, "ca.crt", "CA", days=30)
    config = RunConfig(
        rounds_planned=20, nodes_expected=5, epsilon_budget=8.0, attacks={ATTACKER: "gaussian"}
    )
    client = create_app(store, certs, run_config=config).test_client()
    response = client.get("/metrics", headers={"Accept": accept} if accept else {})
    body = response.data
    if accept:  # promtool reads the text format; check OpenMetrics parses there too
        assert response.content_type.startswith("application/openmetrics-text")
        assert body.endswith(b"# EOF\n")
        body = client.get("/metrics").data
    assert promtool_findings(body) <= ACCEPTED_FINDINGS


def test_empty_and_broken_store_metrics_pass_promtool(tmp_path: Path) -> None:
    missing = create_app(tmp_path / "missing.sqlite").test_client()
    assert promtool_findings(missing.get("/metrics").data) == set()
    broken_path = tmp_path / "broken.sqlite"
    broken_path.write_bytes(b"garbage" * 1000)
    broken = create_app(broken_path).test_client()
    assert promtool_findings(broken.get("/metrics").data) == set()


def test_promtool_would_catch_a_bad_exposition() -> None:
    # guards the helper above: a lint problem is reported, not swallowed
    assert promtool_findings(b"# TYPE bad_total gauge\nbad_total 1\n")
