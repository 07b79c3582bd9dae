"""URLs of the stub when it runs as its own process: only the stub's API, at the root. The
developer endpoint is another URL conf (``standalone_dev_urls``), chosen by the command's
``--dev-endpoints`` flag."""

from django.urls import include, path

from .urls import api_urlpatterns, app_name

urlpatterns = [path("", include((api_urlpatterns, app_name)))]
