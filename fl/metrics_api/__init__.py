"""The metrics API: the aggregator's metrics store served as JSON and as Prometheus metrics.

``create_app`` builds the Flask application; ``fl.metrics_api.server`` serves it with waitress;
``fl.metrics_api.cli`` is the ``sovereign-map metrics-api`` command.
"""

from __future__ import annotations

from fl.metrics_api.app import create_app
from fl.metrics_api.config import RunConfig

__all__ = ["RunConfig", "create_app"]
