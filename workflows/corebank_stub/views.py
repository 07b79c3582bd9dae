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

import logging
from collections.abc import Callable

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from videobank.outside.stubs.answers import (
    BadRequest,
    error_answer,
    json_answer,
    json_body,
    json_object,
)

from . import services

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


def _object(request: HttpRequest) -> dict:
    return json_object(request, max_bytes=MAX_BODY_BYTES)


def _served(handler: Callable[[HttpRequest], JsonResponse], request: HttpRequest) -> JsonResponse:
    """Key, faults (outage, latency, injected errors), then the handler; errors as JSON."""
    return services.FAULTS.served(
        request,
        key="default",
        outage_detail="the core banking system is out of service",
        handler=lambda: handler(request),
    )


@csrf_exempt
@require_POST
def customer_lookup(request: HttpRequest) -> JsonResponse:
    def handle(request: HttpRequest) -> JsonResponse:
        data = _object(request)
        return json_answer(services.customer_lookup(id_number=data.get("id_number")))

    return _served(handle, request)


@csrf_exempt
@require_POST
def pin_challenge(request: HttpRequest) -> JsonResponse:
    def handle(request: HttpRequest) -> JsonResponse:
        data = _object(request)
        unknown = sorted(set(data) - {"customer_ref", "purpose", "method"})
        if unknown:
            raise BadRequest(f"unknown field(s): {', '.join(unknown)}")
        answer = services.pin_challenge_create(
            customer_ref=data.get("customer_ref"),
            purpose=data.get("purpose"),
            method=data.get("method"),
        )
        return json_answer(answer, 201)

    return _served(handle, request)


@csrf_exempt
@require_POST
def pin_verify(request: HttpRequest) -> JsonResponse:
    def handle(request: HttpRequest) -> JsonResponse:
        data = _object(request)
        return json_answer(
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
        call = services.operation_parse(operation, json_body(request, max_bytes=MAX_BODY_BYTES))
        answer = services.operation_execute(call=call)
        if not answer["replayed"] and services.stub_answer_lose():
            # Committed, and the reply "lost on the network": only the key makes a retry safe.
            return error_answer(504, "answer_lost", "the answer was lost on the way (lose_answers)")
        return json_answer(answer, 200 if answer["status"] == "done" else 422)

    return _served(handle, request)


control = services.FAULTS.control_view()


@require_GET
def dev_otp(request: HttpRequest) -> JsonResponse:
    if not services.KEYS.admin_ok(request):
        return services.KEYS.forbidden()
    code = services.stub_last_otp(request.GET.get("customer_ref", ""))
    if code is None:
        return error_answer(404, "no_code", "no code was sent to this customer")
    return json_answer({"code": code})


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return json_answer({"service": "core-bank-stub", "api": "v1"})
