from __future__ import annotations

import importlib

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from queueing.models import Business

_seed = importlib.import_module("queueing.migrations.0002_seed_catalogue")


def catalogue_seed() -> None:
    for order, (key, zh, en) in enumerate(_seed.BUSINESSES):
        Business.objects.update_or_create(
            key=key, defaults={"name_zh": zh, "name_en": en, "sort_order": order}
        )
    for name in _seed.GROUPS:
        Group.objects.get_or_create(name=name)


def staff_user(username: str, *groups: str, password: str = "pw-for-tests"):
    catalogue_seed()
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.set_password(password)
    user.save()
    user.groups.set([Group.objects.get(name=g) for g in groups])
    return user
