"""HTTP face of the core-banking stub (JSON, API v1).

    POST /v1/customers/lookup       {id_number}  → the customer, or 404 customer_not_found
    POST /v1/pin/challenges         {customer_ref, purpose, method?}  → 201 {challenge_id,
                                    public_key_spki_b64, nonce, method, purpose, expires_at}
    POST /v1/pin/verify             {challenge_id, ciphertext_b64}  → {ok, code, en, zh,
                                    attempts_left, locked, ...}
    POST /v1/operations/<operation> {idempotency_key, customer_ref, params, authorised_by?}
                                    → 200 {status: "done", result, replayed} or
                                      422 {status: "rejected", error, en, zh, replayed}
    GET  /v1/health                 no key needed: is the process up

Developer endpoints (mounted on the embedded profile; in a process of its own only with
``manage.py corebank_stub --dev-endpoints``), with the stub's admin key in ``X-Admin-Key``
(COREBANK_STUB_ADMIN_KEY; the API key does not open them: 403 in words):

    GET  /v1/_control               the faults in force
    POST /v1/_control               {outage?, latency_ms?, jitter_ms?, error_rate?,
                                    lose_answers?} or {reset: true}
    GET  /v1/_dev/otp?customer_ref= the last one-time code sent (tests, the demo page)

Every API call but health needs the ``X-Api-Key`` header (COREBANK_STUB_API_KEY). Other
statuses: 400 a malformed request (with the field), 401 a bad key, 404 an unknown operation or
customer, 409 an idempotency key reused for another request, 413 a body too large, 422 an
operation refused (e.g. ``not_authorised``: no valid PIN / one-time code for it), 500 an
injected error, 503 an outage, 504 an answer lost on purpose (``lose_answers``: the operation
*was* carried out).

Views are plain sync functions: on the embedded profile daphne runs each HTTP request's sync
code in a thread of its own, so a caller in the same process waiting on the stub does not hold
the thread the stub needs.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import services
from .conf import stub_setting
from .services import StubError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


def _json(body: dict, status: int = 200) -> JsonResponse:
    return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})


def _error(status: int, code: str, detail: str, field: str | None = None, **extra) -> JsonResponse:
    body = {"error": code, "detail": detail, **extra}
    if field:
        body["field"] = field
    return _json(body, status)


def _key_ok(request: HttpRequest) -> bool:
    expected = stub_setting("COREBANK_STUB_API_KEY", "")
    given = request.headers.get("X-Api-Key", "")
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _admin_ok(request: HttpRequest) -> bool:
    """The stub's admin key (never the API key: a caller of the API cannot flip faults or read
    the customers' codes)."""
    expected = stub_setting("COREBANK_STUB_ADMIN_KEY", "")
    given = request.headers.get("X-Admin-Key", "")
    return (
        bool(expected)
        and expected != stub_setting("COREBANK_STUB_API_KEY", "")
        and hmac.compare_digest(given.encode(), expected.encode())
    )


def _forbidden() -> JsonResponse:
    return _error(
        403,
        "forbidden",
        "a developer endpoint of the stub: it needs the stub's admin key in X-Admin-Key "
        "(COREBANK_STUB_ADMIN_KEY); the API key does not open it",
        en="This developer endpoint needs the core-banking stub's admin key.",
        zh="该开发者接口需要核心系统模拟服务的管理密钥。",
    )


class _TooLarge(Exception):
    pass


def _json_body(request: HttpRequest) -> object:
    try:
        raw = request.body
    except RequestDataTooBig as exc:
        raise _TooLarge from exc
    if len(raw) > MAX_BODY_BYTES:
        raise _TooLarge
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise services.BadRequest("the body is not JSON") from exc


def _object(request: HttpRequest) -> dict:
    data = _json_body(request)
    if not isinstance(data, dict):
        raise services.BadRequest("the body must be a JSON object")
    return data


def _served(handler: Callable[[HttpRequest], JsonResponse], request: HttpRequest) -> JsonResponse:
    """Key, faults (outage, latency, injected errors), then the handler; errors as JSON."""
    if not _key_ok(request):
        return _error(401, "unauthorized", "missing or wrong X-Api-Key")
    state = services.stub_state()
    if state.outage:
        return _error(503, "outage", "the core banking system is out of service")
    services.stub_delay(state=state)
    if services.stub_error_injected(state=state):
        return _error(500, "internal", "injected error (COREBANK_STUB_ERROR_RATE)")
    try:
        return handler(request)
    except _TooLarge:
        return _error(413, "too_large", "the body is larger than the service accepts")
    except services.Refused as exc:
        return _error(exc.status, exc.code, exc.detail, en=exc.en, zh=exc.zh)
    except StubError as exc:
        return _error(exc.status, exc.code, exc.detail, exc.field)


@csrf_exempt
@require_POST
def customer_lookup(request: HttpRequest) -> JsonResponse:
    def handle(request: HttpRequest) -> JsonResponse:
        data = _object(request)
        return _json(services.customer_lookup(id_number=data.get("id_number")))

    return _served(handle, request)


@csrf_exempt
@require_POST
def pin_challenge(request: HttpRequest) -> JsonResponse:
    def handle(request: HttpRequest) -> JsonResponse:
        data = _object(request)
        unknown = sorted(set(data) - {"customer_ref", "purpose", "method"})
        if unknown:
            raise services.BadRequest(f"unknown field(s): {', '.join(unknown)}")
        answer = services.pin_challenge_create(
            customer_ref=data.get("customer_ref"),
            purpose=data.get("purpose"),
            method=data.get("method"),
        )
        return _json(answer, 201)

    return _served(handle, request)


@csrf_exempt
@require_POST
def pin_verify(request: HttpRequest) -> JsonResponse:
    def handle(request: HttpRequest) -> JsonResponse:
        data = _object(request)
        return _json(
            services.pin_verify(
                challenge_id=data.get("challenge_id"), ciphertext_b64=data.get("ciphertext_b64")
            )
        )

    return _served(handle, request)


@csrf_exempt
@require_POST
def operation(request: HttpRequest, operation: str) -> JsonResponse:
    # Arrival, before any latency: tests read the order of arrivals and answers in the log.
    log.info("core-bank stub: %s received", operation[:40])

    def handle(request: HttpRequest) -> JsonResponse:
        call = services.operation_parse(operation, _json_body(request))
        answer = services.operation_execute(call=call)
        if not answer["replayed"] and services.stub_answer_lose():
            # Committed, and the reply "lost on the network": only the key makes a retry safe.
            return _error(504, "answer_lost", "the answer was lost on the way (lose_answers)")
        return _json(answer, 200 if answer["status"] == "done" else 422)

    return _served(handle, request)


CONTROL_FIELDS = {"outage", "latency_ms", "jitter_ms", "error_rate", "lose_answers"}


@csrf_exempt
@require_http_methods(["GET", "POST"])
def control(request: HttpRequest) -> JsonResponse:
    if not _admin_ok(request):
        return _forbidden()
    if request.method == "POST":
        try:
            data = _object(request)
            if data.get("reset"):
                services.stub_control_reset()
            else:
                unknown = sorted(set(data) - CONTROL_FIELDS)
                if unknown:
                    raise services.BadRequest(f"unknown field(s): {', '.join(unknown)}")
                services.stub_control_set(**data)
        except _TooLarge:
            return _error(413, "too_large", "the body is too large")
        except StubError as exc:
            return _error(exc.status, exc.code, exc.detail, exc.field)
    return _json(services.stub_state().as_dict())


@require_GET
def dev_otp(request: HttpRequest) -> JsonResponse:
    if not _admin_ok(request):
        return _forbidden()
    code = services.stub_last_otp(request.GET.get("customer_ref", ""))
    if code is None:
        return _error(404, "no_code", "no code was sent to this customer")
    return _json({"code": code})


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return _json({"service": "core-bank-stub", "api": "v1"})
