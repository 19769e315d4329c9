from __future__ import annotations

from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"

    def ready(self) -> None:
        from approvals.targets import register_namer
        from catalog import (
            effectors,  # noqa: F401 - registers the catalog's effectors
            redaction,
        )
        from catalog import selectors as names
        from catalog.content import effectors as _content  # noqa: F401 - and the content ones
        from catalog.content.selectors import brief_names

        register_namer("product", names.product_names)
        register_namer("variant", names.variant_names)
        register_namer("message", names.message_names)
        register_namer("brief", brief_names)
        redaction.register()  # entries about a customer are sealed under their key
