"""How we reach the national online ID check: a small interface and its HTTP backend.

The backend asks one channel at a time; the service layer decides the order and the failover.
A channel that does not answer (refused, timed out, 5xx, a bad key) raises ``ChannelFailure``;
an answer the service gives about our query itself (malformed, a portrait without a face)
raises ``QueryRejected`` — trying another channel would not change it.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from videobank.outside.errors import OutsideService, OutsideUnavailable
from videobank.outside.http import Answer, OutsideClient, url_checked

log = logging.getLogger(__name__)

ANSWERS = {"pass", "not_found", "mismatch", "revoked"}


@dataclass(frozen=True)
class NationalIdQuery:
    request_id: str
    name: str
    id_number: str
    portrait_jpeg: bytes | None = None


@dataclass(frozen=True)
class NationalIdAnswer:
    result: str  # pass | not_found | mismatch | revoked
    mismatch_on: str | None = None  # name | portrait
    similarity: float | None = None
    replayed: bool = False


class ChannelFailure(Exception):
    """The channel gave no answer; the words name the reason, never the person."""


class QueryRejected(Exception):
    """The service refused the query (HTTP 4xx about its content)."""

    def __init__(self, detail: str, *, code: str = "rejected"):
        super().__init__(detail)
        self.detail = detail
        self.code = code


class NationalIdBackend(Protocol):
    channels: list[str]  # names, in the order to try them

    def verify(self, *, channel: str, query: NationalIdQuery) -> NationalIdAnswer: ...


def channel_names(count: int) -> list[str]:
    named = ["primary", "secondary"]
    return [named[i] if i < len(named) else f"channel-{i + 1}" for i in range(count)]


class HttpNationalIdBackend:
    """JSON over HTTP to base URLs ``settings.KYC_NATIONAL_CHANNELS`` (first is primary), each
    channel a service of the outside kit (``videobank.outside.http``) with its own breaker: a
    dead primary is skipped at once while its circuit is open, and the check fails over."""

    def __init__(
        self,
        *,
        urls: list[str] | None = None,
        api_key: str | None = None,
        timeout_s: float | None = None,
    ):
        # No fallback: an unset setting is a configuration error, not the embedded stub's URL
        # (the embedded profile sets its own; production refuses to start without it).
        urls = list(urls or getattr(settings, "KYC_NATIONAL_CHANNELS", None) or [])
        if not urls:
            raise ValueError("KYC_NATIONAL_CHANNELS is not set")
        urls = [url_checked(url, setting="KYC_NATIONAL_CHANNELS") for url in urls]
        api_key = str(api_key or getattr(settings, "KYC_NATIONAL_API_KEY", "") or "")
        self.clients = {
            channel: OutsideClient.from_settings(
                service=OutsideService(
                    name=f"national-id/{channel}",
                    en="the national ID service",
                    zh="公民身份核查服务",
                ),
                prefix="KYC_NATIONAL",
                base_url=url,
                headers={"X-Api-Key": api_key},
                timeout_s=timeout_s,
                default_timeout_s=2.0,
            )
            for channel, url in zip(channel_names(len(urls)), urls, strict=True)
        }
        self.channels = list(self.clients)
        self.timeout_s = next(iter(self.clients.values())).timeout_s

    def verify(self, *, channel: str, query: NationalIdQuery) -> NationalIdAnswer:
        body = {"request_id": query.request_id, "name": query.name, "id_number": query.id_number}
        if query.portrait_jpeg is not None:
            body["portrait_jpeg_b64"] = base64.b64encode(query.portrait_jpeg).decode()
        try:
            # The request id makes a repeat the same question: safe to send again.
            answer = self.clients[channel].post("/verify", json=body, idempotent=True)
        except OutsideUnavailable as exc:
            raise ChannelFailure(exc.reason) from exc
        if answer.status != 200:
            raise self._refusal(channel, answer)
        data = answer.data
        if not isinstance(data, dict) or "result" not in data:
            raise ChannelFailure("an answer that is not the service's JSON")
        result = data["result"]
        if result not in ANSWERS:
            raise ChannelFailure(f"an unknown result {str(result)[:20]!r}")
        similarity = data.get("similarity")
        return NationalIdAnswer(
            result=result,
            mismatch_on=data.get("mismatch_on") or None,
            similarity=float(similarity) if isinstance(similarity, int | float) else None,
            replayed=bool(data.get("replayed")),
        )

    def _refusal(self, channel: str, answer: Answer) -> Exception:
        data = answer.data if isinstance(answer.data, dict) else {}
        detail = str(data.get("detail") or answer.reason)[:200]
        code = str(data.get("error") or "")
        if answer.status in (400, 409, 413, 422):
            return QueryRejected(detail, code=code or "rejected")
        if answer.status in (401, 403, 404):
            # Our configuration is wrong (key, URL): the other channel may still be right.
            log.error("national ID channel %s: HTTP %s %s", channel, answer.status, detail)
        return ChannelFailure(f"HTTP {answer.status} {code}".strip())


def national_backend() -> NationalIdBackend:
    path = getattr(settings, "KYC_NATIONAL_BACKEND", "kyc.national.backends.HttpNationalIdBackend")
    return import_string(path)()
