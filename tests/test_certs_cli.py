"""`sovereign-map certs`: init / issue / rotate / revoke / inspect through click's CliRunner."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509

from certs import cli as certs_cli
from certs.bundle import read_bundle, read_crl
from certs.pki import verify
from fl.cli import main

T0 = datetime(2031, 6, 1, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The CLI's clock; tests move it by assigning now[0]."""
    now = [T0]
    monkeypatch.setattr(certs_cli, "utcnow", lambda: now[0])
    return now


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["certs", *map(str, args)])


@pytest.fixture
def pki(tmp_path: Path, clock: list[datetime]) -> Path:
    out = tmp_path / "pki"
    result = run("init", "--out", out, "--nodes", 3, "--san", "aggregator.sm.svc")
    assert result.exit_code == 0, result.output
    return out


def _cert(bundle: Path) -> x509.Certificate:
    return read_bundle(bundle)[1]


def test_init_creates_the_whole_layout(pki: Path) -> None:
    for bundle in ["aggregator", "operator", "nodes/node-0", "nodes/node-1", "nodes/node-2"]:
        assert (pki / bundle / "tls.crt").is_file()
    assert not (pki / "nodes" / "node-3").exists()
    assert (pki / "ca" / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (pki / "ca").stat().st_mode & 0o777 == 0o700
    assert (pki / "aggregator" / "ca.crl").read_bytes() == (pki / "ca" / "ca.crl").read_bytes()
    state = json.loads((pki / "ca" / "state.json").read_text())
    assert set(state["holders"]) == {"aggregator", "operator", "node-0", "node-1", "node-2"}
    sans = _cert(pki / "aggregator").extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert set(map(str, sans.value.get_values_for_type(x509.DNSName))) == {
        "localhost", "aggregator", "aggregator.sm.svc"
    }  # fmt: skip
    assert [str(ip) for ip in sans.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_init_refuses_to_overwrite_a_ca_and_force_backs_it_up(pki: Path) -> None:
    old_ca = (pki / "ca" / "ca.crt").read_bytes()
    refused = run("init", "--out", pki, "--nodes", 1)
    assert refused.exit_code != 0
    assert "already holds a CA" in refused.output and "--force" in refused.output
    assert (pki / "ca" / "ca.crt").read_bytes() == old_ca

    forced = run("init", "--out", pki, "--nodes", 1, "--force")
    assert forced.exit_code == 0, forced.output
    backups = list(pki.glob("backup-*"))
    assert len(backups) == 1 and (backups[0] / "ca" / "ca.crt").read_bytes() == old_ca
    assert (backups[0] / "nodes" / "node-2" / "tls.key").exists()
    assert (pki / "ca" / "ca.crt").read_bytes() != old_ca
    assert not (pki / "nodes" / "node-2").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nodes", "0"], "at least 1"),
        (["--nodes", "2", "--san", "bad name!"], "not a DNS name or IP"),
        (["--nodes", "2", "--validity-days", "30", "--renew-before-days", "30"], "shorter"),
        (["--nodes", "2", "--validity-days", "400", "--ca-validity-days", "100"], "CA validity"),
        (["--nodes", "2", "--validity-days", "0"], "0 is not in the range"),
        (["--nodes", "2", "--no-default-sans"], "at least one --san"),
    ],
)
def test_init_rejects_bad_input(
    tmp_path: Path, clock: list[datetime], args: list[str], message: str
) -> None:
    result = run("init", "--out", tmp_path / "x", *args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x" / "ca" / "ca.crt").exists()


def test_init_into_a_file_is_refused(tmp_path: Path, clock: list[datetime]) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    result = run("init", "--out", target, "--nodes", 1)
    assert result.exit_code != 0 and "file" in result.output.lower()


def test_issue_adds_a_node_and_refuses_duplicates_and_bad_ids(pki: Path) -> None:
    added = run("issue", "--dir", pki, "--node", "node-7")
    assert added.exit_code == 0, added.output
    ca, cert, _ = read_bundle(pki / "nodes" / "node-7")
    verify(cert, ca, now=T0, usage="client")
    duplicate = run("issue", "--dir", pki, "--node", "node-0")
    assert duplicate.exit_code != 0 and "rotate" in duplicate.output
    bad = run("issue", "--dir", pki, "--node", "Node_1")
    assert bad.exit_code != 0 and "invalid node id" in bad.output


def test_commands_on_a_missing_directory_say_so(tmp_path: Path, clock: list[datetime]) -> None:
    commands = (["issue", "--node", "node-1"], ["revoke", "--node", "node-1"], ["rotate", "--all"])
    for args in commands:
        result = run(args[0], "--dir", tmp_path / "nope", *args[1:])
        assert result.exit_code != 0
        assert "no such PKI directory" in result.output


def test_rotate_node_changes_its_key_and_keeps_the_ca(pki: Path, clock: list[datetime]) -> None:
    ca_before = (pki / "ca" / "ca.crt").read_bytes()
    old = _cert(pki / "nodes" / "node-1")
    other = _cert(pki / "nodes" / "node-2")
    clock[0] = T0 + timedelta(days=10)
    result = run("rotate", "--dir", pki, "--node", "node-1")
    assert result.exit_code == 0, result.output
    ca, new, _ = read_bundle(pki / "nodes" / "node-1")
    assert (pki / "ca" / "ca.crt").read_bytes() == ca_before
    assert new.public_key() != old.public_key() and new.serial_number != old.serial_number
    assert new.subject == old.subject
    assert new.not_valid_after_utc > old.not_valid_after_utc
    verify(new, ca, now=clock[0], usage="client", crl=read_crl(pki / "aggregator"))
    assert _cert(pki / "nodes" / "node-2") == other  # untouched


def test_rotate_due_only_renews_inside_the_window(pki: Path, clock: list[datetime]) -> None:
    before = {b: _cert(pki / b).serial_number for b in ("aggregator", "nodes/node-0")}
    clock[0] = T0 + timedelta(days=100)
    nothing = run("rotate", "--dir", pki, "--due")
    assert nothing.exit_code == 0 and "nothing is due" in nothing.output
    assert _cert(pki / "aggregator").serial_number == before["aggregator"]

    clock[0] = T0 + timedelta(days=340)  # 365-day validity, 30-day window
    due = run("rotate", "--dir", pki, "--due")
    assert due.exit_code == 0, due.output
    for bundle, serial in before.items():
        assert _cert(pki / bundle).serial_number != serial
    crl = read_crl(pki / "aggregator")
    assert crl.next_update_utc is not None and crl.next_update_utc > clock[0] + timedelta(days=300)


def test_rotate_needs_exactly_one_selector_and_known_names(pki: Path) -> None:
    assert "exactly one" in run("rotate", "--dir", pki).output
    assert "exactly one" in run("rotate", "--dir", pki, "--all", "--due").output
    unknown = run("rotate", "--dir", pki, "--node", "node-9")
    assert unknown.exit_code != 0 and "unknown node 'node-9'" in unknown.output


def test_revoke_updates_the_crl_and_blocks_rotation(pki: Path, clock: list[datetime]) -> None:
    serial = _cert(pki / "nodes" / "node-2").serial_number
    result = run("revoke", "--dir", pki, "--node", "node-2")
    assert result.exit_code == 0, result.output
    for where in ("ca", "aggregator"):
        assert read_crl(pki / where).get_revoked_certificate_by_serial_number(serial) is not None
    again = run("revoke", "--dir", pki, "--node", "node-2")
    assert again.exit_code != 0 and "already revoked" in again.output
    rotate = run("rotate", "--dir", pki, "--node", "node-2")
    assert rotate.exit_code != 0 and "is revoked" in rotate.output
    assert run("revoke", "--dir", pki, "--node", "aggregator").exit_code != 0
    # --all skips the revoked node; issue re-admits it with a new certificate
    assert run("rotate", "--dir", pki, "--all").exit_code == 0
    assert _cert(pki / "nodes" / "node-2").serial_number == serial
    readmit = run("issue", "--dir", pki, "--node", "node-2")
    assert readmit.exit_code == 0, readmit.output
    ca, cert, _ = read_bundle(pki / "nodes" / "node-2")
    verify(cert, ca, now=clock[0], usage="client", crl=read_crl(pki / "aggregator"))


def test_rotate_revoke_old(pki: Path) -> None:
    old = _cert(pki / "operator").serial_number
    assert run("rotate", "--dir", pki, "--node", "operator", "--revoke-old").exit_code == 0
    assert read_crl(pki / "aggregator").get_revoked_certificate_by_serial_number(old) is not None


def test_inspect_shows_subject_sans_usage_and_days_left(pki: Path, clock: list[datetime]) -> None:
    clock[0] = T0 + timedelta(days=65)
    one = run("inspect", pki / "aggregator" / "tls.crt")
    assert one.exit_code == 0, one.output
    assert "CN=aggregator" in one.output and "DNS:aggregator.sm.svc" in one.output
    assert "IP:127.0.0.1" in one.output and "serverAuth" in one.output
    assert "days left:  300.0" in one.output
    run("revoke", "--dir", pki, "--node", "node-1")
    everything = json.loads(run("inspect", "--json", pki).output)
    by_subject = {f.get("subject"): f for f in everything}
    assert by_subject["CN=node-1"]["status"] == "revoked"
    assert by_subject["CN=node-0"]["status"] == "ok"
    assert by_subject["CN=Sovereign Map CA"]["usage"] == "CA"
    assert any("revoked" in f and f["revoked"] for f in everything)  # the CRL entry
    bundle = run("inspect", pki / "nodes" / "node-1")
    assert "clientAuth" in bundle.output and "status:     revoked" in bundle.output
    single = run("inspect", pki / "nodes" / "node-0" / "tls.crt")
    assert "status:     ok" in single.output


def test_inspect_errors(pki: Path, tmp_path: Path) -> None:
    missing = run("inspect", tmp_path / "nope")
    assert missing.exit_code != 0 and "no such file" in missing.output
    key = run("inspect", pki / "nodes" / "node-0" / "tls.key")
    assert key.exit_code != 0 and "private key" in key.output
    empty = run("inspect", tmp_path)
    assert empty.exit_code != 0 and "neither" in empty.output


def test_help_explains_the_commands() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("init", "issue", "rotate", "revoke", "inspect"):
        assert command in result.output
    assert "--renew-before-days" in run("init", "--help").output
