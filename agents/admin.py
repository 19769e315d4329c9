from __future__ import annotations

from django.contrib import admin

from agents.models import Agent, BudgetCounter, CostEntry, ModelPrice, Run


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "workspace", "pipeline", "priority", "enabled"]
    list_filter = ["workspace", "pipeline", "enabled"]


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["pk", "agent", "status", "trigger", "current_step", "cost", "created_at"]
    list_filter = ["status", "trigger"]
    readonly_fields = ["claim_token", "heartbeat_at"]


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
