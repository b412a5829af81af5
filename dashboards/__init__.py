"""Monitoring as code: Prometheus scrape configs and alert rules, Alertmanager routing and the
Grafana dashboards of the testnet, rendered from Python.

``grafana``, ``prometheus``, ``alerts``, ``alertmanager`` build the documents, ``render`` writes
them, ``check`` validates them with promtool/amtool, ``queries`` lists every PromQL expression.
"""
