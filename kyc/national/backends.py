"""How we reach the national online ID check: a small interface and its HTTP backend.

The backend asks one channel at a time; the service layer decides the order and the failover.
A channel that does not answer (refused, timed out, 5xx, a bad key) raises ``ChannelFailure``;
an answer the service gives about our query itself (malformed, a portrait without a face)
raises ``QueryRejected`` — trying another channel would not change it.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

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
    """JSON over HTTP to base URLs ``settings.KYC_NATIONAL_CHANNELS`` (first is primary)."""

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
        for url in urls:
            if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
                raise ValueError(f"KYC_NATIONAL_CHANNELS: {url!r} is not an http(s) URL")
        self.urls = dict(zip(channel_names(len(urls)), (u.rstrip("/") for u in urls), strict=True))
        self.channels = list(self.urls)
        self.api_key = api_key or getattr(settings, "KYC_NATIONAL_API_KEY", "")
        self.timeout_s = float(
            timeout_s if timeout_s is not None else getattr(settings, "KYC_NATIONAL_TIMEOUT_S", 2.0)
        )
        # An internal service: never through an environment proxy.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def verify(self, *, channel: str, query: NationalIdQuery) -> NationalIdAnswer:
        body = {"request_id": query.request_id, "name": query.name, "id_number": query.id_number}
        if query.portrait_jpeg is not None:
            body["portrait_jpeg_b64"] = base64.b64encode(query.portrait_jpeg).decode()
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            f"{self.urls[channel]}/verify",
            data=json.dumps(body, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json", "X-Api-Key": self.api_key},
            method="POST",
        )
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise self._http_error(channel, exc) from exc
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, TimeoutError | socket.timeout):
                raise ChannelFailure(f"no answer within {self.timeout_s:g} s") from exc
            if isinstance(reason, ConnectionRefusedError):
                raise ChannelFailure("connection refused") from exc
            raise ChannelFailure(f"cannot connect ({reason})") from exc
        except TimeoutError as exc:  # the answer started but did not finish in time
            raise ChannelFailure(f"no answer within {self.timeout_s:g} s") from exc
        except (http.client.HTTPException, ConnectionError, OSError) as exc:
            raise ChannelFailure(f"connection dropped ({type(exc).__name__})") from exc
        try:
            data = json.loads(raw)
            result = data["result"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ChannelFailure("an answer that is not the service's JSON") from exc
        if result not in ANSWERS:
            raise ChannelFailure(f"an unknown result {str(result)[:20]!r}")
        similarity = data.get("similarity")
        return NationalIdAnswer(
            result=result,
            mismatch_on=data.get("mismatch_on") or None,
            similarity=float(similarity) if isinstance(similarity, int | float) else None,
            replayed=bool(data.get("replayed")),
        )

    def _http_error(self, channel: str, exc: urllib.error.HTTPError) -> Exception:
        try:
            data = json.loads(exc.read() or b"{}")
        except (ValueError, OSError):
            data = {}
        detail = str(data.get("detail") or exc.reason)[:200] if isinstance(data, dict) else ""
        code = str(data.get("error") or "") if isinstance(data, dict) else ""
        if exc.code in (400, 409, 413, 422):
            return QueryRejected(detail, code=code or "rejected")
        if exc.code in (401, 403, 404):
            # Our configuration is wrong (key, URL): the other channel may still be right.
            log.error("national ID channel %s: HTTP %s %s", channel, exc.code, detail)
        return ChannelFailure(f"HTTP {exc.code} {code}".strip())


def national_backend() -> NationalIdBackend:
    path = getattr(settings, "KYC_NATIONAL_BACKEND", "kyc.national.backends.HttpNationalIdBackend")
    return import_string(path)()
