from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class VideobankConfig(AppConfig):
    name = "videobank"
    verbose_name = "videobank"
    default = True


class VideobankAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "videobank.admin.VideobankAdminSite"
