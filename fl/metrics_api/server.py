"""Serving the app with waitress, a production WSGI server."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from flask import Flask
from waitress import wasyncore
from waitress.server import create_server

DEFAULT_THREADS = 4  # CPU-bound handlers share the GIL; see benchmarks/metrics_api_load.md


def make_server(app: Flask, host: str, port: int, threads: int = DEFAULT_THREADS) -> Any:
    """A bound waitress server (``.run()`` serves, ``.effective_port`` is the bound port).

    Raises ``OSError`` when the address cannot be bound.
    """
    return create_server(
        app,
        host=host,
        port=port,
        threads=threads,
        ident="sovereign-map-metrics-api",
        connection_limit=1000,
        channel_timeout=30,
        max_request_header_size=64 * 1024,
        max_request_body_size=64 * 1024,
    )


def stop_server(server: Any) -> None:
    """Stop a server running in another thread: let running requests finish, close sockets."""
    server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
    wasyncore.close_all(server._map)


class BackgroundServer:
    """``with BackgroundServer(app, "127.0.0.1", 0) as port:`` serves ``app`` in a thread."""

    def __init__(self, app: Flask, host: str, port: int, threads: int = DEFAULT_THREADS) -> None:
        self.server = make_server(app, host, port, threads)
        self.thread = threading.Thread(target=self.server.run, name="metrics-api", daemon=True)

    def __enter__(self) -> int:
        self.thread.start()
        return int(self.server.effective_port)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stop_server(self.server)
        self.thread.join(timeout=10)
