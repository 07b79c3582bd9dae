"""The URL conf of a stub serving as its own process (``command.StubCommand`` sets it): the
stub's API at the root, its developer endpoints only when started with ``--dev-endpoints``."""

from importlib import import_module

from django.conf import settings
from django.urls import include, path

# Set by command.StubCommand in the stub process before this module is imported.
_stub = import_module(settings.OUTSIDE_STUB_URLS)  # type: ignore[misc]
_patterns = [
    *_stub.api_urlpatterns,
    *(_stub.dev_urlpatterns if settings.OUTSIDE_STUB_DEV_ENDPOINTS else []),  # type: ignore[misc]
]

urlpatterns = [path("", include((_patterns, _stub.app_name)))]
