from django.contrib import admin

from videobank.admin import AppendOnlyAdmin

from .models import BusinessCase, Receipt


@admin.register(BusinessCase)
class BusinessCaseAdmin(AppendOnlyAdmin):
    """A case changes only through the workflow's services (and its timeline)."""

    list_display = ("id", "business", "status", "call", "teller", "created_at", "done_at")
    list_filter = ("business", "status")
    search_fields = ("id", "call__id", "customer_ref")
    readonly_fields = [f.name for f in BusinessCase._meta.fields]


@admin.register(Receipt)
class ReceiptAdmin(AppendOnlyAdmin):
    list_display = ("code", "case", "issued_at")
    search_fields = ("code",)
    readonly_fields = ("id", "case", "code", "content", "issued_at")
