"""The mutual-TLS gate in front of uvicorn (in-process, real sockets on 127.0.0.1).

A tiny ASGI app stands in for the SuperLink; the client is Python's ``ssl`` module.
"""

from __future__ import annotations

import logging
import re
import shutil
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from certs.authority import Authority, init_pki
from certs.bundle import write_bundle, write_crl
from certs.pki import build_crl, create_ca, issue_client
from fl.launch.mtls import free_port, role_policy
from fl.launch.mtls_server import mtls_server
from fl.launch.tls_material import ClientIdentity, ServerTLS, TLSMaterialError
from tests.tls_client import tls_request

NOW = datetime.now(UTC)
DAY = timedelta(days=1)


async def hello_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello " + scope["scheme"].encode()})


@dataclass
class Stack:
    root: Path
    authority: Authority
    clients: Path  # extra client bundles made for the tests
    port: int
    gate: Any


def _bundle(directory: Path, ca_cert: Any, issued: Any) -> Path:
    write_bundle(directory, ca_cert=ca_cert, cert=issued.cert, key=issued.key)
    return directory


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("pki")
    authority = init_pki(
        root, nodes=3, now=NOW - 10 * DAY, validity=365 * DAY, renew_before=30 * DAY,
        ca_validity=3650 * DAY,
    ).authority  # fmt: skip
    authority.revoke("node-1", NOW - DAY)
    clients = tmp_path_factory.mktemp("clients")
    ca = authority.ca
    expired = issue_client(ca, "node-8", validity=2 * DAY, now=NOW - 5 * DAY)
    _bundle(clients / "expired", ca.cert, expired)
    other_ca = create_ca(validity=3650 * DAY, now=NOW - DAY)  # same CN, other key
    _bundle(clients / "other-ca", ca.cert, issue_client(other_ca, "node-0", validity=DAY, now=NOW))
    port = free_port()
    server, gate = mtls_server(
        hello_app, host="127.0.0.1", port=port, material=ServerTLS(root / "aggregator"),
        sweep_interval=0.2, policy=role_policy(["operator"]),
    )  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield Stack(root, authority, clients, port, gate)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _client_context(stack: Stack, bundle: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(stack.root / "ca" / "ca.crt"))
    context.load_cert_chain(bundle / "tls.crt", bundle / "tls.key")
    return context


def _get(stack: Stack, bundle: Path | None, path: str = "/v1/fleet/x") -> tuple[int, bytes]:
    """(client port, response bytes); b'' when the handshake is refused."""
    request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    return tls_request(stack.port, stack.root / "ca" / "ca.crt", bundle, request)


def test_a_node_certificate_gets_through(stack: Stack) -> None:
    _, response = _get(stack, stack.root / "nodes" / "node-0")
    assert response.startswith(b"HTTP/1.1 200")
    assert b"hello https" in response  # the app sees a TLS connection


@pytest.mark.parametrize(
    ("who", "reason"),
    [
        (None, "no client certificate presented"),
        ("clients/other-ca", "unable to get local issuer certificate"),
        ("clients/expired", "certificate has expired"),
        ("nodes/node-1", "certificate revoked"),
        ("aggregator", "unsuitable certificate purpose"),
    ],
)
def test_refused_at_the_handshake_and_logged(
    stack: Stack, who: str | None, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    if who is None:
        bundle = None
    elif who.startswith("clients/"):
        bundle = stack.clients / who.removeprefix("clients/")
    else:
        bundle = stack.root / who
    with caplog.at_level(logging.WARNING, logger="sovereign_map.mtls"):
        local_port, response = _get(stack, bundle)
        deadline = time.monotonic() + 5
        pattern = re.compile(rf"refused TLS handshake from 127\.0\.0\.1:{local_port}: (.*)")
        while time.monotonic() < deadline:
            found = [m for r in caplog.records if (m := pattern.search(r.getMessage()))]
            if found:
                break
            time.sleep(0.05)
    assert response == b""
    assert found, f"no refusal logged for port {local_port}: {caplog.text}"
    assert reason in found[0].group(1)


def test_nodes_reach_only_the_fleet_api_and_operators_everything(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    node, operator = stack.root / "nodes" / "node-0", stack.root / "operator"
    assert _get(stack, node, "/v1/fleet/pull-messages")[1].startswith(b"HTTP/1.1 200")
    assert _get(stack, node, "/health")[1].startswith(b"HTTP/1.1 200")
    with caplog.at_level(logging.WARNING, logger="sovereign_map.mtls"):
        for path in ("/v1/control/start-run", "/v1/runtime/push-messages", "/docs"):
            answer = _get(stack, node, path)[1]
            assert answer.startswith(b"HTTP/1.1 403"), answer
            assert b"CN=node-0" not in answer and b"not an operator" in answer
    assert re.search(r"forbidden /v1/control/start-run from 127\.0\.0\.1:\d+ \(CN=node-0\)",
                     caplog.text)  # fmt: skip
    for path in ("/v1/control/start-run", "/v1/runtime/push-messages", "/v1/fleet/x"):
        assert _get(stack, operator, path)[1].startswith(b"HTTP/1.1 200")


def test_plain_http_is_refused_and_logged(stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sovereign_map.mtls"):
        with socket.create_connection(("127.0.0.1", stack.port), timeout=5) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"200" not in raw.recv(4096)
        time.sleep(0.3)
    assert "refused TLS handshake" in caplog.text and "http request" in caplog.text


def test_revocation_takes_effect_without_restart(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    node = stack.root / "nodes" / "node-2"
    context = _client_context(stack, node)
    raw = socket.create_connection(("127.0.0.1", stack.port), timeout=5)
    keep_alive = context.wrap_socket(raw, server_hostname="127.0.0.1")
    keep_alive.sendall(b"GET /v1/fleet/x HTTP/1.1\r\nHost: x\r\n\r\n")
    first = b""
    while not first.endswith(b"0\r\n\r\n"):  # the whole chunked response
        first += keep_alive.recv(4096)
    assert first.startswith(b"HTTP/1.1 200")

    with caplog.at_level(logging.INFO, logger="sovereign_map.mtls"):
        stack.authority.revoke("node-2", datetime.now(UTC))  # rewrites aggregator/ca.crl
        _, response = _get(stack, node)
        assert response == b""  # new handshakes: refused
        deadline = time.monotonic() + 5
        while "closing connection" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "certificate revoked" in caplog.text
    assert re.search(r"closing connection from 127\.0\.0\.1:\d+ \(CN=node-2\): certificate revoked",
                     caplog.text)  # fmt: skip
    keep_alive.settimeout(5)
    try:
        leftover = keep_alive.recv(4096)
    except (ssl.SSLError, ConnectionError):
        leftover = b""
    assert leftover == b""  # the open keep-alive connection was closed
    keep_alive.close()
    _, still_ok = _get(stack, stack.root / "nodes" / "node-0")
    assert still_ok.startswith(b"HTTP/1.1 200")


# ------------------------------------------------------------- material checks


@pytest.fixture
def pki(tmp_path: Path) -> Authority:
    return init_pki(
        tmp_path / "pki", nodes=1, now=NOW - 10 * DAY, validity=365 * DAY, renew_before=30 * DAY,
        ca_validity=3650 * DAY,
    ).authority  # fmt: skip


def test_server_material_is_checked_at_startup(pki: Authority, tmp_path: Path) -> None:
    aggregator = pki.layout.root / "aggregator"
    cert = ServerTLS(aggregator).check(name="127.0.0.1")
    assert "aggregator" in cert.subject.rfc4514_string()
    with pytest.raises(TLSMaterialError, match=r"not valid for 10\.9\.9\.9: its names are"):
        ServerTLS(aggregator).check(name="10.9.9.9")  # not a name the cert carries
    stale = build_crl(pki.ca, [], now=NOW - 40 * DAY, next_update=DAY)
    write_crl(aggregator, stale)
    with pytest.raises(TLSMaterialError, match="CRL expired"):
        ServerTLS(aggregator).check()
    (aggregator / "ca.crl").unlink()
    with pytest.raises(TLSMaterialError, match=r"missing file: .*ca\.crl"):
        ServerTLS(aggregator).check()
    with pytest.raises(TLSMaterialError, match="no such directory"):
        ServerTLS(tmp_path / "nope").check()
    node_dir = pki.layout.root / "nodes" / "node-0"
    shutil.copy(pki.layout.ca_crl, node_dir / "ca.crl")
    with pytest.raises(TLSMaterialError, match="not a server certificate"):
        ServerTLS(node_dir).check()


def test_client_identity_is_checked_before_use(pki: Authority, tmp_path: Path) -> None:
    node = ClientIdentity.from_dir(pki.layout.root / "nodes" / "node-0")
    assert node.subject == "CN=node-0"
    with pytest.raises(TLSMaterialError, match="not a client certificate"):
        ClientIdentity.from_dir(pki.layout.root / "aggregator")
    expired = issue_client(pki.ca, "node-5", validity=DAY, now=NOW - 3 * DAY + timedelta(hours=1))
    _bundle(tmp_path / "expired", pki.ca.cert, expired)
    with pytest.raises(TLSMaterialError, match="expired"):
        ClientIdentity.from_dir(tmp_path / "expired")
    context = node.ssl_context(True)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
