from django.contrib import admin

from signaling.access import ADMIN_GROUP, user_in_group


class VideobankAdminSite(admin.AdminSite):
    site_header = "videobank administration"

    def has_permission(self, request) -> bool:
        # Staff flag alone is not enough: the admin belongs to the admin group (and superusers).
        return super().has_permission(request) and user_in_group(request.user, ADMIN_GROUP)
