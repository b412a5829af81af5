"""A TLS client for probing the aggregator's port from outside the code under test."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path


def tls_request(port: int, cafile: Path, bundle: Path | None, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` to 127.0.0.1:``port`` over TLS, presenting ``bundle``'s ``tls.crt`` /
    ``tls.key`` (none when ``bundle`` is None). Returns (our local port, the answer); the
    answer is b'' when the server refused the handshake."""
    context = ssl.create_default_context(cafile=str(cafile))
    if bundle is not None:
        context.load_cert_chain(bundle / "tls.crt", bundle / "tls.key")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        local_port = int(raw.getsockname()[1])
        try:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.sendall(request)
                data = b""
                while chunk := tls.recv(4096):
                    data += chunk
        except (ssl.SSLError, ConnectionError):
            return local_port, b""
    return local_port, data
