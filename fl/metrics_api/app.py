"""The Flask application: ``/health``, ``/convergence``, ``/metrics_summary``, ``/metrics``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from werkzeug.exceptions import BadRequest, HTTPException

from fl.metrics_api.collector import StoreCollector
from fl.metrics_api.config import RunConfig
from fl.metrics_api.snapshot import Snapshot, SnapshotReader, StoreUnreadableError
from fl.metrics_api.views import convergence, run_state, summary
from fl.metrics_store import MetricsStore

SERVICE = "metrics-api"
MAX_LIMIT = 1_000_000
log = logging.getLogger(__name__)


def parse_limit(raw: str | None) -> int | None:
    """``?limit=N``: only the last N rounds (a positive integer)."""
    if raw is None or raw == "":
        return None
    digits = raw.isascii() and raw.isdigit() and len(raw) <= len(str(MAX_LIMIT))
    if not digits or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"limit must be an integer from 1 to {MAX_LIMIT}, got {raw[:40]!r}")
    return int(raw)


class RenderedCache:
    """The last body rendered per key, reused while the store snapshot behind it is the same
    object: :class:`SnapshotReader` hands out one snapshot until the store changes, and for at
    most ``max_age`` seconds, so a cached body is never staler than the snapshot itself.
    Under load this turns most requests into a lookup instead of a render."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bodies: dict[Hashable, tuple[Snapshot, bytes]] = {}

    def get(self, key: Hashable, snap: Snapshot, render: Callable[[], bytes]) -> bytes:
        with self._lock:
            hit = self._bodies.get(key)
        if hit is not None and hit[0] is snap:
            return hit[1]
        body = render()
        with self._lock:
            if len(self._bodies) > 64:  # ?limit= values: keep the cache small
                self._bodies.clear()
            self._bodies[key] = (snap, body)
        return body


def unavailable(exc: StoreUnreadableError) -> tuple[Response, int]:
    return jsonify(status="unhealthy", service=SERVICE, reason=str(exc)), 503


def create_app(
    store_path: Path,
    cert_dir: Path | None = None,
    *,
    run_config: RunConfig | None = None,
) -> Flask:
    """The metrics API over the store at ``store_path``.

    ``cert_dir``: PEM certificates whose days to expiry ``/metrics`` reports.
    ``run_config``: planned rounds, node count, ε budget and configured attackers, if known.
    """
    app = Flask("sovereign_map_metrics_api")
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep documents in reading order
    store = MetricsStore(store_path)
    config = run_config or RunConfig()
    reader = SnapshotReader(store)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(reader, config, cert_dir))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)

    def snapshot() -> Snapshot:
        return reader.read()

    rendered = RenderedCache()

    def json_body(key: Hashable, snap: Snapshot, build: Callable[[], Any]) -> Response:
        # rendered as jsonify would (the app's JSON settings, trailing newline)
        body = rendered.get(key, snap, lambda: f"{app.json.dumps(build())}\n".encode())
        return Response(body, mimetype="application/json")

    @app.get("/health")
    def health() -> Any:
        try:
            snap = snapshot()
        except StoreUnreadableError as exc:
            return unavailable(exc)
        latest = snap.latest
        return jsonify(
            status="healthy",
            service=SERVICE,
            store=str(store.path),
            state=run_state(snap, config),
            current_round=latest.round if latest else 0,
            last_round_timestamp=latest.timestamp if latest else None,
        )

    @app.get("/convergence")
    def convergence_view() -> Any:
        limit = parse_limit(request.args.get("limit"))
        try:
            snap = snapshot()
        except StoreUnreadableError as exc:
            return unavailable(exc)
        return json_body(("convergence", limit), snap, lambda: convergence(snap, limit, config))

    @app.get("/metrics_summary")
    def summary_view() -> Any:
        try:
            snap = snapshot()
        except StoreUnreadableError as exc:
            return unavailable(exc)
        return json_body("summary", snap, lambda: summary(snap, config))

    @app.get("/metrics")
    def metrics_view() -> Response:
        # Text format by default, OpenMetrics when the scraper asks for it (Prometheus does).
        try:
            encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        except Exception:  # a malformed Accept header gets the plain text format
            encoder, content_type = generate_latest, CONTENT_TYPE_PLAIN_0_0_4
        try:
            snap = snapshot()
        except StoreUnreadableError:  # still served: sovereignmap_metrics_store_up says 0
            return Response(encoder(registry), content_type=content_type)
        # process and certificate metrics are then as old as the snapshot (at most 1 s)
        body = rendered.get(("metrics", content_type), snap, lambda: encoder(registry))
        return Response(body, content_type=content_type)

    @app.get("/")
    def index() -> Any:
        return jsonify(
            service=SERVICE, endpoints=["/health", "/convergence", "/metrics_summary", "/metrics"]
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        response = exc.get_response()
        response.set_data(
            jsonify(error=exc.name, status=exc.code, message=exc.description).get_data()
        )
        response.content_type = "application/json"
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[Response, int]:
        log.exception("unhandled error serving %s", request.path)
        return jsonify(
            error="Internal Server Error", status=500, message="the metrics API failed; see its log"
        ), 500

    return app
