"""Memory for staff. Rows are read-only here: changes go through the services (versions,
contradictions, soft delete), which the actions below call."""

from __future__ import annotations

from django.contrib import admin

from aios_site.core.actors import Actor
from memory import services
from memory.models import MemoryCitation, MemoryEdit, MemoryImport, MemoryItem


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class MemoryEditInline(admin.TabularInline):
    model = MemoryEdit
    fields = ["created_at", "source_ref", "before", "after"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MemoryItem)
class MemoryItemAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "workspace", "kind", "status", "source_kind", "valid_from"]
    list_display += ["valid_until", "pinned", "deleted_at"]
    list_filter = ["workspace", "namespace", "kind", "status", "source_kind", "pinned"]
    search_fields = ["key", "content"]
    exclude = ["embedding", "search_vector"]
    inlines = [MemoryEditInline]
    actions = ["expire", "pin", "forget"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("embedding", "search_vector")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # soft delete only: the "forget" action

    @admin.action(description="Expire now")
    def expire(self, request, queryset) -> None:
        self._apply("expire", request, queryset)

    @admin.action(description="Pin")
    def pin(self, request, queryset) -> None:
        self._apply("pin", request, queryset)

    @admin.action(description="Delete (soft, every version of the key)")
    def forget(self, request, queryset) -> None:
        self._apply("delete", request, queryset)

    def _apply(self, action: str, request, queryset) -> None:
        actor = Actor.of_user(request.user)
        for item in queryset.select_related("workspace"):
            services.BULK_ACTIONS[action](item, actor)


@admin.register(MemoryImport)
class MemoryImportAdmin(ReadOnlyAdmin):
    list_display = ["filename", "workspace", "status", "done", "total", "created_at"]
    list_filter = ["status", "workspace"]
    exclude = ["rows"]

    def get_queryset(self, request):
        return super().get_queryset(request).defer("rows")


@admin.register(MemoryCitation)
class MemoryCitationAdmin(ReadOnlyAdmin):
    list_display = ["item", "run", "seq", "created_at"]
    raw_id_fields = ["item", "run"]
