"""The stub of the national online ID check: registry, answers, fault controls.

It behaves like the outside service our client talks to: a query is name + ID number (two
factors), optionally + a portrait (three factors); answers are pass, not_found, mismatch (name,
or portrait with a similarity score) and revoked. A request id answered once gets the same
answer again (the caller retries and fails over with the same id); injected errors and outages
are not answers and are not recorded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import random
import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from kyc.errors import BadImage, FaceProblem
from kyc.idcard.numbers import id_number_checksum_ok, id_number_well_formed
from kyc.images import image_array, image_load
from kyc.national.masking import id_number_mask, name_mask

from . import portraits
from .models import Citizen, CitizenStatus, StubChannelControl, StubRequest

log = logging.getLogger(__name__)

CHANNELS = ("primary", "secondary")
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
QUERY_FIELDS = {"request_id", "name", "id_number", "portrait_jpeg_b64"}
MAX_NAME_CHARS = 50

_rng = random.SystemRandom()


class StubError(Exception):
    """A query the stub refuses; ``status`` is the HTTP status, ``code`` a stable word."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str, *, field: str | None = None):
        super().__init__(detail)
        self.detail = detail
        self.field = field


class BadQuery(StubError):
    status = 400
    code = "bad_request"


class BadPortrait(StubError):
    status = 422
    code = "bad_portrait"


class NoPortraitOnFile(StubError):
    status = 422
    code = "no_portrait_on_file"


class RequestIdReused(StubError):
    status = 409
    code = "request_id_reused"


@dataclass(frozen=True)
class Query:
    request_id: str
    name: str
    id_number: str
    portrait_jpeg: bytes | None

    @property
    def factors(self) -> int:
        return 3 if self.portrait_jpeg is not None else 2

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for part in (self.name.encode(), self.id_number.encode(), self.portrait_jpeg or b""):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
        return digest.hexdigest()


@dataclass(frozen=True)
class ChannelState:
    channel: str
    outage: bool
    latency_ms: int
    jitter_ms: int
    error_rate: float

    def as_dict(self) -> dict:
        return {
            "outage": self.outage,
            "latency_ms": self.latency_ms,
            "jitter_ms": self.jitter_ms,
            "error_rate": self.error_rate,
        }


def name_normalise(name: str) -> str:
    """Full-width forms folded, outer spaces dropped, inner runs of spaces made one."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", name)).strip()


# --- registry ----------------------------------------------------------------------------------
def citizen_register(
    *,
    name: str,
    id_number: str,
    status: str = CitizenStatus.ACTIVE,
    portrait: np.ndarray | None = None,
    portrait_encoding: Sequence[float] | None = None,
) -> Citizen:
    """Put a person in the registry (or update them): ``portrait`` is an RGB image whose one face
    becomes the reference for three-factor queries; ``portrait_encoding`` gives it directly;
    with neither, a portrait already on file stays."""
    name = name_normalise(name)
    if not name or len(name) > MAX_NAME_CHARS:
        raise ValueError("a name of 1-50 characters is needed")
    if not id_number_checksum_ok(id_number):
        raise ValueError(f"{id_number_mask(id_number)} is not a valid 18-character ID number")
    if status not in CitizenStatus.values:
        raise ValueError(f"status must be one of {CitizenStatus.values}")
    encoding = None
    if portrait is not None:
        encoding = portraits.portrait_encoding(portrait)
    elif portrait_encoding is not None:
        encoding = [float(x) for x in portrait_encoding]
    if encoding is not None and len(encoding) != 128:
        raise ValueError("a face encoding has 128 numbers")
    defaults: dict = {"name": name, "status": status}
    if encoding is not None:
        defaults["portrait_encoding"] = encoding
    citizen, _ = Citizen.objects.update_or_create(id_number=id_number, defaults=defaults)
    return citizen


# --- fault controls ----------------------------------------------------------------------------
def stub_channels() -> tuple[str, ...]:
    return tuple(getattr(settings, "NATIONAL_STUB_CHANNELS", CHANNELS))


def stub_channel_state(*, channel: str) -> ChannelState:
    """The faults in force on a channel: its control row where set, else the settings."""
    row = StubChannelControl.objects.filter(channel=channel).first()

    def pick(field: str, default):
        value = getattr(row, field, None) if row is not None else None
        return default if value is None else value

    return ChannelState(
        channel=channel,
        outage=bool(row and row.outage),
        latency_ms=int(pick("latency_ms", getattr(settings, "NATIONAL_STUB_LATENCY_MS", 300))),
        jitter_ms=int(pick("jitter_ms", getattr(settings, "NATIONAL_STUB_JITTER_MS", 100))),
        error_rate=float(pick("error_rate", getattr(settings, "NATIONAL_STUB_ERROR_RATE", 0.0))),
    )


_UNSET = object()


def stub_control_set(
    *,
    channel: str,
    outage: bool | None = None,
    latency_ms: int | None | object = _UNSET,
    jitter_ms: int | None | object = _UNSET,
    error_rate: float | None | object = _UNSET,
) -> ChannelState:
    """Change a channel's faults; a field left out keeps its value, None returns it to the
    settings default."""
    if channel not in stub_channels():
        raise BadQuery(f"unknown channel {channel!r}; channels: {', '.join(stub_channels())}")
    changes: dict = {}
    if outage is not None:
        changes["outage"] = bool(outage)
    for field, value, valid in (
        ("latency_ms", latency_ms, lambda v: isinstance(v, int) and 0 <= v <= 60_000),
        ("jitter_ms", jitter_ms, lambda v: isinstance(v, int) and 0 <= v <= 60_000),
        ("error_rate", error_rate, lambda v: isinstance(v, int | float) and 0.0 <= v <= 1.0),
    ):
        if value is _UNSET:
            continue
        if value is not None and (isinstance(value, bool) or not valid(value)):
            limits = "0-60000" if field != "error_rate" else "0.0-1.0"
            raise BadQuery(f"{field} must be a number in {limits} or null", field=field)
        changes[field] = value
    with transaction.atomic():
        row, _ = StubChannelControl.objects.select_for_update().get_or_create(channel=channel)
        for field, value in changes.items():
            setattr(row, field, value)
        row.save()
    state = stub_channel_state(channel=channel)
    log.info("national stub control: %s %s", channel, state.as_dict())
    return state


def stub_control_reset() -> None:
    """Every channel back to the settings defaults, no outage."""
    StubChannelControl.objects.all().delete()
    log.info("national stub control: reset")


# --- queries -----------------------------------------------------------------------------------
def query_parse(data: object) -> Query:
    """A query from a decoded JSON body; BadQuery (with the field) when anything is off."""
    if not isinstance(data, dict):
        raise BadQuery("the body must be a JSON object")
    unknown = sorted(set(data) - QUERY_FIELDS)
    if unknown:
        raise BadQuery(f"unknown field(s): {', '.join(unknown)}", field=unknown[0])
    request_id = data.get("request_id")
    if not isinstance(request_id, str) or not REQUEST_ID_RE.match(request_id):
        raise BadQuery(
            "request_id must be 1-64 characters of letters, digits and . _ : -",
            field="request_id",
        )
    name = data.get("name")
    if not isinstance(name, str) or not name_normalise(name):
        raise BadQuery("name is required", field="name")
    name = name_normalise(name)
    if len(name) > MAX_NAME_CHARS or any(unicodedata.category(c) == "Cc" for c in name):
        raise BadQuery("name must be at most 50 printable characters", field="name")
    id_number = data.get("id_number")
    if not isinstance(id_number, str) or not id_number_well_formed(id_number):
        raise BadQuery(
            "id_number must be 18 characters: 17 digits and a digit or X", field="id_number"
        )
    if not id_number_checksum_ok(id_number):
        raise BadQuery("id_number fails its check character (ISO 7064)", field="id_number")
    portrait_jpeg = None
    portrait = data.get("portrait_jpeg_b64")
    if portrait is not None:
        if not isinstance(portrait, str) or not portrait:
            raise BadQuery("portrait_jpeg_b64 must be base64 text", field="portrait_jpeg_b64")
        try:
            portrait_jpeg = base64.b64decode(portrait, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadQuery(
                "portrait_jpeg_b64 is not valid base64", field="portrait_jpeg_b64"
            ) from exc
    return Query(request_id=request_id, name=name, id_number=id_number, portrait_jpeg=portrait_jpeg)


def latency_sleep(seconds: float) -> None:
    """How the stub waits to look like a distant service (tests replace it to hold a request)."""
    time.sleep(seconds)


def stub_delay(*, state: ChannelState) -> None:
    jitter = _rng.uniform(-state.jitter_ms, state.jitter_ms) if state.jitter_ms else 0.0
    latency_sleep(max(0.0, state.latency_ms + jitter) / 1000)


def stub_error_injected(*, state: ChannelState) -> bool:
    return state.error_rate > 0 and _rng.random() < state.error_rate


def stub_verify(*, channel: str, query: Query) -> dict:
    """The answer to a query: the recorded one for a known request id, else a fresh one,
    recorded. RequestIdReused if the id was used for a different question."""
    fingerprint = query.fingerprint()
    recorded = _replay(query.request_id, fingerprint)
    if recorded is not None:
        return recorded
    answer = _evaluate(channel=channel, query=query)
    try:
        with transaction.atomic():
            StubRequest.objects.create(
                request_id=query.request_id,
                channel=channel,
                fingerprint=fingerprint,
                id_number_masked=id_number_mask(query.id_number),
                factors=query.factors,
                answer=answer,
            )
    except IntegrityError:
        # The same id answered on another channel meanwhile (the caller timed out here and
        # failed over): the first recorded answer stands.
        recorded = _replay(query.request_id, fingerprint)
        if recorded is not None:
            return recorded
        raise
    log.info(
        "national stub %s: request %s id %s name %s %d-factor -> %s",
        channel,
        query.request_id,
        id_number_mask(query.id_number),
        name_mask(query.name),
        query.factors,
        answer["result"],
    )
    return {**answer, "replayed": False}


def _replay(request_id: str, fingerprint: str) -> dict | None:
    with transaction.atomic():
        recorded = StubRequest.objects.select_for_update().filter(request_id=request_id).first()
        if recorded is None:
            return None
        if recorded.fingerprint != fingerprint:
            raise RequestIdReused(f"request_id {request_id} was already used for a different query")
        recorded.replays += 1
        recorded.save(update_fields=["replays"])
    log.info("national stub: request %s replayed -> %s", request_id, recorded.answer["result"])
    return {**recorded.answer, "replayed": True}


def _evaluate(*, channel: str, query: Query) -> dict:
    citizen = Citizen.objects.filter(id_number=query.id_number).first()
    answer = {
        "request_id": query.request_id,
        "channel": channel,
        "factors": query.factors,
        "result": "pass",
        "mismatch_on": None,
        "similarity": None,
        "answered_at": timezone.now().isoformat(),
    }
    # Order matters for privacy: a wrong name learns nothing about the number's status.
    if citizen is None:
        return {**answer, "result": "not_found"}
    if citizen.name != query.name:
        return {**answer, "result": "mismatch", "mismatch_on": "name"}
    if citizen.status == CitizenStatus.REVOKED:
        return {**answer, "result": "revoked"}
    if query.portrait_jpeg is not None:
        distance = _portrait_distance(citizen, query.portrait_jpeg)
        # The score a caller sees: 1 - distance (1.0 the same picture; below about 0.5 others).
        answer["similarity"] = round(max(0.0, 1.0 - distance), 3)
        if distance > portraits.portrait_max_distance():
            return {**answer, "result": "mismatch", "mismatch_on": "portrait"}
    return answer


def _portrait_distance(citizen: Citizen, jpeg: bytes) -> float:
    try:
        image = image_array(image_load(jpeg))
    except BadImage as exc:
        raise BadPortrait(f"portrait: {exc.detail}", field="portrait_jpeg_b64") from exc
    if not citizen.portrait_encoding:
        raise NoPortraitOnFile("the registry holds no portrait for this person")
    try:
        probe = portraits.portrait_encoding(image)
    except (BadImage, FaceProblem) as exc:
        raise BadPortrait(f"portrait: {exc.detail}", field="portrait_jpeg_b64") from exc
    return portraits.portrait_distance(citizen.portrait_encoding, probe)
