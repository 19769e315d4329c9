from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "aios_site.accounts"
    label = "accounts"
    verbose_name = "Workspaces and access"

    def ready(self) -> None:
        from aios_site.accounts import (
            lockouts,  # noqa: F401 - records lockouts
            signals,  # noqa: F401 - connects the receivers
        )
