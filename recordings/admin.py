"""Recordings in the admin: read-only. The audit trail answers "who looked at which call"."""

from django.contrib import admin

from .models import QaNote, QaReview, RecordingAccess


class ReadOnlyAdmin(admin.ModelAdmin):
    """Audit and review rows are evidence: nobody edits or deletes them here."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RecordingAccess)
class RecordingAccessAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "action", "recording")
    list_filter = ("action",)
    search_fields = ("actor", "recording__id", "recording__call__id")
    date_hierarchy = "at"


@admin.register(QaReview)
class QaReviewAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "reviewer", "verdict", "score", "recording")
    list_filter = ("verdict",)
    search_fields = ("reviewer__username", "recording__id")


@admin.register(QaNote)
class QaNoteAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "author", "at_ms", "text", "recording")
    search_fields = ("author__username", "text")
