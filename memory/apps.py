from __future__ import annotations

from django.apps import AppConfig


class MemoryConfig(AppConfig):
    name = "memory"

    def ready(self) -> None:
        from agents.context import provide
        from memory.services import recall_for_step

        provide("recall", recall_for_step)
