from django.contrib import admin

from videobank.admin import AppendOnlyAdmin, AppendOnlyInline

from .models import Business, Call, CallEvent, TellerPresence


@admin.register(Business)
class BusinessAdmin(admin.ModelAdmin):
    list_display = ("key", "name_zh", "name_en", "active", "sort_order")


class CallEventInline(AppendOnlyInline):
    """The call's timeline: evidence, read-only."""

    model = CallEvent
    readonly_fields = ("kind", "actor", "at", "data")


@admin.register(Call)
class CallAdmin(AppendOnlyAdmin):
    list_display = ("id", "business", "channel", "status", "teller", "enqueued_at", "ended_at")
    list_filter = ("status", "business", "channel")
    readonly_fields = [f.name for f in Call._meta.fields]
    inlines = [CallEventInline]


@admin.register(TellerPresence)
class TellerPresenceAdmin(admin.ModelAdmin):
    list_display = ("teller", "status", "since", "current_call")
