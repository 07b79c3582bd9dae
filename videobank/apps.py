from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class VideobankConfig(AppConfig):
    name = "videobank"
    verbose_name = "videobank"
    default = True

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the production checks


class VideobankAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "videobank.admin.VideobankAdminSite"
