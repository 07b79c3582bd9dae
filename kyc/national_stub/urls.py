"""The stub's API, version 1. Mounted at /ext/national-id/ on the embedded profile; served alone
at the root by ``manage.py national_id_stub`` (see ``standalone_urls``)."""

from django.urls import path

from . import views

app_name = "national_stub"

urlpatterns = [
    path("v1/health", views.health, name="health"),
    path("v1/_control", views.control, name="control"),
    path("v1/<slug:channel>/verify", views.verify, name="verify"),
]
