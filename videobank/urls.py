from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("signaling.urls")),
    path("admin/", admin.site.urls),
    path("kyc/", include("kyc.urls")),
    path("receipts/", include("workflows.urls")),
    path("qa/", include("recordings.urls")),
    # The national ID check stub, mounted here on the embedded profile only (in production it is
    # a process of its own: `manage.py national_id_stub`).
    path("ext/national-id/", include("kyc.national_stub.urls")),
    # The core-banking stub, likewise (in production: `manage.py corebank_stub`).
    path("ext/core-bank/", include("workflows.corebank_stub.urls")),
]
