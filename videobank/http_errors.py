"""Refusals over HTTP: a view raises an ``AppError`` (videobank.errors); the middleware answers it
with its status, as JSON for a script or as the error page for a browser opening a page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.deprecation import MiddlewareMixin

from videobank.errors import AppError, http_body


def http_response(request: HttpRequest, error: AppError) -> HttpResponse:
    """``error`` answered over HTTP with its status: JSON for a script (``fetch``, an API
    client, anything that does not ask for a page); for a browser opening a page (it asks for
    ``text/html`` first), the error page with the same words in both languages."""
    response: HttpResponse
    if _wants_page(request):
        response = render(
            request,
            "error.html",
            {"error": error, "status": error.http_status},
            status=error.http_status,
        )
    else:
        response = JsonResponse(
            http_body(error), status=error.http_status, json_dumps_params={"ensure_ascii": False}
        )
    retry = error.fields.get("retry_after_s")
    if isinstance(retry, int):
        response["Retry-After"] = str(retry)
    return response


def _wants_page(request: HttpRequest) -> bool:
    return request.get_preferred_type(["application/json", "text/html"]) == "text/html"


class AppErrorMiddleware(MiddlewareMixin):
    """Turns an ``AppError`` a view raised into its answer (``http_response``). Other
    exceptions pass on to Django: logged with their traceback, answered with the 500 page."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, AppError):
            return None
        return http_response(request, exception)  # Django logs the 4xx as for any view
