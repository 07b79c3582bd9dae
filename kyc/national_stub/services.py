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
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from kyc.errors import BadImage, FaceProblem
from kyc.idcard.numbers import id_number_checksum_ok, id_number_well_formed
from kyc.images import image_array, image_load
from kyc.national.masking import id_number_mask, name_mask
from videobank.outside.stubs.answers import BadRequest, Unprocessable
from videobank.outside.stubs.faults import FaultControls, FaultState
from videobank.outside.stubs.keys import StubKeys
from videobank.outside.stubs.records import AnswerRecords

from . import portraits
from .models import Citizen, CitizenStatus, StubChannelControl, StubRequest

log = logging.getLogger(__name__)

CHANNELS = ("primary", "secondary")
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
QUERY_FIELDS = {"request_id", "name", "id_number", "portrait_jpeg_b64"}
MAX_NAME_CHARS = 50


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
    defaults: dict[str, Any] = {"name": name, "status": status}
    if encoding is not None:
        defaults["portrait_encoding"] = encoding
    citizen, _ = Citizen.objects.update_or_create(id_number=id_number, defaults=defaults)
    return citizen


# The key its callers present (X-Api-Key) and its developer endpoints' admin key.
KEYS = StubKeys(
    api_setting="NATIONAL_STUB_API_KEY",
    admin_setting="NATIONAL_STUB_ADMIN_KEY",
    en="the national ID stub",
    zh="身份核查模拟服务",
)


# --- fault controls ----------------------------------------------------------------------------
def stub_channels() -> tuple[str, ...]:
    return tuple(getattr(settings, "NATIONAL_STUB_CHANNELS", CHANNELS))


FAULTS = FaultControls(
    model=StubChannelControl,
    key_field="channel",
    keys=stub_channels,
    setting_prefix="NATIONAL_STUB_",
    defaults=(300, 100, 0.0),
    label="national stub",
    stub_keys=KEYS,
    listed_as="channels",
)


def stub_channel_state(*, channel: str) -> FaultState:
    """The faults in force on a channel: its control row where set, else the settings."""
    return FAULTS.state(channel)


def stub_control_set(*, channel: str, **changes: Any) -> FaultState:
    """Change a channel's faults (``outage``, ``latency_ms``, ``jitter_ms``, ``error_rate``); a
    field left out keeps its value, None returns it to the settings default."""
    return FAULTS.set(channel, **changes)


def stub_control_reset() -> None:
    """Every channel back to the settings defaults, no outage."""
    FAULTS.reset()


# --- queries -----------------------------------------------------------------------------------
def query_parse(data: object) -> Query:
    """A query from a decoded JSON body; BadRequest (with the field) when anything is off."""
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = sorted(set(data) - QUERY_FIELDS)
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(unknown)}", field=unknown[0])
    request_id = data.get("request_id")
    if not isinstance(request_id, str) or not REQUEST_ID_RE.match(request_id):
        raise BadRequest(
            "request_id must be 1-64 characters of letters, digits and . _ : -",
            field="request_id",
        )
    name = data.get("name")
    if not isinstance(name, str) or not name_normalise(name):
        raise BadRequest("name is required", field="name")
    name = name_normalise(name)
    if len(name) > MAX_NAME_CHARS or any(unicodedata.category(c) == "Cc" for c in name):
        raise BadRequest("name must be at most 50 printable characters", field="name")
    id_number = data.get("id_number")
    if not isinstance(id_number, str) or not id_number_well_formed(id_number):
        raise BadRequest(
            "id_number must be 18 characters: 17 digits and a digit or X", field="id_number"
        )
    if not id_number_checksum_ok(id_number):
        raise BadRequest("id_number fails its check character (ISO 7064)", field="id_number")
    portrait_jpeg = None
    portrait = data.get("portrait_jpeg_b64")
    if portrait is not None:
        if not isinstance(portrait, str) or not portrait:
            raise BadRequest("portrait_jpeg_b64 must be base64 text", field="portrait_jpeg_b64")
        try:
            portrait_jpeg = base64.b64decode(portrait, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest(
                "portrait_jpeg_b64 is not valid base64", field="portrait_jpeg_b64"
            ) from exc
    return Query(request_id=request_id, name=name, id_number=id_number, portrait_jpeg=portrait_jpeg)


RECORDS = AnswerRecords(StubRequest, label="national stub", noun="request")


def stub_verify(*, channel: str, query: Query) -> dict[str, Any]:
    """The answer to a query: the recorded one for a known request id, else a fresh one,
    recorded. A Conflict (409) if the id was used for a different question. The same id answered
    on another channel meanwhile (the caller timed out here and failed over): the first
    recorded answer stands."""
    fingerprint = query.fingerprint()

    def answer() -> dict[str, Any]:
        fresh = _evaluate(channel=channel, query=query)
        with transaction.atomic():
            StubRequest.objects.create(
                request_id=query.request_id,
                channel=channel,
                fingerprint=fingerprint,
                id_number_masked=id_number_mask(query.id_number),
                factors=query.factors,
                answer=fresh,
            )
        log.info(
            "national stub %s: request %s id %s name %s %d-factor -> %s",
            channel,
            query.request_id,
            id_number_mask(query.id_number),
            name_mask(query.name),
            query.factors,
            fresh["result"],
        )
        return fresh

    return RECORDS.answer_once(query.request_id, fingerprint, answer)


def _evaluate(*, channel: str, query: Query) -> dict[str, Any]:
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
        raise Unprocessable(
            f"portrait: {exc.detail}", field="portrait_jpeg_b64", code="bad_portrait"
        ) from exc
    if not citizen.portrait_encoding:
        raise Unprocessable(
            "the registry holds no portrait for this person", code="no_portrait_on_file"
        )
    try:
        probe = portraits.portrait_encoding(image)
    except (BadImage, FaceProblem) as exc:
        raise Unprocessable(
            f"portrait: {exc.detail}", field="portrait_jpeg_b64", code="bad_portrait"
        ) from exc
    return portraits.portrait_distance(citizen.portrait_encoding, probe)
