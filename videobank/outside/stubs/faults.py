"""Fault controls of a stub: outage, latency, jitter, error rate (and a stub's own counters, such
as the core bank's "lose the next N answers"), kept in a control row of the stub's database so
that every process serving the stub sees the same switches.

A control row has ``outage``, ``latency_ms``, ``jitter_ms``, ``error_rate`` (null: the settings
default ``<PREFIX>LATENCY_MS``, ``..._JITTER_MS``, ``..._ERROR_RATE``) and the counters; one row
per key (a channel of the national service; the core bank has one, ``default``). Injected errors
and outages are not answers: nothing is recorded for them.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import models, transaction
from django.db.models import F
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from ..conf import outside_setting
from .answers import NotFound, StubRefusal, error_answer, json_answer, json_object
from .keys import StubKeys

log = logging.getLogger(__name__)

_rng = random.SystemRandom()
FAULTS = ("outage", "latency_ms", "jitter_ms", "error_rate")
RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "latency_ms": (lambda v: isinstance(v, int) and 0 <= v <= 60_000, "0-60000"),
    "jitter_ms": (lambda v: isinstance(v, int) and 0 <= v <= 60_000, "0-60000"),
    "error_rate": (lambda v: isinstance(v, int | float) and 0.0 <= v <= 1.0, "0.0-1.0"),
}


def latency_sleep(seconds: float) -> None:
    """How a stub waits to look like a distant service (tests replace it to hold a request)."""
    time.sleep(seconds)


@dataclass(frozen=True)
class FaultState:
    key: str
    outage: bool
    latency_ms: int
    jitter_ms: int
    error_rate: float
    counters: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "outage": self.outage,
            "latency_ms": self.latency_ms,
            "jitter_ms": self.jitter_ms,
            "error_rate": self.error_rate,
            **self.counters,
        }


class FaultControls:
    def __init__(
        self,
        *,
        model: type[models.Model],
        key_field: str,
        keys: Callable[[], Sequence[str]],
        setting_prefix: str,
        defaults: tuple[int, int, float],
        label: str,
        stub_keys: StubKeys,
        counters: dict[str, int] | None = None,
        listed_as: str | None = None,
    ):
        """``key_field``: the control row's key column (``channel``, ``name``); ``keys()``: the
        keys that exist; ``setting_prefix``: e.g. ``NATIONAL_STUB_``; ``defaults``: latency,
        jitter (ms) and error rate when a setting is unset; ``stub_keys``: the stub's API and
        admin keys (``served``, ``control_view``); ``counters``: name → largest value;
        ``listed_as``: the control endpoint lists every key under this name (else the one
        key's faults)."""
        # A concrete stub model (its manager and fault columns are read by name).
        self.model: Any = model
        self.key_field = key_field
        self.keys = keys
        self.prefix = setting_prefix
        self.defaults = dict(zip(("latency_ms", "jitter_ms", "error_rate"), defaults, strict=True))
        self.label = label
        self.stub_keys = stub_keys
        self.counters = dict(counters or {})
        self.listed_as = listed_as

    # --- reading and changing --------------------------------------------------------------------
    def state(self, key: str) -> FaultState:
        """The faults in force: the control row where set, else the settings."""
        if key not in self.keys():
            raise NotFound(f"no {self.key_field} {key!r}", code=f"unknown_{self.key_field}")
        row = self.model.objects.filter(**{self.key_field: key}).first()

        def pick(name: str, cast: Callable[[Any], Any]) -> Any:
            value = getattr(row, name, None) if row is not None else None
            if value is None:
                value = outside_setting(f"{self.prefix}{name.upper()}", self.defaults[name], cast)
            return cast(value)

        return FaultState(
            key=key,
            outage=bool(row is not None and row.outage),
            latency_ms=pick("latency_ms", int),
            jitter_ms=pick("jitter_ms", int),
            error_rate=pick("error_rate", float),
            counters={c: int(getattr(row, c, 0) or 0) for c in self.counters},
        )

    def set(self, key: str, **changes: Any) -> FaultState:
        """Change a key's faults: a field left out keeps its value; ``outage`` and the counters
        None keep theirs too; a latency, jitter or error rate None is the settings default
        again. StubRefusal (400, with the field) for anything out of range."""
        unknown = sorted(set(changes) - set(FAULTS) - set(self.counters))
        if unknown:
            raise StubRefusal(f"unknown field(s): {', '.join(unknown)}")
        if key not in self.keys():
            raise StubRefusal(
                f"unknown {self.key_field} {key!r}; {self.key_field}s: {', '.join(self.keys())}"
            )
        row_changes: dict[str, Any] = {}
        outage = changes.get("outage")
        if outage is not None:
            if not isinstance(outage, bool):
                raise StubRefusal("outage must be true or false", field="outage")
            row_changes["outage"] = outage
        for name, largest in self.counters.items():
            value = changes.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= largest:
                raise StubRefusal(f"{name} must be a count 0-{largest}", field=name)
            row_changes[name] = value
        for name, (valid, limits) in RANGES.items():
            if name not in changes:
                continue
            value = changes[name]
            if value is not None and (isinstance(value, bool) or not valid(value)):
                raise StubRefusal(f"{name} must be a number in {limits} or null", field=name)
            row_changes[name] = value
        with transaction.atomic():
            row, _ = self.model.objects.select_for_update().get_or_create(**{self.key_field: key})
            for name, value in row_changes.items():
                setattr(row, name, value)
            row.save()
        state = self.state(key)
        log.info("%s control: %s %s", self.label, key, state.as_dict())
        return state

    def reset(self) -> None:
        """Every key back to the settings defaults, no outage, counters at 0."""
        self.model.objects.all().delete()
        log.info("%s control: reset", self.label)

    def take(self, key: str, counter: str) -> bool:
        """Take one from a counter, if any is left: True means this request gets the fault."""
        with transaction.atomic():
            taken = self.model.objects.filter(**{self.key_field: key, f"{counter}__gt": 0}).update(
                **{counter: F(counter) - 1}
            )
        return taken > 0

    # --- applying them ---------------------------------------------------------------------------
    def delay(self, state: FaultState) -> None:
        jitter = _rng.uniform(-state.jitter_ms, state.jitter_ms) if state.jitter_ms else 0.0
        latency_sleep(max(0.0, state.latency_ms + jitter) / 1000)

    def error_injected(self, state: FaultState) -> bool:
        return state.error_rate > 0 and _rng.random() < state.error_rate

    def served(
        self,
        request: HttpRequest,
        *,
        key: str,
        outage_detail: str,
        handler: Callable[[], JsonResponse],
    ) -> JsonResponse:
        """An API call as a service would take it: the API key, the key's faults (outage,
        latency, injected error), then ``handler``; a StubRefusal as its JSON answer."""
        if not self.stub_keys.api_ok(request):
            return self.stub_keys.unauthorized()
        try:
            state = self.state(key)
        except StubRefusal as exc:
            return exc.answer()
        if state.outage:
            return error_answer(503, "outage", outage_detail)
        self.delay(state)
        if self.error_injected(state):
            return error_answer(500, "internal", f"injected error ({self.prefix}ERROR_RATE)")
        try:
            return handler()
        except StubRefusal as exc:
            return exc.answer()

    # --- the developer endpoint ------------------------------------------------------------------
    def listing(self) -> dict[str, Any]:
        if self.listed_as is None:
            return self.state(self.keys()[0]).as_dict()
        return {self.listed_as: {key: self.state(key).as_dict() for key in self.keys()}}

    def control_view(self) -> Callable[[HttpRequest], JsonResponse]:
        """The view of ``/v1/_control``: ``GET`` the faults in force; ``POST`` ``{<key
        field>?, outage?, latency_ms?, jitter_ms?, error_rate?, <counters>?}`` or ``{reset:
        true}``. Only with the stub's admin key (403 in words, nothing changed)."""

        @csrf_exempt
        @require_http_methods(["GET", "POST"])
        def control(request: HttpRequest) -> JsonResponse:
            if not self.stub_keys.admin_ok(request):
                return self.stub_keys.forbidden()
            if request.method == "POST":
                try:
                    data = json_object(request)
                    if data.get("reset"):
                        self.reset()
                    else:
                        key = self.keys()[0]
                        if self.listed_as is not None:
                            key = str(data.pop(self.key_field, ""))
                        self.set(key, **data)
                except StubRefusal as exc:
                    return exc.answer()
            return json_answer(self.listing())

        return control
