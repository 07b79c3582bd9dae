from __future__ import annotations

import importlib

from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from queueing.models import Business
from queueing.services import teller_profile_set

_seed = importlib.import_module("queueing.migrations.0002_seed_catalogue")
_skills = importlib.import_module("queueing.migrations.0004_seed_skills")


def catalogue_seed() -> None:
    """What the migrations seed (transactional tests flush it): businesses, role groups, skills,
    requirements and relaxation steps."""
    for order, (key, zh, en) in enumerate(_seed.BUSINESSES):
        Business.objects.update_or_create(
            key=key, defaults={"name_zh": zh, "name_en": en, "sort_order": order}
        )
    for name in _seed.GROUPS:
        Group.objects.get_or_create(name=name)
    _skills.seed(django_apps, None)


# Enough skill for every seeded business at its base level.
ALL_ROUND = {"general": 3, "cards": 3, "deposits": 3, "corporate": 3}


def staff_user(
    username: str,
    *groups: str,
    password: str = "pw-for-tests",
    skills: dict[str, int] | None = None,
    languages: tuple[str, ...] = ("zh", "en"),
    channels: tuple[str, ...] = ("web", "app", "vtm"),
    teller_groups: tuple[str, ...] = (),
):
    """A staff account; tellers get a routing profile and skills (all-round by default)."""
    catalogue_seed()
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.set_password(password)
    user.save()
    user.groups.set([Group.objects.get(name=g) for g in groups])
    if "teller" in groups or "supervisor" in groups:
        teller_profile_set(
            teller=user,
            skills=ALL_ROUND if skills is None else skills,
            languages=languages,
            channels=channels,
            groups=teller_groups,
        )
    return user
