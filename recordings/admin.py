"""Recordings in the admin: read-only evidence. The audit trail answers "who looked at which
call"; a recording shows whether it was sealed whole or as incomplete, and why."""

from django.contrib import admin

from videobank.admin import AppendOnlyAdmin, AppendOnlyInline

from .models import QaNote, QaReview, Recording, RecordingAccess, RecordingSegment


class RecordingSegmentInline(AppendOnlyInline):
    model = RecordingSegment
    fields = ("side", "index", "start_ms", "duration_ms", "size", "sha256", "created_at")
    readonly_fields = fields


@admin.register(Recording)
class RecordingAdmin(AppendOnlyAdmin):
    list_display = ("id", "call", "status", "incomplete", "started_at", "ended_at")
    list_filter = ("status", "incomplete")
    search_fields = ("id", "call__id")
    date_hierarchy = "started_at"
    # The wrapped data key stays out of the page.
    exclude = ("wrapped_key",)
    readonly_fields = (
        "id",
        "call",
        "status",
        "incomplete",
        "incomplete_reason",
        "key_id",
        "started_at",
        "ended_at",
        "clock_fixed",
        "manifest_sha256",
        "manifest_hmac",
        "manifest",
    )
    inlines = [RecordingSegmentInline]


@admin.register(RecordingAccess)
class RecordingAccessAdmin(AppendOnlyAdmin):
    list_display = ("at", "actor", "action", "recording")
    list_filter = ("action",)
    search_fields = ("actor", "recording__id", "recording__call__id")
    date_hierarchy = "at"


@admin.register(QaReview)
class QaReviewAdmin(AppendOnlyAdmin):
    list_display = ("created_at", "reviewer", "kind", "verdict", "score", "overrides", "recording")
    list_filter = ("verdict", "kind")
    search_fields = ("reviewer__username", "recording__id")


@admin.register(QaNote)
class QaNoteAdmin(AppendOnlyAdmin):
    list_display = ("created_at", "author", "at_ms", "text", "recording")
    search_fields = ("author__username", "text")
