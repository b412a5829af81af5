"""Launchers of the testnet's processes (aggregator, node) and their mutual-TLS seam."""
