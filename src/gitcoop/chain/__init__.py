"""Anchoring the ledger in Ethereum: JSON-RPC, the anchoring state machine, verification."""
