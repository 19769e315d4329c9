from __future__ import annotations

from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"

    def ready(self) -> None:
        from approvals.targets import register_context, register_namer
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
        register_context("message", names.message_context)
        register_context("product", names.product_context)
        register_context("variant", names.variant_context)
        redaction.register()  # entries about a customer are sealed under their key
        _first_run_steps()


def _first_run_steps() -> None:
    from approvals.firstrun import Step, register_step
    from catalog.models import Product, StoreConnection

    register_step(
        Step(
            "Connect your store",
            lambda workspace_id: StoreConnection.objects.filter(workspace_id=workspace_id).exists(),
            "catalog_store",
            "Its agents start at once: a writer, a stock watcher and customer support.",
        )
    )
    register_step(
        Step(
            "Your catalog arrives",
            lambda workspace_id: Product.objects.filter(workspace_id=workspace_id).exists(),
            "catalog",
            "Products come in as the shop sends them; the writer drafts descriptions for the "
            "thin ones.",
        )
    )
