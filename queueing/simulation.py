"""A day at the video bank on a virtual clock, routed by the real policy.

The simulator hands :class:`queueing.routing.Router` the same plain structures the services do, so
a what-if ("how many tellers for 80/20?") exercises the production routing rules, not a model of
them. No database, no wall clock: events sit on a heap and the clock jumps from one to the next.

Every customer (arrival time, business, priority, language, channel, service time, patience) is
drawn from one seeded generator before the day starts. Two staffing plans therefore meet the same
customers (common random numbers), and the difference between their figures is the staffing, not
the luck of the draw; that is what makes the staffing search monotone enough to bisect.

Clock: seconds since 00:00 of the simulated day (09:00 is 32400). Doors open at ``hours[0]`` and
close at ``hours[1]``; tellers whose shift runs to closing time stay until the queue is empty.
"""

from __future__ import annotations

import csv
import heapq
import itertools
import math
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from queueing.routing import (
    STEP_ANY,
    STEP_GROUP,
    STEP_LOWER,
    CallState,
    Policy,
    Requirement,
    Router,
    Step,
    TellerState,
    next_step_at,
)

# A step event fires this long after the step's time, so that ``waited >= after_s`` holds in
# floating point (enqueued_at + after_s - enqueued_at may round just below after_s).
_STEP_EPSILON_S = 1e-6

PRIORITY_NAMES = {2: "VIP", 1: "elderly/accessibility", 0: "normal"}


# --------------------------------------------------------------------------------------------
# Scenario


@dataclass(frozen=True)
class ServiceTime:
    """Talk time of one business: exponential with ``mean_s``, or lognormal when ``sd_s`` is set."""

    mean_s: float
    sd_s: float | None = None

    def sample(self, rng: np.random.Generator) -> float:
        if self.sd_s is None:
            return float(rng.exponential(self.mean_s))
        sigma2 = math.log1p((self.sd_s / self.mean_s) ** 2)
        return float(rng.lognormal(math.log(self.mean_s) - sigma2 / 2, math.sqrt(sigma2)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceTime:
        dist = data.get("dist", "exponential")
        if dist == "exponential":
            return cls(mean_s=float(data["mean_s"]))
        if dist == "lognormal":
            return cls(mean_s=float(data["mean_s"]), sd_s=float(data["sd_s"]))
        raise ValueError(f"unknown service time distribution {dist!r}")

    def to_dict(self) -> dict[str, Any]:
        if self.sd_s is None:
            return {"dist": "exponential", "mean_s": self.mean_s}
        return {"dist": "lognormal", "mean_s": self.mean_s, "sd_s": self.sd_s}


@dataclass(frozen=True)
class Patience:
    """How long a customer waits before hanging up: exponential mean, or ``None`` for forever."""

    mean_s: float | None = 180.0

    def sample(self, rng: np.random.Generator) -> float:
        return math.inf if self.mean_s is None else float(rng.exponential(self.mean_s))

    @classmethod
    def parse(cls, value: Any) -> Patience:
        if value is None or value in ("none", "inf", 0):
            return cls(None)
        if isinstance(value, Mapping):
            return cls.parse(value.get("mean_s"))
        return cls(float(value))


@dataclass(frozen=True)
class Business:
    name: str
    policy: Policy
    service: ServiceTime
    # Expected calls per hour: by hour of day, or one rate for every opening hour.
    arrivals_per_hour: Mapping[int, float] | float = 0.0
    priority_mix: Mapping[int, float] = field(default_factory=dict)  # the rest are normal (0)
    languages: Mapping[str, float] = field(default_factory=lambda: {"zh": 1.0})
    channels: Mapping[str, float] = field(default_factory=lambda: {"web": 1.0})
    patience: Patience | None = None  # None: the scenario's

    def rate(self, hour: int) -> float:
        if isinstance(self.arrivals_per_hour, Mapping):
            return float(self.arrivals_per_hour.get(hour, 0.0))
        return float(self.arrivals_per_hour)

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> Business:
        requirements = tuple(
            Requirement(skill, int(level)) for skill, level in data.get("requirements", {}).items()
        )
        steps = []
        for raw in data.get("steps", ()):
            kind = raw["kind"]
            if kind not in (STEP_LOWER, STEP_ANY, STEP_GROUP):
                raise ValueError(f"{name}: unknown relaxation step kind {kind!r}")
            value = raw.get("value", 1 if kind == STEP_LOWER else 0)
            steps.append(Step(float(raw["after_s"]), kind, value))
        rate = data.get("arrivals_per_hour", 0.0)
        if isinstance(rate, Mapping):
            rate = {int(hour): float(r) for hour, r in rate.items()}
        return cls(
            name=name,
            policy=Policy(requirements, tuple(sorted(steps, key=lambda s: s.after_s))),
            service=ServiceTime.from_dict(data.get("service", {"mean_s": 300})),
            arrivals_per_hour=rate,
            priority_mix={int(p): float(s) for p, s in data.get("priority_mix", {}).items()},
            languages=dict(data.get("languages", {"zh": 1.0})),
            channels=dict(data.get("channels", {"web": 1.0})),
            patience=Patience.parse(data["patience"]) if "patience" in data else None,
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "requirements": {r.skill: r.min_level for r in self.policy.requirements},
            "steps": [
                {"after_s": s.after_s, "kind": s.kind, **({"value": s.value} if s.value else {})}
                for s in self.policy.steps
            ],
            "service": self.service.to_dict(),
            "arrivals_per_hour": (
                {str(h): r for h, r in self.arrivals_per_hour.items()}
                if isinstance(self.arrivals_per_hour, Mapping)
                else self.arrivals_per_hour
            ),
            "priority_mix": {str(p): s for p, s in self.priority_mix.items()},
            "languages": dict(self.languages),
            "channels": dict(self.channels),
        }
        if self.patience is not None:
            data["patience"] = self.patience.mean_s
        return data


@dataclass(frozen=True)
class TellerGroup:
    name: str
    count: int
    skills: Mapping[str, int]
    languages: frozenset[str] = frozenset({"zh"})
    channels: frozenset[str] = frozenset({"web", "app", "vtm"})
    groups: frozenset[str] = frozenset()
    shift: tuple[float, float] | None = None  # hours of day; None: the opening hours

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TellerGroup:
        shift = data.get("shift")
        return cls(
            name=str(data["name"]),
            count=int(data["count"]),
            skills={k: int(v) for k, v in data.get("skills", {}).items()},
            languages=frozenset(data.get("languages", ["zh"])),
            channels=frozenset(data.get("channels", ["web", "app", "vtm"])),
            groups=frozenset(data.get("groups", [])),
            shift=(float(shift[0]), float(shift[1])) if shift else None,
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "count": self.count,
            "skills": dict(self.skills),
            "languages": sorted(self.languages),
            "channels": sorted(self.channels),
            "groups": sorted(self.groups),
        }
        if self.shift is not None:
            data["shift"] = list(self.shift)
        return data


@dataclass(frozen=True)
class Scenario:
    businesses: tuple[Business, ...]
    tellers: tuple[TellerGroup, ...]
    hours: tuple[int, int] = (9, 17)
    answer_delay_s: float = 3.0  # teller's accept latency; the customer is still waiting
    wrap_up_s: float = 30.0
    patience: Patience = Patience(180.0)
    threshold_s: float = 20.0  # "answered within" for the service level
    target_sl: float = 0.8

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        hours = data.get("hours", [9, 17])
        target_sl, threshold_s = parse_target(str(data.get("target", "80/20")))
        return cls(
            businesses=tuple(
                Business.from_dict(name, raw) for name, raw in data["businesses"].items()
            ),
            tellers=tuple(TellerGroup.from_dict(raw) for raw in data["tellers"]),
            hours=(int(hours[0]), int(hours[1])),
            answer_delay_s=float(data.get("answer_delay_s", 3.0)),
            wrap_up_s=float(data.get("wrap_up_s", 30.0)),
            patience=Patience.parse(data.get("patience", 180.0)),
            threshold_s=threshold_s,
            target_sl=target_sl,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "hours": list(self.hours),
            "target": format_target(self.target_sl, self.threshold_s),
            "answer_delay_s": self.answer_delay_s,
            "wrap_up_s": self.wrap_up_s,
            "patience": self.patience.mean_s,
            "businesses": {b.name: b.to_dict() for b in self.businesses},
            "tellers": [g.to_dict() for g in self.tellers],
        }

    @property
    def policies(self) -> dict[str, Policy]:
        return {b.name: b.policy for b in self.businesses}

    def with_single_group(self, count: int, name: str = "generalist") -> Scenario:
        """The same demand served by ``count`` interchangeable tellers who can do everything."""
        skills: dict[str, int] = {}
        languages: set[str] = set()
        channels: set[str] = set()
        for business in self.businesses:
            for req in business.policy.requirements:
                skills[req.skill] = max(skills.get(req.skill, 0), req.min_level)
            languages |= set(business.languages)
            channels |= set(business.channels)
        group = TellerGroup(
            name=name,
            count=count,
            skills=skills,
            languages=frozenset(languages or {"zh"}),
            channels=frozenset(channels or {"web"}),
            groups=frozenset({name}),
        )
        return replace(self, tellers=(group,))

    def offered_erlangs(self, hour: int) -> float:
        """Teller-time asked for in one hour, in Erlangs (answer delay + talk + wrap-up)."""
        return sum(
            b.rate(hour) * (self.answer_delay_s + b.service.mean_s + self.wrap_up_s) / 3600
            for b in self.businesses
        )

    def mean_handle_s(self, hour: int) -> float:
        calls = sum(b.rate(hour) for b in self.businesses)
        return self.offered_erlangs(hour) * 3600 / calls if calls else 0.0


def parse_target(text: str) -> tuple[float, float]:
    """``"80/20"`` → (0.80, 20.0): 80 % of answered calls within 20 seconds."""
    try:
        percent, seconds = text.split("/")
        target_sl, threshold_s = float(percent) / 100, float(seconds)
    except ValueError:
        raise ValueError(f"target must look like 80/20, not {text!r}") from None
    if not 0 < target_sl <= 1 or threshold_s < 0:
        raise ValueError(f"target must look like 80/20, not {text!r}")
    return target_sl, threshold_s


def format_target(target_sl: float, threshold_s: float) -> str:
    return f"{target_sl * 100:g}/{threshold_s:g}"


def parse_hours(text: str) -> tuple[int, int]:
    """``"9-17"`` → (9, 17)."""
    try:
        start, end = (int(part) for part in text.split("-"))
    except ValueError:
        raise ValueError(f"hours must look like 9-17, not {text!r}") from None
    if not 0 <= start < end <= 24:
        raise ValueError(f"hours must lie within 0-24 and end after they start, not {text!r}")
    return start, end


# A bank day: retail business all day, wealth sales that only qualified tellers may handle
# (dual recording, no relaxation), corporate account opening that relaxes step by step.
_BUSY_DAY = {9: 0.7, 10: 1.0, 11: 1.1, 12: 0.8, 13: 0.7, 14: 1.0, 15: 1.0, 16: 0.8}
_MIX = {
    "priority_mix": {"2": 0.05, "1": 0.10},
    "channels": {"app": 0.55, "web": 0.30, "vtm": 0.15},
}


def _profile(base: float) -> dict[str, float]:
    return {str(h): round(base * f, 2) for h, f in _BUSY_DAY.items()}


DEFAULT_SCENARIO: dict[str, Any] = {
    "hours": [9, 17],
    "target": "80/20",
    "answer_delay_s": 3,
    "wrap_up_s": 30,
    "patience": 180,
    "businesses": {
        "password_reset": {
            "requirements": {"retail": 1},
            "service": {"dist": "exponential", "mean_s": 180},
            "arrivals_per_hour": _profile(40),
            "languages": {"zh": 0.97, "en": 0.03},
            **_MIX,
        },
        "card_loss": {
            "requirements": {"retail": 1},
            "service": {"dist": "lognormal", "mean_s": 300, "sd_s": 120},
            "arrivals_per_hour": _profile(15),
            "languages": {"zh": 0.97, "en": 0.03},
            **_MIX,
        },
        "customer_info_update": {
            "requirements": {"retail": 2},
            "steps": [{"after_s": 60, "kind": "lower", "value": 1}],
            "service": {"dist": "lognormal", "mean_s": 420, "sd_s": 180},
            "arrivals_per_hour": _profile(25),
            **_MIX,
        },
        "wealth_risk_assessment": {
            "requirements": {"wealth": 2},
            "service": {"dist": "lognormal", "mean_s": 900, "sd_s": 300},
            "arrivals_per_hour": _profile(6),
            **_MIX,
        },
        "corporate_account": {
            "requirements": {"corporate": 3},
            "steps": [
                {"after_s": 30, "kind": "lower", "value": 1},
                {"after_s": 90, "kind": "any"},
                {"after_s": 180, "kind": "group", "value": "generalist"},
            ],
            "service": {"dist": "lognormal", "mean_s": 1200, "sd_s": 400},
            "arrivals_per_hour": _profile(4),
            "channels": {"web": 0.7, "vtm": 0.3},
        },
    },
    "tellers": [
        {
            "name": "generalist",
            "count": 7,
            "skills": {"retail": 2, "wealth": 1},
            "languages": ["zh"],
            "groups": ["generalist"],
        },
        {
            "name": "senior",
            "count": 3,
            "skills": {"retail": 2, "wealth": 3, "corporate": 2},
            "languages": ["zh", "en"],
            "groups": ["senior"],
        },
        {
            "name": "corporate",
            "count": 2,
            "skills": {"retail": 2, "corporate": 3},
            "languages": ["zh", "en"],
            "groups": ["corporate"],
        },
    ],
}


def default_scenario() -> Scenario:
    return Scenario.from_dict(DEFAULT_SCENARIO)


# --------------------------------------------------------------------------------------------
# Arrivals


@dataclass(frozen=True)
class ArrivalRow:
    """One customer as a CSV or the Poisson generator describes them."""

    t_s: float
    business: str
    priority: int = 0
    language: str = "zh"
    channel: str = "web"


@dataclass(frozen=True)
class Arrival:
    row: ArrivalRow
    service_s: float
    patience_s: float


def _pick(rng: np.random.Generator, mix: Mapping[Any, float], rest: Any = None) -> Any:
    """One key of ``mix`` by its share; ``rest`` when the shares sum to less than 1."""
    u = rng.random() * (1.0 if rest is not None else sum(mix.values()))
    for key, share in mix.items():
        u -= share
        if u < 0:
            return key
    return rest if rest is not None else next(reversed(list(mix)))


def poisson_rows(scenario: Scenario, rng: np.random.Generator) -> list[ArrivalRow]:
    """Poisson arrivals per business, the rate constant within each opening hour."""
    rows = []
    for business in scenario.businesses:
        for hour in range(*scenario.hours):
            rate_per_s = business.rate(hour) / 3600
            if rate_per_s <= 0:
                continue
            t = hour * 3600 + rng.exponential(1 / rate_per_s)
            while t < (hour + 1) * 3600:
                rows.append(
                    ArrivalRow(
                        t_s=float(t),
                        business=business.name,
                        priority=int(_pick(rng, business.priority_mix, rest=0)),
                        language=str(_pick(rng, business.languages)),
                        channel=str(_pick(rng, business.channels)),
                    )
                )
                t += rng.exponential(1 / rate_per_s)
    rows.sort(key=lambda r: r.t_s)
    return rows


def read_arrivals_csv(source: str | Path | TextIO) -> list[ArrivalRow]:
    """Rows of ``t_s,business[,priority,language,channel]``; t_s in seconds since 00:00."""
    if isinstance(source, str | Path):
        with open(source, newline="", encoding="utf-8") as fh:
            return read_arrivals_csv(fh)
    rows = []
    for lineno, raw in enumerate(csv.DictReader(source), start=2):
        try:
            rows.append(
                ArrivalRow(
                    t_s=float(raw["t_s"]),
                    business=raw["business"].strip(),
                    priority=int(raw.get("priority") or 0),
                    language=(raw.get("language") or "zh").strip(),
                    channel=(raw.get("channel") or "web").strip(),
                )
            )
        except (KeyError, ValueError, AttributeError) as exc:
            raise ValueError(f"arrivals CSV line {lineno}: {exc!r}") from None
    rows.sort(key=lambda r: r.t_s)
    return rows


def draw_arrivals(
    scenario: Scenario, rng: np.random.Generator, rows: Sequence[ArrivalRow] | None = None
) -> list[Arrival]:
    """The day's customers with their talk time and patience, drawn up front."""
    if rows is None:
        rows = poisson_rows(scenario, rng)
    businesses = {b.name: b for b in scenario.businesses}
    arrivals = []
    for row in rows:
        business = businesses.get(row.business)
        if business is None:
            raise ValueError(f"arrival for unknown business {row.business!r}")
        patience = business.patience or scenario.patience
        arrivals.append(Arrival(row, business.service.sample(rng), patience.sample(rng)))
    return arrivals


# --------------------------------------------------------------------------------------------
# Figures


@dataclass
class Figures:
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    unserved: int = 0  # still waiting when the day ended (nobody able to take them)
    answered_within: int = 0
    abandoned_within: int = 0
    wait_answered_s: float = 0.0

    def add(self, other: Figures) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def service_level(self) -> float | None:
        """Answered within the threshold ÷ answered."""
        return self.answered_within / self.answered if self.answered else None

    @property
    def sl2(self) -> float | None:
        """Asterisk's servicelevelperf2: abandoned within the threshold count as good."""
        handled = self.answered + self.abandoned
        return (self.answered_within + self.abandoned_within) / handled if handled else None

    @property
    def asa_s(self) -> float | None:
        return self.wait_answered_s / self.answered if self.answered else None

    @property
    def abandonment_rate(self) -> float | None:
        return self.abandoned / self.offered if self.offered else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "offered": self.offered,
            "answered": self.answered,
            "abandoned": self.abandoned,
            "unserved": self.unserved,
            "answered_within": self.answered_within,
            "abandoned_within": self.abandoned_within,
            "service_level": self.service_level,
            "sl2": self.sl2,
            "asa_s": self.asa_s,
            "abandonment_rate": self.abandonment_rate,
        }


@dataclass
class GroupFigures:
    name: str
    tellers: int = 0
    staffed_s: float = 0.0
    busy_s: float = 0.0  # from offer to end of talk
    wrap_s: float = 0.0

    def add(self, other: GroupFigures) -> None:
        self.tellers = max(self.tellers, other.tellers)
        self.staffed_s += other.staffed_s
        self.busy_s += other.busy_s
        self.wrap_s += other.wrap_s

    @property
    def occupancy(self) -> float | None:
        return (self.busy_s + self.wrap_s) / self.staffed_s if self.staffed_s else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "tellers": self.tellers,
            "staffed_h": self.staffed_s / 3600,
            "busy_h": self.busy_s / 3600,
            "wrap_h": self.wrap_s / 3600,
            "occupancy": self.occupancy,
        }


@dataclass(frozen=True)
class CallRecord:
    id: int
    business: str
    priority: int
    arrived_s: float
    answered_s: float | None
    abandoned_s: float | None
    teller_id: int | None
    teller_group: str | None

    @property
    def wait_s(self) -> float | None:
        end = self.answered_s if self.answered_s is not None else self.abandoned_s
        return None if end is None else end - self.arrived_s


@dataclass
class DayResult:
    threshold_s: float
    hours: tuple[int, int]
    runs: int = 1
    overall: Figures = field(default_factory=Figures)
    by_business: dict[str, Figures] = field(default_factory=dict)
    by_priority: dict[int, Figures] = field(default_factory=dict)
    by_hour: dict[int, Figures] = field(default_factory=dict)  # by hour of arrival
    by_group: dict[str, GroupFigures] = field(default_factory=dict)
    calls: list[CallRecord] = field(default_factory=list)

    @classmethod
    def from_calls(
        cls,
        calls: Iterable[CallRecord],
        groups: Iterable[GroupFigures],
        *,
        threshold_s: float,
        hours: tuple[int, int],
        businesses: Iterable[str] = (),
    ) -> DayResult:
        result = cls(threshold_s=threshold_s, hours=hours, calls=list(calls))
        result.by_business = {name: Figures() for name in businesses}
        result.by_group = {g.name: g for g in groups}
        for hour in range(*hours):
            result.by_hour[hour] = Figures()
        for call in result.calls:
            one = Figures(offered=1)
            if call.answered_s is not None:
                wait = call.answered_s - call.arrived_s
                one.answered, one.wait_answered_s = 1, wait
                one.answered_within = int(wait <= threshold_s)
            elif call.abandoned_s is not None:
                one.abandoned = 1
                one.abandoned_within = int(call.abandoned_s - call.arrived_s <= threshold_s)
            else:
                one.unserved = 1
            tables: tuple[tuple[dict[Any, Figures], Any], ...] = (
                (result.by_business, call.business),
                (result.by_priority, call.priority),
                (result.by_hour, int(call.arrived_s // 3600)),
            )
            for table, key in tables:
                table.setdefault(key, Figures()).add(one)
            result.overall.add(one)
        return result

    @classmethod
    def combine(cls, results: Sequence[DayResult]) -> DayResult:
        """Pool several runs (different seeds) of the same scenario."""
        first = results[0]
        pooled = cls(threshold_s=first.threshold_s, hours=first.hours, runs=0)
        for result in results:
            pooled.runs += result.runs
            pooled.overall.add(result.overall)
            pooled.calls.extend(result.calls)
            pairs: tuple[tuple[dict[Any, Figures], dict[Any, Figures]], ...] = (
                (pooled.by_business, result.by_business),
                (pooled.by_priority, result.by_priority),
                (pooled.by_hour, result.by_hour),
            )
            for mine, theirs in pairs:
                for key, figures in theirs.items():
                    mine.setdefault(key, Figures()).add(figures)
            for name, group in result.by_group.items():
                pooled.by_group.setdefault(name, GroupFigures(name)).add(group)
        return pooled

    @property
    def worst_hour(self) -> tuple[int, float] | None:
        levels = [(h, f.service_level) for h, f in self.by_hour.items() if f.answered]
        if not levels:
            return None
        return min(levels, key=lambda item: item[1])  # type: ignore[arg-type,return-value]

    def as_dict(self) -> dict[str, Any]:
        return {
            "threshold_s": self.threshold_s,
            "hours": list(self.hours),
            "runs": self.runs,
            "overall": self.overall.as_dict(),
            "by_business": {k: v.as_dict() for k, v in self.by_business.items()},
            "by_priority": {
                PRIORITY_NAMES.get(k, str(k)): v.as_dict()
                for k, v in sorted(self.by_priority.items(), reverse=True)
            },
            "by_hour": {f"{h:02d}:00": v.as_dict() for h, v in sorted(self.by_hour.items())},
            "by_group": {k: v.as_dict() for k, v in self.by_group.items()},
        }

    def table(self) -> str:
        """The day as plain-text tables."""
        t = f"{self.threshold_s:g}s"
        lines = []
        runs = f", {self.runs} runs pooled" if self.runs > 1 else ""
        lines.append(f"Day {self.hours[0]:02d}:00-{self.hours[1]:02d}:00{runs}")
        lines.append(
            f"SL = answered within {t} / answered; "
            f"SL2 = (answered + abandoned within {t}) / (answered + abandoned)"
        )
        head = (
            f"{'':24} {'offered':>8} {'answered':>8} {'abandoned':>9} {'SL':>6} {'SL2':>6}"
            f" {'ASA s':>6} {'aband.':>6}"
        )

        def row(label: str, f: Figures) -> str:
            return (
                f"{label:24} {f.offered:8d} {f.answered:8d} {f.abandoned:9d}"
                f" {_pct(f.service_level)} {_pct(f.sl2)} {_num(f.asa_s)} {_pct(f.abandonment_rate)}"
            )

        lines += ["", "By business", head]
        lines += [row(name, f) for name, f in self.by_business.items()]
        lines.append(row("all", self.overall))
        lines += ["", "By priority", head]
        lines += [
            row(PRIORITY_NAMES.get(p, str(p)), f)
            for p, f in sorted(self.by_priority.items(), reverse=True)
        ]
        lines += [
            "",
            "By teller group (occupancy = (busy + wrap-up) / staffed time)",
            f"{'':24} {'tellers':>8} {'staffed h':>9} {'busy h':>8} {'wrap h':>8} {'occupancy':>9}",
        ]
        for name, g in self.by_group.items():
            lines.append(
                f"{name:24} {g.tellers:8d} {g.staffed_s / 3600:9.1f} {g.busy_s / 3600:8.1f}"
                f" {g.wrap_s / 3600:8.1f} {_pct(g.occupancy, 9)}"
            )
        lines += ["", "By hour of arrival", head]
        for hour, f in sorted(self.by_hour.items()):
            bar = "#" * round((f.service_level or 0) * 20)
            lines.append(f"{row(f'{hour:02d}:00', f)}  {bar}")
        if self.overall.unserved:
            lines += ["", f"{self.overall.unserved} calls found no able teller all day."]
        return "\n".join(lines)


def _pct(value: float | None, width: int = 6) -> str:
    return f"{'-':>{width}}" if value is None else f"{value * 100:{width - 1}.1f}%"


def _num(value: float | None, width: int = 6) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.1f}"


# --------------------------------------------------------------------------------------------
# The event loop

_WAITING, _OFFERED, _ANSWERED, _ABANDONED = "waiting", "offered", "answered", "abandoned"
_OFF, _FREE, _ENGAGED, _WRAP = "off", "free", "engaged", "wrap"

# Event kinds. At equal times: tellers come and go first, then calls move on.
_SHIFT_START, _SHIFT_END, _WRAP_END, _SERVICE_END, _ACCEPT, _ABANDON, _STEP, _ARRIVAL = range(8)


@dataclass(eq=False)
class _Teller:
    state: TellerState
    group: GroupFigures
    shift_end_s: float
    status: str = _OFF
    call: _Call | None = None
    since: float = 0.0  # start of the current busy/wrap/staffed stretch
    logged_in_at: float = 0.0
    leaving: bool = False
    overtime: bool = False


@dataclass(eq=False)
class _Call:
    state: CallState
    arrival: Arrival
    status: str = _WAITING
    answered_s: float | None = None
    abandoned_s: float | None = None
    teller: _Teller | None = None


def _order(call: CallState) -> tuple:
    return call.order


class _Day:
    def __init__(self, scenario: Scenario, arrivals: Sequence[Arrival]) -> None:
        self.scenario = scenario
        self.policies = scenario.policies
        self.open_s, self.close_s = scenario.hours[0] * 3600, scenario.hours[1] * 3600
        self.now = 0.0
        self.heap: list[tuple[float, int, int, Any]] = []
        self.seq = itertools.count()
        self.waiting: list[CallState] = []  # kept in CallState.order, as Router.assign wants
        self.calls: list[_Call] = []
        self.by_id: dict[int, _Call] = {}
        self.tellers: dict[int, _Teller] = {}
        self.logged_in: dict[int, _Teller] = {}
        self.free: dict[int, _Teller] = {}
        self.groups: list[GroupFigures] = []
        for group in scenario.tellers:
            figures = GroupFigures(group.name, tellers=group.count)
            self.groups.append(figures)
            start_h, end_h = group.shift or scenario.hours
            for _ in range(group.count):
                teller_id = len(self.tellers) + 1
                teller = _Teller(
                    state=TellerState(
                        id=teller_id,
                        skills=dict(group.skills),
                        languages=group.languages,
                        channels=group.channels,
                        groups=group.groups,
                    ),
                    group=figures,
                    shift_end_s=end_h * 3600,
                )
                self.tellers[teller_id] = teller
                self.schedule(start_h * 3600, _SHIFT_START, teller)
                self.schedule(end_h * 3600, _SHIFT_END, teller)
        for arrival in arrivals:
            row = arrival.row
            if not self.open_s <= row.t_s < self.close_s:
                continue  # doors closed
            call = _Call(
                CallState(
                    id=len(self.calls) + 1,
                    business=row.business,
                    enqueued_at=row.t_s,
                    language=row.language,
                    channel=row.channel,
                    priority=row.priority,
                ),
                arrival,
            )
            self.calls.append(call)
            self.by_id[call.state.id] = call  # type: ignore[index]
            self.schedule(row.t_s, _ARRIVAL, call)

    def schedule(self, at: float, kind: int, obj: Any) -> None:
        heapq.heappush(self.heap, (at, kind, next(self.seq), obj))

    def run(self) -> DayResult:
        handlers: dict[int, Callable[[Any], None]] = {
            _SHIFT_START: self.on_shift_start,
            _SHIFT_END: self.on_shift_end,
            _WRAP_END: self.on_wrap_end,
            _SERVICE_END: self.on_service_end,
            _ACCEPT: self.on_accept,
            _ABANDON: self.on_abandon,
            _STEP: self.on_step,
            _ARRIVAL: self.on_arrival,
        }
        while self.heap:
            at, kind, _, obj = heapq.heappop(self.heap)
            self.now = at
            handlers[kind](obj)
            if self.heap and self.heap[0][0] == at:
                continue  # decide once everything happening at this instant is known
            self.dispatch()
            if self.now >= self.close_s and not self.waiting:
                self.send_overtime_home()
        for teller in list(self.logged_in.values()):
            self.log_off(teller)
        records = [
            CallRecord(
                id=int(call.state.id),  # type: ignore[call-overload]
                business=call.state.business,
                priority=call.state.priority,
                arrived_s=call.state.enqueued_at,
                answered_s=call.answered_s,
                abandoned_s=call.abandoned_s,
                teller_id=call.teller.state.id if call.teller else None,
                teller_group=call.teller.group.name if call.teller else None,
            )
            for call in self.calls
        ]
        return DayResult.from_calls(
            records,
            self.groups,
            threshold_s=self.scenario.threshold_s,
            hours=self.scenario.hours,
            businesses=self.policies,
        )

    # --- decisions

    def dispatch(self) -> None:
        if not self.waiting or not self.free:
            return
        router = Router(self.policies, [t.state for t in self.logged_in.values()], self.now)
        for call_state, teller_state in router.assign(
            self.waiting, [t.state for t in self.free.values()]
        ):
            call = self.by_id[call_state.id]  # type: ignore[index]
            teller = self.free.pop(teller_state.id)
            self.unqueue(call)
            call.status, call.teller = _OFFERED, teller
            teller.status, teller.call, teller.since = _ENGAGED, call, self.now
            self.schedule(self.now + self.scenario.answer_delay_s, _ACCEPT, call)

    def unqueue(self, call: _Call) -> None:
        index = bisect_left(self.waiting, call.state.order, key=_order)
        assert self.waiting[index] is call.state
        del self.waiting[index]

    # --- tellers

    def on_shift_start(self, teller: _Teller) -> None:
        teller.status, teller.logged_in_at = _FREE, self.now
        teller.state.idle_since = self.now
        self.logged_in[teller.state.id] = teller
        self.free[teller.state.id] = teller

    def on_shift_end(self, teller: _Teller) -> None:
        if teller.status == _OFF:
            return
        if teller.shift_end_s >= self.close_s and self.waiting:
            teller.overtime = True  # the last customers of the day are still served
        elif teller.status == _FREE:
            self.log_off(teller)
        else:
            teller.leaving = True

    def send_overtime_home(self) -> None:
        for teller in list(self.logged_in.values()):
            if teller.overtime:
                if teller.status == _FREE:
                    self.log_off(teller)
                else:
                    teller.leaving = True

    def log_off(self, teller: _Teller) -> None:
        if teller.status == _ENGAGED:
            teller.group.busy_s += self.now - teller.since
        elif teller.status == _WRAP:
            teller.group.wrap_s += self.now - teller.since
        teller.group.staffed_s += self.now - teller.logged_in_at
        teller.status = _OFF
        self.logged_in.pop(teller.state.id, None)
        self.free.pop(teller.state.id, None)

    def release(self, teller: _Teller) -> None:
        teller.call = None
        if teller.leaving or (teller.overtime and not self.waiting):
            teller.status = _FREE  # nothing left to account for
            self.log_off(teller)
            return
        teller.status = _FREE
        teller.state.idle_since = self.now
        self.free[teller.state.id] = teller

    def on_service_end(self, teller: _Teller) -> None:
        teller.group.busy_s += self.now - teller.since
        if self.scenario.wrap_up_s > 0:
            teller.status, teller.since = _WRAP, self.now
            self.schedule(self.now + self.scenario.wrap_up_s, _WRAP_END, teller)
        else:
            self.release(teller)

    def on_wrap_end(self, teller: _Teller) -> None:
        teller.group.wrap_s += self.now - teller.since
        self.release(teller)

    # --- calls

    def on_arrival(self, call: _Call) -> None:
        insort(self.waiting, call.state, key=_order)
        if math.isfinite(call.arrival.patience_s):
            self.schedule(self.now + call.arrival.patience_s, _ABANDON, call)
        self.schedule_step(call)

    def schedule_step(self, call: _Call) -> None:
        at = next_step_at(self.policies[call.state.business], call.state, self.now)
        if at is not None:
            self.schedule(max(at + _STEP_EPSILON_S, self.now), _STEP, call)

    def on_step(self, call: _Call) -> None:
        if call.status == _WAITING:
            self.schedule_step(call)  # the dispatch after this event re-routes the call

    def on_abandon(self, call: _Call) -> None:
        if call.status == _WAITING:
            self.unqueue(call)
        elif call.status == _OFFERED:
            teller = call.teller
            assert teller is not None
            teller.group.busy_s += self.now - teller.since
            call.teller = None  # the customer hung up while the teller was picking up
            self.release(teller)
        else:
            return
        call.status, call.abandoned_s = _ABANDONED, self.now

    def on_accept(self, call: _Call) -> None:
        if call.status != _OFFERED:
            return
        assert call.teller is not None
        call.status, call.answered_s = _ANSWERED, self.now
        self.schedule(self.now + call.arrival.service_s, _SERVICE_END, call.teller)


def simulate(
    scenario: Scenario,
    *,
    seed: int = 1,
    rows: Sequence[ArrivalRow] | None = None,
) -> DayResult:
    """One day: Poisson arrivals from the scenario, or ``rows`` (e.g. from a CSV)."""
    arrivals = draw_arrivals(scenario, np.random.default_rng(seed), rows)
    return _Day(scenario, arrivals).run()


def simulate_runs(
    scenario: Scenario,
    *,
    seed: int = 1,
    runs: int = 1,
    rows: Sequence[ArrivalRow] | None = None,
) -> DayResult:
    """``runs`` days with seeds ``seed, seed+1, ...``, pooled."""
    results = [simulate(scenario, seed=seed + i, rows=rows) for i in range(runs)]
    return results[0] if runs == 1 else DayResult.combine(results)


# --------------------------------------------------------------------------------------------
# Staffing search


@dataclass(frozen=True)
class StaffingTrial:
    tellers: int
    result: DayResult

    @property
    def service_level(self) -> float:
        return self.result.overall.service_level or 0.0

    @property
    def worst_hour_level(self) -> float:
        worst = self.result.worst_hour
        return worst[1] if worst else 0.0


@dataclass
class StaffingSearch:
    target_sl: float
    threshold_s: float
    trials: dict[int, StaffingTrial] = field(default_factory=dict)
    for_day: int | None = None  # smallest count meeting the target over the whole day
    every_hour: int | None = None  # smallest count meeting it in every opening hour
    erlang_c_busiest_hour: int | None = None
    busiest_hour: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": format_target(self.target_sl, self.threshold_s),
            "tellers_for_day": self.for_day,
            "tellers_every_hour": self.every_hour,
            "erlang_c_busiest_hour": self.erlang_c_busiest_hour,
            "busiest_hour": self.busiest_hour,
            "trials": [
                {
                    "tellers": n,
                    "service_level": trial.service_level,
                    "worst_hour_service_level": trial.worst_hour_level,
                    "asa_s": trial.result.overall.asa_s,
                    "abandonment_rate": trial.result.overall.abandonment_rate,
                    "occupancy": next(iter(trial.result.by_group.values())).occupancy,
                }
                for n, trial in sorted(self.trials.items())
            ],
        }


def find_staffing(
    scenario: Scenario,
    *,
    seed: int = 1,
    runs: int = 1,
    rows: Sequence[ArrivalRow] | None = None,
    max_tellers: int = 500,
) -> StaffingSearch:
    """Smallest single group of interchangeable tellers meeting the scenario's target.

    A scenario with one teller group keeps that group (and its skills, languages and shift) and
    varies its size; otherwise the demand is served by generalists who can do everything. Counts
    are bisected: with the same customers for every count the service level rises with staff.
    """
    if len(scenario.tellers) == 1:
        base = scenario.tellers[0]

        def staffed(n: int) -> Scenario:
            return replace(scenario, tellers=(replace(base, count=n),))
    else:

        def staffed(n: int) -> Scenario:
            return scenario.with_single_group(n)

    search = StaffingSearch(scenario.target_sl, scenario.threshold_s)

    def trial(n: int) -> StaffingTrial:
        if n not in search.trials:
            result = simulate_runs(staffed(n), seed=seed, runs=runs, rows=rows)
            search.trials[n] = StaffingTrial(n, result)
        return search.trials[n]

    def smallest(meets: Any) -> int | None:
        low, high = 0, max(1, min(max_tellers, math.ceil(peak)))  # `low` fails, `high` unknown
        while not meets(trial(high)):
            if high >= max_tellers:
                return None
            low, high = high, min(max_tellers, high * 2)
        while high - low > 1:
            middle = (low + high) // 2
            if meets(trial(middle)):
                high = middle
            else:
                low = middle
        return high

    hours = range(*scenario.hours)
    search.busiest_hour = max(hours, key=scenario.offered_erlangs)
    peak = scenario.offered_erlangs(search.busiest_hour)
    search.for_day = smallest(lambda t: t.service_level >= scenario.target_sl)
    search.every_hour = smallest(lambda t: t.worst_hour_level >= scenario.target_sl)
    if peak > 0:
        # Erlang C knows no answer delay: give it the wait budget left after the teller picks up.
        search.erlang_c_busiest_hour = erlang_c_tellers(
            offered_erlangs=peak,
            aht_s=scenario.mean_handle_s(search.busiest_hour),
            threshold_s=max(0.0, scenario.threshold_s - scenario.answer_delay_s),
            target_sl=scenario.target_sl,
        )
    return search


# --------------------------------------------------------------------------------------------
# Erlang C: the textbook M/M/N answer, to check the simulator and to compare against


@dataclass(frozen=True)
class ErlangC:
    p_wait: float
    service_level: float
    asa_s: float


def erlang_c(tellers: int, offered_erlangs: float) -> float:
    """Probability that a call has to wait, M/M/N with ``offered_erlangs`` = λ·AHT."""
    n, a = tellers, offered_erlangs
    if a <= 0:
        return 0.0
    if a >= n:
        return 1.0
    blocking = 1.0  # Erlang B by recursion: stable for large N
    for k in range(1, n + 1):
        blocking = a * blocking / (k + a * blocking)
    return n * blocking / (n - a * (1 - blocking))


def erlang_c_service_level(
    tellers: int, offered_erlangs: float, *, aht_s: float, threshold_s: float
) -> ErlangC:
    """SL = 1 − C·e^{−(N−A)·T/AHT}; ASA = C·AHT/(N−A). No abandonment, FIFO, exponential talk."""
    n, a = tellers, offered_erlangs
    c = erlang_c(n, a)
    if a >= n:
        return ErlangC(p_wait=1.0, service_level=0.0, asa_s=math.inf)
    return ErlangC(
        p_wait=c,
        service_level=1 - c * math.exp(-(n - a) * threshold_s / aht_s),
        asa_s=c * aht_s / (n - a),
    )


def erlang_c_tellers(
    *, offered_erlangs: float, aht_s: float, threshold_s: float, target_sl: float
) -> int:
    """Smallest N whose Erlang C service level reaches ``target_sl``."""
    n = max(1, math.floor(offered_erlangs) + 1)
    while (
        erlang_c_service_level(
            n, offered_erlangs, aht_s=aht_s, threshold_s=threshold_s
        ).service_level
        < target_sl
    ):
        n += 1
    return n
