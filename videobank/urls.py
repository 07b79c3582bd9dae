from django.conf import settings
from django.contrib import admin
from django.urls import include, path

bank_urlpatterns = [
    path("", include("signaling.urls")),
    path("admin/", admin.site.urls),
    path("kyc/", include("kyc.urls")),
    path("receipts/", include("workflows.urls")),
    path("qa/", include("recordings.urls")),
]

# The outside systems' stand-ins with their developer endpoints (fault switches, the last one-time
# code: behind the stubs' admin keys). Mounted in our own server on the embedded profile only; in
# production there are no /ext/ routes: a stub runs, if at all, as a process of its own
# (`manage.py national_id_stub`, `manage.py corebank_stub`) and the system checks refuse
# COREBANK_URL / KYC_NATIONAL_CHANNELS pointing at these paths.
stub_urlpatterns = [
    path("ext/national-id/", include("kyc.national_stub.urls")),
    path("ext/core-bank/", include("workflows.corebank_stub.urls")),
]

urlpatterns = [*bank_urlpatterns]
if settings.PROFILE == "embedded":
    urlpatterns += stub_urlpatterns
