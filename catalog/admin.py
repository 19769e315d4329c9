"""The catalog for staff; secrets and tokens stay encrypted and out of the forms."""

from __future__ import annotations

from django.contrib import admin

from catalog.models import Product, StoreConnection, WebhookEvent


@admin.register(StoreConnection)
class StoreConnectionAdmin(admin.ModelAdmin):
    list_display = ["shop_domain", "workspace", "api_base_url", "created_at"]
    exclude = ["access_token_encrypted", "webhook_secrets_encrypted"]


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["received_at", "connection", "topic", "webhook_id", "status"]
    list_filter = ["status", "topic"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # kept as they came


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["title", "workspace", "vendor", "status", "source_updated_at", "deleted_at"]
    search_fields = ["title", "handle"]
