from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F
from django.utils import timezone

from videobank.access import access_teller

if TYPE_CHECKING:
    from django.contrib.auth.models import User

from . import clock, routing
from .errors import Conflict
from .models import (
    Business,
    Call,
    CallStatus,
    MediaWorker,
    Offer,
    OfferStatus,
    PresenceStatus,
    StepKind,
    TellerPresence,
    TellerSkill,
)


def business_list(*, active_only: bool = True) -> list[Business]:
    qs = Business.objects.all()
    if active_only:
        qs = qs.filter(active=True)
    return list(qs)


def waiting_calls() -> list[Call]:
    """Waiting calls in service order: priority class, put-back-at-head, then waiting time."""
    return list(
        Call.objects.filter(status=CallStatus.WAITING)
        .select_related("business")
        .order_by("-priority", "-head", "enqueued_at", "id")
    )


_policies_cache: tuple[float, dict[str, routing.Policy]] | None = None
POLICY_CACHE_S = 5.0  # admin edits to skills and steps reach routing within this


def routing_policies(
    *, needed: AbstractSet[str] = frozenset(), fresh: bool = False
) -> dict[str, routing.Policy]:
    """Every business's policy, cached briefly; reloaded at once when asked ``fresh`` or when a
    business in ``needed`` is not in the cache (just added)."""
    global _policies_cache
    now = time.monotonic()
    if (
        not fresh
        and _policies_cache is not None
        and now - _policies_cache[0] < POLICY_CACHE_S
        and needed <= _policies_cache[1].keys()
    ):
        return _policies_cache[1]
    policies = _load_policies()
    _policies_cache = (now, policies)
    return policies


def _load_policies() -> dict[str, routing.Policy]:
    policies: dict[str, routing.Policy] = {}
    for business in Business.objects.prefetch_related("requirements__skill", "steps"):
        requirements = tuple(
            routing.Requirement(r.skill.key, r.min_level) for r in business.requirements.all()
        )
        steps = tuple(
            routing.Step(
                s.after_s,
                s.kind,
                int(s.value or 1) if s.kind == StepKind.LOWER else s.value,
            )
            for s in business.steps.all()
        )
        policies[business.key] = routing.Policy(requirements, steps)
    return policies


def teller_skills(teller_ids: set[int]) -> dict[int, dict[str, int]]:
    """Skill levels of these tellers, read on every decision: a level changed in the admin
    counts at once (an in-process cache could not be told by the other processes)."""
    skills: dict[int, dict[str, int]] = {teller_id: {} for teller_id in teller_ids}
    for teller_id, key, level in TellerSkill.objects.filter(teller_id__in=teller_ids).values_list(
        "teller_id", "skill__key", "level"
    ):
        skills[teller_id][key] = level
    return skills


def teller_states(
    presences: Iterable[TellerPresence], skills: dict[int, dict[str, int]]
) -> list[routing.TellerState]:
    states = []
    for presence in presences:
        teller = presence.teller
        profile = getattr(teller, "teller_profile", None)
        states.append(
            routing.TellerState(
                id=teller.pk,
                skills=skills.get(teller.pk, {}),
                languages=frozenset(profile.languages if profile else ["zh"]),
                channels=frozenset(profile.channels if profile else ["web", "app", "vtm"]),
                groups=frozenset(profile.groups if profile else []),
                idle_since=clock.seconds(presence.idle_since or presence.since),
            )
        )
    return states


@dataclass
class RoutingSnapshot:
    router: routing.Router
    waiting: list[routing.CallState]
    free: list[routing.TellerState]
    calls: dict[uuid.UUID, Call]  # the waiting calls, with their business, for offer details


def routing_snapshot(*, now: datetime) -> RoutingSnapshot:
    """Everything one routing decision weighs. It is read inside the router's lock, on the path
    of every offer (each millisecond here is one a freed teller waits): on Postgres it is one
    statement returning JSON; elsewhere (SQLite, one process) four ORM reads."""
    recent = now - timedelta(seconds=settings.QUEUE_REOFFER_AFTER_S)
    if connection.vendor == "postgresql":
        tellers, rows, excluded = _snapshot_postgres(recent)
    else:
        tellers, rows, excluded = _snapshot_orm(recent)
    logged_in = [state for state, _ in tellers]
    free = [state for state, status in tellers if status == PresenceStatus.AVAILABLE]
    waiting = [call_state(call, excluded=excluded.get(call.id, ())) for call in rows]
    policies = routing_policies(needed={call.business for call in waiting})
    router = routing.Router(policies, logged_in, clock.seconds(now))
    return RoutingSnapshot(router, waiting, free, {call.id: call for call in rows})


def call_state(call: Call, *, excluded: Iterable[int] = ()) -> routing.CallState:
    """A call as the routing policy sees it (``call.business`` loaded)."""
    return routing.CallState(
        id=call.id,
        business=call.business.key,
        enqueued_at=clock.seconds(call.enqueued_at),
        language=call.language,
        channel=call.channel,
        priority=call.priority,
        head=call.head,
        preferred_teller=call.preferred_teller_id,
        preferred_until=clock.seconds(call.preferred_until) if call.preferred_until else 0.0,
        excluded=frozenset(excluded),
    )


def routing_tellers() -> list[tuple[routing.TellerState, str]]:
    """The logged-in tellers and their presence, as the router weighs them: what an arriving
    call is routed against (no waiting call is read). One statement on Postgres."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT ({_TELLERS_JSON})::text", {"offline": PresenceStatus.OFFLINE})
            return _tellers_from_json(json.loads(cursor.fetchone()[0]))
    return _tellers_orm()


def _tellers_orm() -> list[tuple[routing.TellerState, str]]:
    presences = list(
        TellerPresence.objects.exclude(status=PresenceStatus.OFFLINE).select_related(
            "teller__teller_profile"
        )
    )
    states = teller_states(presences, teller_skills({p.teller_id for p in presences}))
    return [(state, p.status) for state, p in zip(states, presences, strict=True)]


# The tellers logged in (with their presence), the waiting calls and whom each may not be offered.
_Snapshot = tuple[list[tuple[routing.TellerState, str]], list[Call], dict[uuid.UUID, set[int]]]


def _snapshot_orm(recent: datetime) -> _Snapshot:
    tellers = _tellers_orm()
    excluded: dict[uuid.UUID, set[int]] = {}
    for call_id, teller_id in Offer.objects.filter(
        call__status=CallStatus.WAITING,
        status__in=[OfferStatus.REJECTED, OfferStatus.EXPIRED],
        responded_at__gte=recent,
    ).values_list("call_id", "teller_id"):
        excluded.setdefault(call_id, set()).add(teller_id)
    return tellers, waiting_calls(), excluded


_TELLERS_JSON = """
    SELECT coalesce(json_agg(json_build_object(
      'id', p.teller_id,
      'status', p.status,
      'idle_since', extract(epoch FROM coalesce(p.idle_since, p.since)),
      'languages', tp.languages,
      'channels', tp.channels,
      'groups', tp.groups,
      'skills', (
        SELECT coalesce(json_object_agg(s.key, ts.level), '{}'::json)
        FROM queueing_tellerskill ts JOIN queueing_skill s ON s.id = ts.skill_id
        WHERE ts.teller_id = p.teller_id)
    )), '[]'::json)
    FROM queueing_tellerpresence p
    LEFT JOIN queueing_tellerprofile tp ON tp.teller_id = p.teller_id
    WHERE p.status <> %(offline)s"""

_SNAPSHOT_SQL = """
SELECT json_build_object(
  'tellers', (_TELLERS_JSON_),
  'waiting', (
    SELECT coalesce(json_agg(json_build_object(
      'id', c.id,
      'business', b.key,
      'name_zh', b.name_zh,
      'name_en', b.name_en,
      'enqueued_at', extract(epoch FROM c.enqueued_at),
      'language', c.language,
      'channel', c.channel,
      'priority', c.priority,
      'priority_claim', c.priority_claim,
      'head', c.head,
      'preferred_teller', c.preferred_teller_id,
      'preferred_until', extract(epoch FROM c.preferred_until)
    ) ORDER BY c.priority DESC, c.head DESC, c.enqueued_at, c.id), '[]'::json)
    FROM queueing_call c JOIN queueing_business b ON b.id = c.business_id
    WHERE c.status = %(waiting)s),
  'excluded', (
    SELECT coalesce(json_agg(json_build_array(o.call_id, o.teller_id)), '[]'::json)
    FROM queueing_offer o JOIN queueing_call c ON c.id = o.call_id
    WHERE c.status = %(waiting)s AND o.status IN (%(rejected)s, %(expired)s)
      AND o.responded_at >= %(recent)s)
)::text
""".replace("_TELLERS_JSON_", _TELLERS_JSON)


_TELLERS_SQL = "SELECT (_TELLERS_JSON_)::text".replace("_TELLERS_JSON_", _TELLERS_JSON)


def _tellers_from_json(tellers: list[dict[str, Any]]) -> list[tuple[routing.TellerState, str]]:
    return [
        (
            routing.TellerState(
                id=t["id"],
                skills=t["skills"],
                languages=frozenset(t["languages"] if t["languages"] is not None else ["zh"]),
                channels=frozenset(
                    t["channels"] if t["channels"] is not None else ["web", "app", "vtm"]
                ),
                groups=frozenset(t["groups"] or []),
                idle_since=float(t["idle_since"]),
            ),
            t["status"],
        )
        for t in tellers
    ]


def _moment(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(float(epoch), tz=UTC) if epoch is not None else None


def _snapshot_postgres(recent: datetime) -> _Snapshot:
    with connection.cursor() as cursor:
        cursor.execute(
            _SNAPSHOT_SQL,
            {
                "offline": PresenceStatus.OFFLINE,
                "waiting": CallStatus.WAITING,
                "rejected": OfferStatus.REJECTED,
                "expired": OfferStatus.EXPIRED,
                "recent": recent,
            },
        )
        data = json.loads(cursor.fetchone()[0])
    tellers = _tellers_from_json(data["tellers"])
    rows = []
    for c in data["waiting"]:
        # Unsaved instances: what the routing and the offer's details read, nothing more.
        call = Call(
            id=uuid.UUID(c["id"]),
            language=c["language"],
            channel=c["channel"],
            priority=c["priority"],
            priority_claim=c["priority_claim"],
            head=c["head"],
            preferred_teller_id=c["preferred_teller"],
            preferred_until=_moment(c["preferred_until"]),
            enqueued_at=datetime.fromtimestamp(float(c["enqueued_at"]), tz=UTC),
        )
        call.business = Business(key=c["business"], name_zh=c["name_zh"], name_en=c["name_en"])
        rows.append(call)
    excluded: dict[uuid.UUID, set[int]] = {}
    for call_id, teller_id in data["excluded"]:
        excluded.setdefault(uuid.UUID(call_id), set()).add(teller_id)
    return tellers, rows, excluded


@dataclass(frozen=True)
class QueuePlace:
    call_id: uuid.UUID
    position: int  # 1 = next for its business
    waiting: int  # calls waiting for that business
    estimated_wait_s: int


_handle_cache: dict[int, tuple[float, float]] = {}
HANDLE_CACHE_S = 10.0


def handle_time_s(business_id: int) -> float:
    """Average handle time of the business's recent calls (answered → ended), cached briefly:
    it moves slowly and every queue broadcast asks for it."""
    now = time.monotonic()
    cached = _handle_cache.get(business_id)
    if cached is not None and now - cached[0] < HANDLE_CACHE_S:
        return cached[1]
    value = _handle_time_s(business_id)
    _handle_cache[business_id] = (now, value)
    return value


def _handle_time_s(business_id: int) -> float:
    recent = (
        Call.objects.filter(
            business_id=business_id, status=CallStatus.ENDED, answered_at__isnull=False
        )
        .order_by("-ended_at")
        .values_list("pk", flat=True)[:50]
    )
    duration = ExpressionWrapper(F("ended_at") - F("answered_at"), output_field=DurationField())
    figures = Call.objects.filter(pk__in=list(recent)).aggregate(d=Avg(duration))
    average: timedelta | None = figures["d"]
    return average.total_seconds() if average else float(settings.QUEUE_DEFAULT_HANDLE_S)


def queue_places() -> list[QueuePlace]:
    """Each waiting call's place among its business's waiting calls, in service order, with an
    estimated wait from recent handle times and the tellers logged in. The queue ticker's
    periodic pass (positions pushed to every waiting customer); an arrival asks ``queue_place``.
    """
    per_business: dict[int, list[uuid.UUID]] = {}
    for call_id, business_id in (
        Call.objects.filter(status=CallStatus.WAITING)
        .order_by("-priority", "-head", "enqueued_at", "id")
        .values_list("id", "business_id")
    ):
        per_business.setdefault(business_id, []).append(call_id)
    if not per_business:
        return []
    staffed = max(1, TellerPresence.objects.exclude(status=PresenceStatus.OFFLINE).count())
    places = []
    for business_id, ids in per_business.items():
        handle = handle_time_s(business_id)
        for i, call_id in enumerate(ids):
            eta = math.ceil((i + 1) * handle / staffed)
            places.append(QueuePlace(call_id, i + 1, len(ids), int(eta)))
    return places


_PLACE_SQL = """
WITH me AS (
  SELECT id, business_id, priority, head, enqueued_at FROM queueing_call
  WHERE id = %(call)s AND status = %(waiting)s)
SELECT me.business_id,
  count(*) FILTER (WHERE c.priority > me.priority
    OR (c.priority = me.priority AND c.head AND NOT me.head)
    OR (c.priority = me.priority AND c.head = me.head AND (c.enqueued_at < me.enqueued_at
      OR (c.enqueued_at = me.enqueued_at AND c.id < me.id)))),
  count(*),
  (SELECT count(*) FROM queueing_tellerpresence WHERE status <> %(offline)s)
FROM me JOIN queueing_call c ON c.business_id = me.business_id AND c.status = %(waiting)s
GROUP BY me.business_id
"""


def queue_place(*, call_id: uuid.UUID) -> QueuePlace | None:
    """One waiting call's place, as ``queue_places`` gives it, without reading the queue: one
    statement that counts, over its business's waiting calls, those served before it (service
    order: priority, put back at the head, waiting time) and all of them. What a caller is told
    on arrival and on resume."""
    with connection.cursor() as cursor:
        cursor.execute(
            _PLACE_SQL,
            {
                "call": Call._meta.pk.get_db_prep_value(call_id, connection),
                "waiting": CallStatus.WAITING,
                "offline": PresenceStatus.OFFLINE,
            },
        )
        row = cursor.fetchone()
    if row is None:
        return None
    business_id, ahead, waiting, staffed = row
    return place_of(
        call_id=call_id,
        business_id=business_id,
        position=ahead + 1,
        waiting=waiting,
        staffed=staffed,
    )


def place_of(
    *, call_id: uuid.UUID, business_id: int, position: int, waiting: int, staffed: int
) -> QueuePlace:
    """A place with its estimated wait (recent handle time, tellers logged in)."""
    eta = math.ceil(position * handle_time_s(business_id) / max(1, staffed))
    return QueuePlace(call_id, position, max(waiting, position), int(eta))


def queue_snapshot() -> dict[str, Any]:
    """What a teller console lists: the first QUEUE_SNAPSHOT_CALLS waiting calls in service
    order and the count per business, never the whole queue (its size does not grow with it)."""
    now = clock.now()
    first = (
        Call.objects.filter(status=CallStatus.WAITING)
        .select_related("business")
        .order_by("-priority", "-head", "enqueued_at", "id")[: settings.QUEUE_SNAPSHOT_CALLS]
    )
    calls = [
        {
            "call_id": str(call.id),
            "business": call.business.key,
            "business_name": {"zh": call.business.name_zh, "en": call.business.name_en},
            "channel": call.channel,
            "language": call.language,
            "priority": call.priority,
            "priority_claim": call.priority_claim,
            "waited_s": int((now - call.enqueued_at).total_seconds()),
        }
        for call in first
    ]
    counts = dict(
        Call.objects.filter(status=CallStatus.WAITING)
        .order_by()
        .values("business_id")
        .annotate(n=Count("pk"))
        .values_list("business_id", "n")
    )
    businesses = [
        {
            "business": business.key,
            "business_name": {"zh": business.name_zh, "en": business.name_en},
            "waiting": counts[business.pk],
        }
        for business in Business.objects.filter(pk__in=list(counts))
    ]
    waiting = sum(counts.values())
    return {
        "calls": calls,
        "waiting": waiting,
        "more": waiting - len(calls),
        "businesses": businesses,
    }


def call_get(*, call_id: uuid.UUID) -> Call | None:
    return Call.objects.select_related("business", "teller").filter(pk=call_id).first()


def offer_details(offer: Offer, *, now: datetime, call: Call | None = None) -> dict[str, Any]:
    """What a ringing console shows. ``call`` (with its business) saves a query when the caller
    already holds it."""
    call = call or offer.call
    assert offer.expires_at is not None  # every offer is made with its deadline
    return {
        "call_id": str(call.id),
        "business": call.business.key,
        "business_name": {"zh": call.business.name_zh, "en": call.business.name_en},
        "channel": call.channel,
        "language": call.language,
        "priority": call.priority,
        "priority_claim": call.priority_claim,
        "waited_s": int((now - call.enqueued_at).total_seconds()),
        "expires_in_s": max(0, int((offer.expires_at - now).total_seconds())),
    }


def teller_by_name(*, username: str) -> User:
    """A teller (or supervisor) by user name; refused for anyone else."""
    teller = get_user_model().objects.filter(username=username).first()
    if teller is None or not access_teller(teller):
        raise Conflict(f"No teller named {username!r}.", f"没有名为 {username!r} 的柜员。")
    return teller


def teller_console_state(*, teller: User) -> tuple[str, str, dict[str, Any], list[str]]:
    """What a teller console starts from: presence, break reason, waiting list, held calls."""
    presence = TellerPresence.objects.filter(teller=teller).first()
    held = []
    if presence and presence.current_call_id and presence.status == PresenceStatus.BUSY:
        held.append(str(presence.current_call_id))
    status = presence.status if presence else PresenceStatus.OFFLINE
    reason = presence.break_reason if presence else ""
    return status, reason, queue_snapshot(), held


# --- media workers -----------------------------------------------------------------------------


def media_worker_pick() -> MediaWorker | None:
    """The live media worker with the fewest sessions (ties: the freshest heartbeat)."""
    fresh_after = timezone.now() - timedelta(seconds=settings.MEDIA_WORKER_STALE_S)
    return (
        MediaWorker.objects.filter(heartbeat_at__gte=fresh_after)
        .order_by("active_sessions", "-heartbeat_at")
        .first()
    )


def media_worker_alive(channel_name: str) -> bool:
    if not channel_name:
        return False
    fresh_after = timezone.now() - timedelta(seconds=settings.MEDIA_WORKER_STALE_S)
    return MediaWorker.objects.filter(
        channel_name=channel_name, heartbeat_at__gte=fresh_after
    ).exists()
