"""Serve an ASGI app with uvicorn behind a mutual-TLS handshake we can see.

uvicorn hands TLS to asyncio, which drops a failed handshake silently. Here uvicorn listens
in plain TCP and its HTTP protocol is wrapped: each connection is upgraded with the public
``loop.start_tls`` using ``ServerTLS.context()`` (client certificate REQUIRED, CA + CRL),
then handed to uvicorn's own HTTP protocol. So every refused handshake is logged with the
peer address and OpenSSL's reason, and accepted connections are remembered: a sweep closes
those whose certificate was revoked or expired since (keep-alive connections would
otherwise outlive a revocation). An optional ``Policy`` decides, per request, what a
certificate may reach (e.g. nodes only the Fleet API); refusals are answered 403 and logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from cryptography import x509
from uvicorn.protocols.http.auto import AutoHTTPProtocol

from fl.launch.tls_material import ServerTLS, TLSMaterialError

__all__ = ["HandshakeGate", "Policy", "guarded", "mtls_server", "refusal_reason", "serve_mtls"]

log = logging.getLogger("sovereign_map.mtls")

HANDSHAKE_TIMEOUT_S = 10.0
SWEEP_INTERVAL_S = 5.0

# (client certificate, request path) -> None to allow, or why the request is forbidden
Policy = Callable[[x509.Certificate, str], str | None]
Address = tuple[str, int]


@dataclass(frozen=True)
class _Peer:
    name: str  # "host:port" for logs
    address: Address  # as uvicorn puts it in scope["client"]
    cert: x509.Certificate


def refusal_reason(exc: BaseException) -> str:
    """A short human-readable reason for a failed handshake."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"client certificate rejected: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        if reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
            return "no client certificate presented"
        return reason.replace("_", " ").lower()
    if isinstance(exc, TimeoutError):
        return "handshake timed out"
    if isinstance(exc, ConnectionError):
        return "peer closed the connection during the handshake"
    return f"{type(exc).__name__}: {exc}"


class HandshakeGate:
    """Mutual-TLS admission for one listening server, with logging and revocation sweeps."""

    def __init__(
        self,
        material: ServerTLS,
        *,
        handshake_timeout: float = HANDSHAKE_TIMEOUT_S,
        sweep_interval: float = SWEEP_INTERVAL_S,
    ) -> None:
        self.material = material
        self.handshake_timeout = handshake_timeout
        self.sweep_interval = sweep_interval
        self.live: dict[asyncio.BaseTransport, _Peer] = {}
        self.by_address: dict[Address, x509.Certificate] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def refused(self, peer: str, reason: str) -> None:
        log.warning("refused TLS handshake from %s: %s", peer, reason)

    def accepted(self, peer: str, transport: asyncio.BaseTransport) -> None:
        der = transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
        cert = x509.load_der_x509_certificate(der)
        raw = transport.get_extra_info("peername")
        address = (str(raw[0]), int(raw[1]))
        self.live[transport] = _Peer(peer, address, cert)
        self.by_address[address] = cert
        log.debug("accepted %s from %s", cert.subject.rfc4514_string(), peer)

    def forget(self, transport: asyncio.BaseTransport) -> None:
        entry = self.live.pop(transport, None)
        if entry is not None and self.by_address.get(entry.address) is entry.cert:
            del self.by_address[entry.address]

    def ensure_sweeper(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = loop.create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            self.sweep()

    def sweep(self) -> None:
        """Close connections whose client certificate is now revoked or expired."""
        for transport, peer in list(self.live.items()):
            if transport.is_closing():
                self.forget(transport)
                continue
            try:
                reason = self.material.refusal_reason(peer.cert)
            except TLSMaterialError as exc:
                reason = f"server TLS material unusable: {exc}"
            if reason:
                subject = peer.cert.subject.rfc4514_string()
                log.warning("closing connection from %s (%s): %s", peer.name, subject, reason)
                self.forget(transport)
                transport.close()

    def protocol_class(self) -> type[asyncio.Protocol]:
        """The uvicorn ``http`` protocol class that admits connections through this gate."""
        gate = self

        class GatedProtocol(_GatedHTTP):
            _gate = gate

        return GatedProtocol


class _GatedHTTP(asyncio.Protocol):
    """Performs the TLS handshake, then delegates every callback to uvicorn's protocol."""

    _gate: HandshakeGate

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self._args = {"config": config, "server_state": server_state, "app_state": app_state}
        self._loop = _loop or asyncio.get_event_loop()
        self._inner: asyncio.Protocol | None = None
        self._pending: list[bytes] = []
        self._eof = False
        self._lost: tuple[Exception | None] | None = None
        self._tls: asyncio.Transport | None = None

    # -- before the handshake completes -------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()
        self._gate.ensure_sweeper(self._loop)
        self._loop.create_task(self._handshake(transport))

    async def _handshake(self, transport: asyncio.Transport) -> None:
        peer = _peer(transport)
        try:
            context = self._gate.material.context()
        except TLSMaterialError as exc:
            self._gate.refused(peer, f"server TLS material unusable: {exc}")
            transport.close()
            return
        try:
            tls = await self._loop.start_tls(
                transport,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=self._gate.handshake_timeout,
            )
        except (OSError, TimeoutError) as exc:
            # ssl.SSLError is an OSError; start_tls has closed the transport.
            self._gate.refused(peer, refusal_reason(exc))
            return
        if tls is None:  # the peer went away as the handshake finished
            return
        self._tls = tls
        self._gate.accepted(peer, tls)
        self._attach(tls)

    def _attach(self, tls: asyncio.Transport) -> None:
        inner: asyncio.Protocol = AutoHTTPProtocol(**self._args, _loop=self._loop)
        self._inner = inner
        inner.connection_made(tls)
        for chunk in self._pending:
            inner.data_received(chunk)
        self._pending.clear()
        if self._eof and not inner.eof_received():
            tls.close()
        if self._lost is not None:
            inner.connection_lost(self._lost[0])

    # -- delegated (or buffered until the HTTP protocol is attached) ---------------
    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)
        else:
            self._pending.append(data)

    def eof_received(self) -> bool | None:
        if self._inner is not None:
            return self._inner.eof_received()
        self._eof = True
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        if self._tls is not None:
            self._gate.forget(self._tls)
        if self._inner is not None:
            self._inner.connection_lost(exc)
        else:
            self._lost = (exc,)

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


def _peer(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = peer[0], peer[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(peer)


def guarded(app: Any, gate: HandshakeGate, policy: Policy) -> Any:
    """Wrap an ASGI app so each request is checked against ``policy`` for its certificate."""

    async def guarded_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            client = scope.get("client")
            cert = gate.by_address.get((client[0], client[1])) if client else None
            path = scope.get("path", "")
            reason = "no client certificate" if cert is None else policy(cert, path)
            if reason is not None:
                who = cert.subject.rfc4514_string() if cert else "?"
                where = f"{client[0]}:{client[1]}" if client else "?"
                log.warning("forbidden %s from %s (%s): %s", path, where, who, reason)
                await _forbid(scope, send, reason)
                return
        await app(scope, receive, send)

    return guarded_app


async def _forbid(scope: dict[str, Any], send: Any, reason: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = f"forbidden: {reason}\n".encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 403, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _HideUvicornScheme(logging.Filter):
    """uvicorn would announce ``http://`` (it does not see our TLS); we announce instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Uvicorn running on")


def mtls_server(
    app: Any,
    *,
    host: str,
    port: int,
    material: ServerTLS,
    log_config: dict[str, Any] | None = None,
    access_log: bool = True,
    sweep_interval: float = SWEEP_INTERVAL_S,
    policy: Policy | None = None,
) -> tuple[uvicorn.Server, HandshakeGate]:
    """A uvicorn server for ``app`` whose connections go through a ``HandshakeGate``."""
    gate = HandshakeGate(material, sweep_interval=sweep_interval)
    config = uvicorn.Config(
        app if policy is None else guarded(app, gate, policy),
        host=host,
        port=port,
        http=gate.protocol_class(),
        loop="asyncio",
        log_config=log_config,
        access_log=access_log,
        proxy_headers=False,  # scope["client"] must be the TLS peer, never a header
        workers=1,
    )
    logging.getLogger("uvicorn.error").addFilter(_HideUvicornScheme())
    return uvicorn.Server(config), gate


def serve_mtls(
    app: Any,
    *,
    host: str,
    port: int,
    material: ServerTLS,
    log_config: dict[str, Any] | None = None,
    access_log: bool = True,
    what: str = "server",
    policy: Policy | None = None,
) -> None:
    """Run ``app`` on ``host:port`` with mutual TLS until SIGINT/SIGTERM (blocking)."""
    server, _ = mtls_server(
        app,
        host=host,
        port=port,
        material=material,
        log_config=log_config,
        access_log=access_log,
        policy=policy,
    )
    log.info(
        "%s listening on https://%s:%d (mutual TLS: a client certificate issued by %s is required)",
        what,
        f"[{host}]" if ":" in host else host,
        port,
        material.files[0],
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
