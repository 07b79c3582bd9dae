"""Idempotent answers: a stub answers a request id (an idempotency key) once, records the answer,
and gives the recorded answer (``replayed: true``) to every repeat — also when two repeats arrive
at the same moment from two processes; the same id for another question is refused.

A record has the id (unique), the ``fingerprint`` of what was asked, the ``answer`` and a
``replays`` count (``IdempotencyRecord``). Injected errors and outages are not answers and are
never recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import IntegrityError, models, transaction

from .answers import Conflict

log = logging.getLogger(__name__)


class IdempotencyRecord(models.Model):
    """The fields every stub's answer record has (each adds its own id field and details)."""

    # SHA-256 of what was asked, so an id reused for another question is refused.
    fingerprint = models.CharField(max_length=64)
    answer = models.JSONField()
    replays = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True


class AnswerRecords:
    def __init__(self, model: type[IdempotencyRecord], *, label: str, noun: str):
        """``model``: the stub's record (its one unique field other than the primary key is the
        request id); ``label`` and ``noun`` name the stub and the id in its log ("national
        stub: request R-1 replayed -> pass")."""
        # A concrete subclass of IdempotencyRecord (the abstract class has no manager).
        self.model: Any = model
        self.key_field = next(f.name for f in model._meta.fields if f.unique and not f.primary_key)
        self.label = label
        self.noun = noun

    def replay(self, key: str, fingerprint: str) -> dict[str, Any] | None:
        """The recorded answer to ``key`` (counted as a replay), or None if there is none;
        Conflict (409, ``<id field>_reused``) when ``key`` was used for another question."""
        with transaction.atomic():
            recorded = (
                self.model.objects.select_for_update().filter(**{self.key_field: key}).first()
            )
            if recorded is None:
                return None
            if recorded.fingerprint != fingerprint:
                raise Conflict(
                    f"{self.key_field} {key} was already used for a different request",
                    code=f"{self.key_field}_reused",
                )
            recorded.replays += 1
            recorded.save(update_fields=["replays"])
        answer = recorded.answer
        outcome = answer.get("status") or answer.get("result")
        log.info("%s: %s %s replayed -> %s", self.label, self.noun, key, outcome)
        return {**answer, "replayed": True}

    def answer_once(
        self, key: str, fingerprint: str, answer: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        """The recorded answer to ``key``, else ``answer()`` — which records itself (its record
        created in its own transaction, with its effects). When the same key was recorded
        meanwhile elsewhere (the unique id refused ours), that first answer stands."""
        recorded = self.replay(key, fingerprint)
        if recorded is not None:
            return recorded
        try:
            fresh = answer()
        except IntegrityError:
            recorded = self.replay(key, fingerprint)
            if recorded is not None:
                return recorded
            raise
        return {**fresh, "replayed": False}
