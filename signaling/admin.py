"""Kiosks in the admin (admin group only): register one, rotate its credential, revoke it.

A credential is shown once — on the page that answers the registration or rotation, never
stored, never in a redirect's message cookie — and only its hash is kept.
"""

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers, patch_cache_control

from videobank.access import access_admin

from . import access, services
from .models import Kiosk, KioskEvent


class KioskEventInline(admin.TabularInline):
    """The audit trail: read-only, no deletion."""

    model = KioskEvent
    extra = 0
    fields = ("at", "kind", "actor", "ip", "credential_id")
    readonly_fields = fields
    can_delete = False

    def has_view_permission(self, request, obj=None) -> bool:
        return access_admin(request.user)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Kiosk)
class KioskAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "branch",
        "status",
        "credential_id",
        "created_at",
        "rotated_at",
        "revoked_at",
        "enrolled_at",
        "last_seen_at",
    )
    list_filter = ("branch",)
    search_fields = ("name", "branch", "credential_id")
    readonly_fields = (
        "credential_id",
        "created_at",
        "created_by",
        "rotated_at",
        "rotated_by",
        "revoked_at",
        "revoked_by",
        "enrolled_at",
        "enrolled_ip",
        "last_seen_at",
        "last_seen_ip",
    )
    inlines = [KioskEventInline]
    actions = ["rotate_credential", "revoke"]

    # Only the admin group (and superusers), whatever model permissions a user holds; nobody
    # deletes a kiosk (revoke it: the audit trail stays).
    def has_module_permission(self, request) -> bool:
        return access_admin(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return access_admin(request.user)

    def has_add_permission(self, request) -> bool:
        return access_admin(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        return access_admin(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("name", "branch")
        return ("name", "branch", *self.readonly_fields)

    @admin.display(description="status")
    def status(self, kiosk: Kiosk) -> str:
        return "revoked" if kiosk.revoked_at else "active"

    def save_model(self, request, obj, form, change):
        if change:  # name and branch only; the credential changes by rotation
            super().save_model(request, obj, form, change)
            return
        kiosk, credential = services.kiosk_create(
            name=obj.name, branch=obj.branch, actor=request.user.get_username()
        )
        # The admin goes on with ``obj`` (its log entry, the answer page): make it that row.
        obj.pk = kiosk.pk
        obj.refresh_from_db()
        obj._state.adding = False
        request._kiosk_credentials = [(kiosk, credential)]

    def response_add(self, request, obj, post_url_continue=None):
        shown = getattr(request, "_kiosk_credentials", None)
        if not shown:
            return super().response_add(request, obj, post_url_continue)
        return self._credentials_page(request, shown, "registered")

    @admin.action(description="Rotate credential (the old one stops working at once)")
    def rotate_credential(self, request, queryset):
        actor = request.user.get_username()
        shown = []
        for kiosk in queryset:
            try:
                shown.append(services.kiosk_rotate(kiosk_id=kiosk.pk, actor=actor))
            except access.Refused as exc:
                self.message_user(request, exc.en, messages.ERROR)
        if not shown:
            return None
        return self._credentials_page(request, shown, "rotated")

    @admin.action(description="Revoke (its sockets count as web pages from now on)")
    def revoke(self, request, queryset):
        actor = request.user.get_username()
        for kiosk in queryset:
            services.kiosk_revoke(kiosk_id=kiosk.pk, actor=actor)
        self.message_user(
            request, f"Revoked {queryset.count()} kiosk(s); their credentials no longer work."
        )

    def _credentials_page(self, request, shown, what: str) -> TemplateResponse:
        response = TemplateResponse(
            request,
            "admin/signaling/kiosk/credential.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"Kiosk credential {what}",
                "what": what,
                "kiosks": [{"kiosk": k, "credential": c} for k, c in shown],
            },
        )
        # Shown once: no cache (browser or proxy) keeps the page.
        add_never_cache_headers(response)
        patch_cache_control(response, no_store=True)
        return response
