"""The stub's API, version 1. Mounted at /ext/national-id/ on the embedded profile (with the
developer endpoint); served alone at the root by ``manage.py national_id_stub`` (see
``videobank.outside.stubs.urls``: the developer endpoint only with ``--dev-endpoints``)."""

from django.urls import path

from . import views

app_name = "national_stub"

# The developer endpoint (the admin key): each channel's fault switches.
dev_urlpatterns = [path("v1/_control", views.control, name="control")]
# What the bank's client calls (the API key).
api_urlpatterns = [
    path("v1/health", views.health, name="health"),
    path("v1/<slug:channel>/verify", views.verify, name="verify"),
]

urlpatterns = [*api_urlpatterns, *dev_urlpatterns]
