"""Pictures another app keeps sealed with a call's recording key: the QA console lists and opens
them beside the recording, and an export writes them with it.

Today that is kyc's identity evidence (card sides, portrait, sampled face and liveness frames).
kyc sits above recordings (it seals with the recording's key: docs/architecture.md), so
recordings never imports it: kyc hands its keeper over in its ``AppConfig.ready()``
(kyc/apps.py). Without one (kyc not installed) a recording simply has no pictures.

An item is whatever the keeper lists; the QA console reads ``id``, ``kind``, ``source``,
``offset_ms``, ``captured_at``, ``sha256`` (of the JPEG), ``meta`` and ``identity_check_id``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol


class _Listed(Protocol):
    def __call__(self, *, call_id: uuid.UUID) -> Iterable[Any]: ...


class _Found(Protocol):
    def __call__(self, *, call_id: uuid.UUID, evidence_id: uuid.UUID) -> Any | None: ...


class _Opened(Protocol):
    def __call__(self, *, evidence: Any) -> bytes: ...


@dataclass(frozen=True)
class EvidenceKeeper:
    listed: _Listed  # the call's pictures, oldest first
    found: _Found  # one of them, or None
    opened: _Opened  # its JPEG (the caller checks it against ``sha256``)


_keeper: EvidenceKeeper | None = None


def keeper_set(keeper: EvidenceKeeper) -> None:
    global _keeper
    _keeper = keeper


def evidence_for_call(call_id: uuid.UUID) -> list[Any]:
    return list(_keeper.listed(call_id=call_id)) if _keeper is not None else []


def evidence_get(call_id: uuid.UUID, evidence_id: uuid.UUID) -> Any | None:
    if _keeper is None:
        return None
    return _keeper.found(call_id=call_id, evidence_id=evidence_id)


def evidence_open(item: Any) -> bytes:
    if _keeper is None:
        raise LookupError("no app keeps pictures with recordings")
    return _keeper.opened(evidence=item)
