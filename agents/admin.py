from __future__ import annotations

from django.contrib import admin
from django.db import models

from agents.models import (
    Agent,
    BudgetCounter,
    CostEntry,
    IntentExample,
    ModelPrice,
    Provider,
    Run,
)


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "workspace", "pipeline", "priority", "enabled"]
    list_filter = ["workspace", "pipeline", "enabled"]


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["pk", "agent", "status", "trigger", "current_step", "cost", "created_at"]
    list_filter = ["status", "trigger"]
    readonly_fields = ["lease_token", "lease_expires_at", "lease_attempts"]


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    """The price table: a row without a workspace is the default for every workspace."""

    list_display = ["model", "workspace", "input_per_million", "output_per_million"]


@admin.register(CostEntry)
class CostEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "workspace", "agent", "model", "tier", "cost", "cache_hit"]
    list_filter = ["workspace", "model", "tier"]


@admin.register(BudgetCounter)
class BudgetCounterAdmin(admin.ModelAdmin):
    list_display = ["workspace", "agent", "period", "period_start", "spent", "reserved"]


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    list_display = ["name", "workspace", "base_url", "model_small", "model_large", "is_default"]
    list_filter = ["workspace"]
    # The key is set on the Models page or through the API; here it stays encrypted.
    exclude = ["api_key_encrypted"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(IntentExample)
class IntentExampleAdmin(admin.ModelAdmin):
    list_display = ["intent", "text", "workspace", "source"]
    list_filter = ["workspace", "intent"]
    search_fields = ["text"]
    exclude = ["embedding"]

    # Examples are embedded when added (Models page, API, `aios intents`); here they can be
    # looked at and deleted, not edited into text their vector no longer matches.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
