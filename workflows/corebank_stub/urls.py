"""The stub's API, version 1. Mounted at /ext/core-bank/ on the embedded profile (with the
developer endpoints); served alone at the root by ``manage.py corebank_stub`` (see
``videobank.outside.stubs.urls``: the developer endpoints only with ``--dev-endpoints``)."""

from django.urls import path

from . import views

app_name = "corebank_stub"

# What the bank's client calls (the API key).
api_urlpatterns = [
    path("v1/health", views.health, name="health"),
    path("v1/customers/lookup", views.customer_lookup, name="customer-lookup"),
    path("v1/pin/challenges", views.pin_challenge, name="pin-challenge"),
    path("v1/pin/verify", views.pin_verify, name="pin-verify"),
    path("v1/operations/<slug:operation>", views.operation, name="operation"),
]
# Developer endpoints (the admin key): fault switches and the simulated phone's last code.
dev_urlpatterns = [
    path("v1/_control", views.control, name="control"),
    path("v1/_dev/otp", views.dev_otp, name="dev-otp"),
]

urlpatterns = [*api_urlpatterns, *dev_urlpatterns]
