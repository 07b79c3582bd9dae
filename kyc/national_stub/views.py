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

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from videobank.outside.stubs.answers import json_answer, json_body

from . import services


@csrf_exempt
@require_POST
def verify(request: HttpRequest, channel: str) -> JsonResponse:
    def handle() -> JsonResponse:
        query = services.query_parse(json_body(request))
        return json_answer(services.stub_verify(channel=channel, query=query))

    return services.FAULTS.served(
        request,
        key=channel,
        outage_detail=f"channel {channel} is out of service",
        handler=handle,
    )


control = services.FAULTS.control_view()


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return json_answer(
        {"service": "national-id-stub", "api": "v1", "channels": list(services.stub_channels())}
    )
