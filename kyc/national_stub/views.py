"""HTTP face of the stub (JSON, API v1).

    POST /v1/<channel>/verify   {request_id, name, id_number, portrait_jpeg_b64?}
    GET  /v1/health             no key needed: is the process up

The developer endpoint (mounted on the embedded profile; in a process of its own only with
``manage.py national_id_stub --dev-endpoints``) needs the stub's admin key in ``X-Admin-Key``
(NATIONAL_STUB_ADMIN_KEY; the API key does not open it: 403 in words):

    GET  /v1/_control           faults in force per channel
    POST /v1/_control           {channel, outage?, latency_ms?, jitter_ms?, error_rate?}
                                or {reset: true}

Every API call but health needs the ``X-Api-Key`` header (NATIONAL_STUB_API_KEY). Statuses: 200
an answer, 400 a malformed query (with the field), 401 a bad key, 404 an unknown channel, 409 a
request id reused for another question, 413 a body too large, 422 a portrait without a usable
face (or no portrait on file), 500 an injected error, 503 the channel is out.

Views are plain sync functions: on the embedded profile daphne runs each HTTP request's sync code
in a thread of that request's own (Django's ASGIHandler opens a ThreadSensitiveContext per
request), so a caller inside the same process waiting on this view does not hold its thread.
"""

from __future__ import annotations

import hmac
import json

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import services
from .services import StubError


def _error(
    status: int, code: str, detail: str, field: str | None = None, **extra
) -> JsonResponse:
    body = {"error": code, "detail": detail, **extra}
    if field:
        body["field"] = field
    return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})


def _key_ok(request: HttpRequest) -> bool:
    expected = getattr(settings, "NATIONAL_STUB_API_KEY", "")
    given = request.headers.get("X-Api-Key", "")
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _admin_ok(request: HttpRequest) -> bool:
    """The stub's admin key (never the API key: a caller of the API cannot flip faults)."""
    expected = getattr(settings, "NATIONAL_STUB_ADMIN_KEY", "")
    given = request.headers.get("X-Admin-Key", "")
    return (
        bool(expected)
        and expected != getattr(settings, "NATIONAL_STUB_API_KEY", "")
        and hmac.compare_digest(given.encode(), expected.encode())
    )


def _forbidden() -> JsonResponse:
    return _error(
        403,
        "forbidden",
        "a developer endpoint of the stub: it needs the stub's admin key in X-Admin-Key "
        "(NATIONAL_STUB_ADMIN_KEY); the API key does not open it",
        en="This developer endpoint needs the national ID stub's admin key.",
        zh="该开发者接口需要身份核查模拟服务的管理密钥。",
    )


def _json_body(request: HttpRequest) -> object:
    try:
        raw = request.body
    except RequestDataTooBig as exc:
        raise _TooLarge from exc
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise services.BadQuery("the body is not JSON") from exc


class _TooLarge(Exception):
    pass


def _unauthorized() -> JsonResponse:
    return _error(401, "unauthorized", "missing or wrong X-Api-Key")


@csrf_exempt
@require_POST
def verify(request: HttpRequest, channel: str) -> JsonResponse:
    if not _key_ok(request):
        return _unauthorized()
    if channel not in services.stub_channels():
        return _error(404, "unknown_channel", f"no channel {channel!r}")
    state = services.stub_channel_state(channel=channel)
    if state.outage:
        return _error(503, "outage", f"channel {channel} is out of service")
    services.stub_delay(state=state)
    if services.stub_error_injected(state=state):
        return _error(500, "internal", "injected error (NATIONAL_STUB_ERROR_RATE)")
    try:
        query = services.query_parse(_json_body(request))
        answer = services.stub_verify(channel=channel, query=query)
    except _TooLarge:
        return _error(413, "too_large", "the body is larger than the service accepts")
    except StubError as exc:
        return _error(exc.status, exc.code, exc.detail, exc.field)
    return JsonResponse(answer, json_dumps_params={"ensure_ascii": False})


@csrf_exempt
@require_http_methods(["GET", "POST"])
def control(request: HttpRequest) -> JsonResponse:
    if not _admin_ok(request):
        return _forbidden()
    if request.method == "POST":
        try:
            data = _json_body(request)
            if not isinstance(data, dict):
                raise services.BadQuery("the body must be a JSON object")
            if data.get("reset"):
                services.stub_control_reset()
            else:
                unknown = sorted(
                    set(data) - {"channel", "outage", "latency_ms", "jitter_ms", "error_rate"}
                )
                if unknown:
                    raise services.BadQuery(f"unknown field(s): {', '.join(unknown)}")
                outage = data.get("outage")
                if outage is not None and not isinstance(outage, bool):
                    raise services.BadQuery("outage must be true or false", field="outage")
                services.stub_control_set(
                    channel=str(data.get("channel", "")),
                    outage=outage,
                    **{k: data[k] for k in ("latency_ms", "jitter_ms", "error_rate") if k in data},
                )
        except _TooLarge:
            return _error(413, "too_large", "the body is too large")
        except StubError as exc:
            return _error(exc.status, exc.code, exc.detail, exc.field)
    return JsonResponse(
        {
            "channels": {
                channel: services.stub_channel_state(channel=channel).as_dict()
                for channel in services.stub_channels()
            }
        }
    )


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"service": "national-id-stub", "api": "v1", "channels": list(services.stub_channels())}
    )
