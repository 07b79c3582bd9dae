"""How we reach the bank's core system: a small interface and its HTTP backend.

A request the core does not answer (refused, timed out, 5xx, an answer lost, a wrong key or
URL) raises ``CoreBankUnavailable``: the caller may retry (operations always with the same
idempotency key). Everything the core does answer comes back as data: a customer or None, a
challenge, a PIN verdict, an ``OperationAnswer`` (done, or rejected with the core's words).
"""

from __future__ import annotations

import logging
import urllib.parse
from dataclasses import dataclass, field
from typing import Protocol

from django.utils.module_loading import import_string

from videobank.outside.errors import OutsideService, OutsideUnavailable
from videobank.outside.http import OutsideClient, url_checked

from .conf import corebank_setting, timeout_s
from .errors import CoreBankError, CoreBankUnavailable, IdempotencyConflict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OperationAnswer:
    status: str  # done | rejected
    result: dict = field(default_factory=dict)
    error_code: str = ""
    en: str = ""
    zh: str = ""
    replayed: bool = False


class CoreBankBackend(Protocol):
    def customer_lookup(self, *, id_number: str) -> dict | None: ...

    def pin_challenge(self, *, customer_ref: str, purpose: str, method: str | None) -> dict: ...

    def pin_verify(self, *, challenge_id: str, ciphertext_b64: str) -> dict: ...

    def operation(
        self,
        *,
        operation: str,
        idempotency_key: str,
        customer_ref: str,
        params: dict,
        authorised_by: str = "",
    ) -> OperationAnswer: ...


CORE_BANK = OutsideService(name="core-bank", en="the core banking system", zh="核心系统")


class HttpCoreBankBackend:
    """JSON over HTTP to ``COREBANK_URL`` (e.g. ``http://127.0.0.1:8030/v1``), through the
    outside kit's client (``videobank.outside.http``: timeouts, retries, the core's breaker)."""

    def __init__(
        self,
        *,
        url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
    ):
        # No fallback: an unset URL or key is a configuration error, not the embedded stub (the
        # embedded profile sets its own; production refuses to start without them).
        self.url = url_checked(url or corebank_setting("COREBANK_URL", ""), setting="COREBANK_URL")
        self.client = OutsideClient.from_settings(
            service=CORE_BANK,
            prefix="COREBANK",
            base_url=self.url,
            headers={"X-Api-Key": api_key or corebank_setting("COREBANK_API_KEY", "")},
            timeout_s=timeout if timeout is not None else timeout_s(),
        )
        self.timeout_s = self.client.timeout_s

    # --- transport ---------------------------------------------------------------------------
    def _post(
        self, path: str, body: dict, *, idempotent: bool, idempotency_key: str | None = None
    ) -> tuple[int, dict]:
        """(HTTP status, JSON body) of an answer; CoreBankUnavailable when there is none."""
        try:
            answer = self.client.post(
                path, json=body, idempotent=idempotent, idempotency_key=idempotency_key
            )
        except OutsideUnavailable as exc:
            raise CoreBankUnavailable(exc.reason) from exc
        data = answer.data if answer.content else {}
        if not isinstance(data, dict):
            # Not the core's JSON: a proxy's error page, a wrong URL.
            raise CoreBankUnavailable(
                f"HTTP {answer.status}: an answer that is not the core's JSON"
            )
        if answer.status in (401, 403):
            log.error("core bank: HTTP %s %s (check COREBANK_API_KEY)", answer.status, path)
            raise CoreBankUnavailable(f"HTTP {answer.status} {data.get('error', '')}".strip())
        return answer.status, data

    @staticmethod
    def _refusal(data: dict, what: str) -> CoreBankError:
        code = str(data.get("error") or "rejected")
        en = str(data.get("en") or f"The core bank refused the {what}: {data.get('detail', '')}")
        zh = str(data.get("zh") or f"核心系统拒绝了本次请求：{data.get('detail', '')}")
        return CoreBankError(en[:300], detail_zh=zh[:300], code=code)

    # --- API ---------------------------------------------------------------------------------
    def customer_lookup(self, *, id_number: str) -> dict | None:
        status, data = self._post("/customers/lookup", {"id_number": id_number}, idempotent=True)
        if status == 404 and data.get("error") == "customer_not_found":
            return None
        if status != 200:
            raise self._refusal(data, "lookup")
        return data

    def pin_challenge(self, *, customer_ref: str, purpose: str, method: str | None) -> dict:
        body = {"customer_ref": customer_ref, "purpose": purpose}
        if method:
            body["method"] = method
        # Not sent twice: a second challenge would send the customer a second code.
        status, data = self._post("/pin/challenges", body, idempotent=False)
        if status != 201:
            raise self._refusal(data, "PIN request")
        return data

    def pin_verify(self, *, challenge_id: str, ciphertext_b64: str) -> dict:
        # The customer's encrypted entry is forwarded once, never replayed.
        status, data = self._post(
            "/pin/verify",
            {"challenge_id": challenge_id, "ciphertext_b64": ciphertext_b64},
            idempotent=False,
        )
        if status != 200:
            raise self._refusal(data, "PIN entry")
        return data

    def operation(
        self,
        *,
        operation: str,
        idempotency_key: str,
        customer_ref: str,
        params: dict,
        authorised_by: str = "",
    ) -> OperationAnswer:
        body = {"idempotency_key": idempotency_key, "customer_ref": customer_ref, "params": params}
        if authorised_by:
            body["authorised_by"] = authorised_by
        status, data = self._post(
            f"/operations/{urllib.parse.quote(operation)}",
            body,
            idempotent=True,
            idempotency_key=idempotency_key,
        )
        if status in (200, 422) and data.get("status") in ("done", "rejected"):
            return OperationAnswer(
                status=data["status"],
                result=data.get("result") or {},
                error_code=str(data.get("error") or ""),
                en=str(data.get("en") or ""),
                zh=str(data.get("zh") or ""),
                replayed=bool(data.get("replayed")),
            )
        if status == 409:
            raise IdempotencyConflict(
                "The core bank already has this idempotency key for another request.",
                detail_zh="核心系统中该幂等键已用于另一笔请求。",
            )
        # 400 (a malformed request), 404 (no such operation or customer): asking again would
        # get the same answer.
        detail = str(data.get("detail") or data.get("error") or f"HTTP {status}")[:200]
        return OperationAnswer(
            status="rejected",
            error_code=str(data.get("error") or "bad_request"),
            en=f"The core bank refused the request: {detail}",
            zh=f"核心系统拒绝了该请求：{detail}",
        )


def corebank_backend() -> CoreBankBackend:
    path = corebank_setting("COREBANK_BACKEND", "workflows.corebank.backends.HttpCoreBankBackend")
    return import_string(path)()
