"""``manage.py corebank_stub --dev-endpoints``: the stub's API and its developer endpoints
(behind COREBANK_STUB_ADMIN_KEY), for tests and demos that flip its faults over HTTP."""

from django.urls import include, path

from .urls import api_urlpatterns, app_name, dev_urlpatterns

urlpatterns = [path("", include(([*api_urlpatterns, *dev_urlpatterns], app_name)))]
