"""Canonical memory: versioned facts and notes in PostgreSQL + pgvector, hybrid recall."""
