"""The URL conf of a stub serving as its own process (``command.StubCommand`` sets it): the
stub's API at the root, its developer endpoints only when started with ``--dev-endpoints``."""

from importlib import import_module

from django.conf import settings
from django.urls import include, path

_stub = import_module(settings.OUTSIDE_STUB_URLS)
_patterns = [
    *_stub.api_urlpatterns,
    *(_stub.dev_urlpatterns if settings.OUTSIDE_STUB_DEV_ENDPOINTS else []),
]

urlpatterns = [path("", include((_patterns, _stub.app_name)))]
