"""URLs of the stub when it runs as its own process: only the stub, at the root."""

from django.urls import include, path

urlpatterns = [path("", include("workflows.corebank_stub.urls"))]
