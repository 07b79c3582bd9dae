"""How we reach the bank's core system: a small interface and its HTTP backend.

A request the core does not answer (refused, timed out, 5xx, an answer lost, a wrong key or
URL) raises ``CoreBankUnavailable``: the caller may retry (operations always with the same
idempotency key). Everything the core does answer comes back as data: a customer or None, a
challenge, a PIN verdict, an ``OperationAnswer`` (done, or rejected with the core's words).
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Protocol

from django.utils.module_loading import import_string

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


class HttpCoreBankBackend:
    """JSON over HTTP to ``COREBANK_URL`` (e.g. ``http://127.0.0.1:8030/v1``)."""

    def __init__(
        self,
        *,
        url: str | None = None,
        api_key: str | None = None,
        timeout: float | None = None,
    ):
        # No fallback: an unset URL or key is a configuration error, not the embedded stub (the
        # embedded profile sets its own; production refuses to start without them).
        url = (url or corebank_setting("COREBANK_URL", "")).rstrip("/")
        if not url:
            raise ValueError("COREBANK_URL is not set")
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"COREBANK_URL: {url!r} is not an http(s) URL")
        self.url = url
        self.api_key = api_key or corebank_setting("COREBANK_API_KEY", "")
        self.timeout_s = float(timeout if timeout is not None else timeout_s())
        # An internal service: never through an environment proxy.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # --- transport ---------------------------------------------------------------------------
    def _post(self, path: str, body: dict) -> tuple[int, dict]:
        """(HTTP status, JSON body) of an answer; CoreBankUnavailable when there is none."""
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            f"{self.url}{path}",
            data=json.dumps(body, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json", "X-Api-Key": self.api_key},
            method="POST",
        )
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read() or b""
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError | socket.timeout):
                raise CoreBankUnavailable(f"no answer within {self.timeout_s:g} s") from exc
            if isinstance(reason, ConnectionRefusedError):
                raise CoreBankUnavailable("connection refused") from exc
            raise CoreBankUnavailable(f"cannot connect ({reason})") from exc
        except TimeoutError as exc:  # the answer started but did not finish in time
            raise CoreBankUnavailable(f"no answer within {self.timeout_s:g} s") from exc
        except (http.client.HTTPException, ConnectionError, OSError) as exc:
            raise CoreBankUnavailable(f"connection dropped ({type(exc).__name__})") from exc
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = None
        if not isinstance(data, dict):
            # Not the core's JSON: a proxy's error page, a wrong URL.
            raise CoreBankUnavailable(f"HTTP {status}: an answer that is not the core's JSON")
        if status >= 500 or status in (401, 403):
            if status in (401, 403):
                log.error("core bank: HTTP %s %s (check COREBANK_API_KEY)", status, path)
            raise CoreBankUnavailable(f"HTTP {status} {data.get('error', '')}".strip())
        return status, data

    @staticmethod
    def _refusal(data: dict, what: str) -> CoreBankError:
        code = str(data.get("error") or "rejected")
        en = str(data.get("en") or f"The core bank refused the {what}: {data.get('detail', '')}")
        zh = str(data.get("zh") or f"核心系统拒绝了本次请求：{data.get('detail', '')}")
        return CoreBankError(en[:300], detail_zh=zh[:300], code=code)

    # --- API ---------------------------------------------------------------------------------
    def customer_lookup(self, *, id_number: str) -> dict | None:
        status, data = self._post("/customers/lookup", {"id_number": id_number})
        if status == 404 and data.get("error") == "customer_not_found":
            return None
        if status != 200:
            raise self._refusal(data, "lookup")
        return data

    def pin_challenge(self, *, customer_ref: str, purpose: str, method: str | None) -> dict:
        body = {"customer_ref": customer_ref, "purpose": purpose}
        if method:
            body["method"] = method
        status, data = self._post("/pin/challenges", body)
        if status != 201:
            raise self._refusal(data, "PIN request")
        return data

    def pin_verify(self, *, challenge_id: str, ciphertext_b64: str) -> dict:
        status, data = self._post(
            "/pin/verify", {"challenge_id": challenge_id, "ciphertext_b64": ciphertext_b64}
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
        status, data = self._post(f"/operations/{urllib.parse.quote(operation)}", body)
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
