"""The stack's PKI: one CA, the aggregator's server certificate, operator and node client
certificates, the CRL; on disk (``certs.layout``) and as a CLI (``certs.cli``)."""
