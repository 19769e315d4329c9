"""What every table of 384-d MiniLM vectors declares the same way."""

from __future__ import annotations

from pgvector.django import HnswIndex


def cosine_hnsw_index(name: str, field: str = "embedding") -> HnswIndex:
    """HNSW over cosine distance with pgvector's default build parameters, spelled out."""
    return HnswIndex(
        name=name, fields=[field], m=16, ef_construction=64, opclasses=["vector_cosine_ops"]
    )
