from __future__ import annotations

from django.db import migrations
from pgvector.django import VectorExtension


class Migration(migrations.Migration):
    """pgvector, needed by memory and retrieval; created once per database."""

    dependencies = [("accounts", "0001_initial")]

    operations = [VectorExtension()]
