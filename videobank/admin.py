from django.contrib import admin

from videobank.access import ADMIN_GROUP, user_in_group


class VideobankAdminSite(admin.AdminSite):
    site_header = "videobank administration"

    def has_permission(self, request) -> bool:
        # Staff flag alone is not enough: the admin belongs to the admin group (and superusers).
        return super().has_permission(request) and user_in_group(request.user, ADMIN_GROUP)


class AppendOnlyAdmin(admin.ModelAdmin):
    """Evidence (calls and their timelines, cases, receipts, recordings, reviews, the access
    audit): shown, never added, changed or deleted through the admin — by anyone, superusers
    included, and without the "delete selected" action. Rows change only through the services
    that write them; removing old evidence is retention's job, not an admin's click."""

    actions = None

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class AppendOnlyInline(admin.TabularInline):
    """An evidence inline (a call's timeline, a recording's segments): read-only rows, no
    delete boxes, no blank rows to add."""

    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
