"""Governance records for staff: the audit log is read-only here as everywhere."""

from __future__ import annotations

from django.contrib import admin

from approvals.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["seq", "workspace", "created_at", "actor_label", "action", "object_label"]
    list_filter = ["workspace", "action", "actor_kind"]
    search_fields = ["object_id", "object_label", "actor_label"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
