"""The devnet: a whole testnet as local processes on 127.0.0.1 (`sovereign-map devnet`)."""
