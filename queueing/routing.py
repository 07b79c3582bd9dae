"""The routing policy: which waiting call goes to which free teller. Pure, clock-free code.

Services load the queue into these plain structures, ask for decisions and apply them under a
lock; the day simulator (``simulate_day``) runs the very same functions on a virtual clock.

Rules:
- A teller is *eligible* for a call when the teller serves the call's channel and language and
  meets every skill requirement of the business at the call's current relaxation step.
- Relaxation steps are data per business: after N seconds of waiting accept ``lower`` levels,
  ``any`` level of the skill, or members of a teller ``group`` whatever their skills. A step that
  nobody logged in could satisfy is skipped at once instead of being waited out.
- Among eligible free tellers the closest skill match wins (least surplus level), then the
  longest idle.
- Calls are served by priority class (VIP, elderly/accessibility, normal), then calls put back at
  the head (teller dropped), then by how long they have waited.
- A call that prefers a teller (callback, "continue with the same teller") waits for that teller
  alone until its preference expires.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

STEP_LOWER = "lower"  # accept `value` levels below the minimum
STEP_ANY = "any"  # any level of the required skills
STEP_GROUP = "group"  # members of teller group `value`, whatever their skills


@dataclass(frozen=True)
class Step:
    after_s: float
    kind: str
    value: str | int = 0


@dataclass(frozen=True)
class Requirement:
    skill: str
    min_level: int


@dataclass(frozen=True)
class Policy:
    """How one business is routed."""

    requirements: tuple[Requirement, ...]
    steps: tuple[Step, ...] = ()


@dataclass
class TellerState:
    id: int
    skills: dict[str, int]
    languages: frozenset[str]
    channels: frozenset[str]
    groups: frozenset[str] = frozenset()
    idle_since: float = 0.0  # clock seconds; smaller = idle longer


@dataclass
class CallState:
    id: object
    business: str
    enqueued_at: float  # clock seconds; waiting time counts from here
    language: str = "zh"
    channel: str = "web"
    priority: int = 0  # higher first: 2 VIP, 1 elderly/accessibility, 0 normal
    head: bool = False  # put back at the head after a teller dropped
    preferred_teller: int | None = None
    preferred_until: float = 0.0
    excluded: frozenset[int] = frozenset()  # tellers who just declined or missed this call
    order: tuple = field(init=False)

    def __post_init__(self) -> None:
        self.order = (-self.priority, not self.head, self.enqueued_at, str(self.id))


@lru_cache(maxsize=4096)
def _relaxation(policy: Policy, level: int) -> tuple[int, bool, frozenset[str]]:
    """(levels below minimum accepted, any level accepted, groups accepted) at step ``level``."""
    lower, any_level, groups = 0, False, set()
    for step in policy.steps[: level + 1]:
        if step.kind == STEP_LOWER:
            lower = max(lower, int(step.value))
        elif step.kind == STEP_ANY:
            any_level = True
        elif step.kind == STEP_GROUP:
            groups.add(str(step.value))
    return lower, any_level, frozenset(groups)


def _meets(policy: Policy, teller: TellerState, level: int) -> int | None:
    """Skill surplus of ``teller`` under relaxation ``level`` (index into steps, -1 = none);
    None when the teller does not qualify."""
    lower, any_level, groups = _relaxation(policy, level)
    surplus = 0
    for req in policy.requirements:
        have = teller.skills.get(req.skill)
        if have is None:
            break
        need = 1 if any_level else max(1, req.min_level - lower)
        if have < need:
            break
        surplus += have - req.min_level
    else:
        return max(surplus, 0)
    if groups and groups & teller.groups:
        return 100  # a generalist takes it, but any skilled match is closer
    return None


def _serves(call: CallState, teller: TellerState) -> bool:
    return call.channel in teller.channels and call.language in teller.languages


def time_step(policy: Policy, waited_s: float) -> int:
    """Index of the last step whose time has come (-1: none yet)."""
    level = -1
    for i, step in enumerate(policy.steps):
        if waited_s >= step.after_s:
            level = i
    return level


def effective_step(
    policy: Policy, call: CallState, waited_s: float, logged_in: Sequence[TellerState]
) -> int:
    """The time-based step, moved on past steps that no logged-in teller could satisfy."""
    level = time_step(policy, waited_s)
    last = len(policy.steps) - 1
    while level < last:
        if any(_serves(call, t) and _meets(policy, t, level) is not None for t in logged_in):
            return level
        level += 1
    return level


def next_step_at(policy: Policy, call: CallState, now: float) -> float | None:
    """Clock time at which the call's next relaxation step fires (None: no more steps)."""
    waited = now - call.enqueued_at
    for step in policy.steps:
        if step.after_s > waited:
            return call.enqueued_at + step.after_s
    return None


_UNKNOWN = object()


@dataclass
class Router:
    """Decisions over one snapshot of the queue. ``logged_in`` are all tellers not offline (for
    skipping impossible steps); the ``free`` ones passed to :meth:`assign` can take an offer now.
    """

    policies: dict[str, Policy]
    logged_in: Sequence[TellerState]
    now: float
    _levels: dict = field(default_factory=dict, init=False, repr=False)
    _fits: dict = field(default_factory=dict, init=False, repr=False)

    def score(self, call: CallState, teller: TellerState, level: int) -> tuple | None:
        if call.preferred_teller is not None and self.now < call.preferred_until:
            if teller.id != call.preferred_teller:
                return None
        if teller.id in call.excluded:
            return None
        # Calls alike in business, step, language and channel fit a teller alike.
        key = (call.business, level, call.language, call.channel, teller.id)
        surplus = self._fits.get(key, _UNKNOWN)
        if surplus is _UNKNOWN:
            surplus = (
                _meets(self.policies[call.business], teller, level)
                if _serves(call, teller)
                else None
            )
            self._fits[key] = surplus
        if surplus is None:
            return None
        return (surplus, teller.idle_since, teller.id)

    def level(self, call: CallState) -> int:
        """The call's effective relaxation step; shared by calls alike in what decides it."""
        policy = self.policies[call.business]
        step = time_step(policy, self.now - call.enqueued_at)
        key = (call.business, step, call.language, call.channel)
        level = self._levels.get(key)
        if level is None:
            level = effective_step(policy, call, self.now - call.enqueued_at, self.logged_in)
            self._levels[key] = level
        return level

    def best_teller(self, call: CallState, free: Iterable[TellerState]) -> TellerState | None:
        level = self.level(call)
        best, best_score = None, None
        for teller in free:
            score = self.score(call, teller, level)
            if score is not None and (best_score is None or score < best_score):
                best, best_score = teller, score
        return best

    def assign(
        self, waiting: Sequence[CallState], free: Sequence[TellerState]
    ) -> list[tuple[CallState, TellerState]]:
        """Offers to make now: ``waiting`` (already in service order, see ``CallState.order``)
        each to its best free teller."""
        pairs: list[tuple[CallState, TellerState]] = []
        available = list(free)
        for call in waiting:
            if not available:
                break
            teller = self.best_teller(call, available)
            if teller is not None:
                pairs.append((call, teller))
                available.remove(teller)
        return pairs


def service_order(calls: Iterable[CallState]) -> list[CallState]:
    return sorted(calls, key=lambda c: c.order)
