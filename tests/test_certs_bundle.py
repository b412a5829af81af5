"""certs.bundle: TLS bundles on disk (names, modes, atomicity) and OpenSSL's view of them."""

from __future__ import annotations

import shutil
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certs.authority import init_pki
from certs.bundle import read_bundle, write_bundle
from certs.pki import CertificateError, create_ca, issue_client
from fl.contract import TLS_CA_FILE, TLS_CERT_FILE, TLS_CRL_FILE, TLS_KEY_FILE

NOW = datetime.now(UTC)
YEAR = timedelta(days=365)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_bundle_round_trip_with_private_key_0600(tmp_path: Path) -> None:
    ca = create_ca(validity=10 * YEAR, now=NOW)
    node = issue_client(ca, "node-0", validity=YEAR, now=NOW)
    write_bundle(tmp_path / "b", ca_cert=ca.cert, cert=node.cert, key=node.key)
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == sorted(
        [TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE]
    )  # no temporary files left behind
    assert _mode(tmp_path / "b" / TLS_KEY_FILE) == 0o600
    assert _mode(tmp_path / "b" / TLS_CERT_FILE) == 0o644
    ca_cert, cert, key = read_bundle(tmp_path / "b")
    assert (ca_cert, cert) == (ca.cert, node.cert)
    assert key.public_key() == node.key.public_key()


def test_bundle_refuses_a_key_of_another_certificate(tmp_path: Path) -> None:
    ca = create_ca(validity=10 * YEAR, now=NOW)
    a = issue_client(ca, "node-0", validity=YEAR, now=NOW)
    b = issue_client(ca, "node-1", validity=YEAR, now=NOW)
    with pytest.raises(CertificateError, match="does not belong"):
        write_bundle(tmp_path, ca_cert=ca.cert, cert=a.cert, key=b.key)
    write_bundle(tmp_path, ca_cert=ca.cert, cert=a.cert, key=a.key)
    shutil.copy(tmp_path / TLS_CERT_FILE, tmp_path / "keep.crt")
    write_bundle(tmp_path, ca_cert=ca.cert, cert=b.cert, key=b.key)
    shutil.copy(tmp_path / "keep.crt", tmp_path / TLS_CERT_FILE)  # a's cert, b's key
    with pytest.raises(CertificateError, match="does not belong"):
        read_bundle(tmp_path)


def test_missing_bundle_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match=f"missing file: .*{TLS_CA_FILE}"):
        read_bundle(tmp_path)


# ------------------------------------------------------------------ OpenSSL's opinion


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pki")
    result = init_pki(
        root,
        nodes=2,
        now=NOW,
        validity=YEAR,
        renew_before=timedelta(days=30),
        ca_validity=10 * YEAR,
    )
    result.authority.revoke("node-1", NOW)
    return root


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    return subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)


@pytest.mark.parametrize(
    ("bundle", "purpose"),
    [("aggregator", "sslserver"), ("operator", "sslclient"), ("nodes/node-0", "sslclient")],
)
def test_openssl_accepts_the_chain_for_its_purpose(pki: Path, bundle: str, purpose: str) -> None:
    d = pki / bundle
    result = _openssl(
        "verify", "-purpose", purpose, "-CAfile", str(d / TLS_CA_FILE), str(d / TLS_CERT_FILE)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(": OK")


@pytest.mark.parametrize(
    ("bundle", "purpose"), [("aggregator", "sslclient"), ("nodes/node-0", "sslserver")]
)
def test_openssl_rejects_the_wrong_purpose(pki: Path, bundle: str, purpose: str) -> None:
    d = pki / bundle
    result = _openssl(
        "verify", "-purpose", purpose, "-CAfile", str(d / TLS_CA_FILE), str(d / TLS_CERT_FILE)
    )
    assert result.returncode != 0
    assert "unsuitable certificate purpose" in result.stdout + result.stderr


def test_openssl_crl_check_rejects_the_revoked_node_only(pki: Path) -> None:
    crl = str(pki / "aggregator" / TLS_CRL_FILE)
    ca = str(pki / "ca" / TLS_CA_FILE)
    ok = _openssl("verify", "-crl_check", "-CAfile", ca, "-CRLfile", crl,
                  str(pki / "nodes/node-0" / TLS_CERT_FILE))  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    revoked = _openssl("verify", "-crl_check", "-CAfile", ca, "-CRLfile", crl,
                       str(pki / "nodes/node-1" / TLS_CERT_FILE))  # fmt: skip
    assert revoked.returncode != 0
    assert "certificate revoked" in revoked.stdout + revoked.stderr
