"""Governance: proposals, the policy engine, idempotent effectors and the hash-chained audit log."""
