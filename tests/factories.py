from __future__ import annotations

import importlib

from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from queueing.models import Business, Call, CallStatus
from queueing.services import teller_profile_set
from workflows import catalogue as workflow_catalogue
from workflows.models import BusinessCase, CaseStatus

_seed = importlib.import_module("queueing.migrations.0002_seed_catalogue")
_skills = importlib.import_module("queueing.migrations.0004_seed_skills")


def catalogue_seed() -> None:
    """What the migrations seed (transactional tests flush it): businesses, role groups, skills,
    requirements and relaxation steps. Every staff account asks for it: when it is all there
    (four counts), nothing is written."""
    from queueing.models import Skill

    with transaction.atomic():
        if not Business.objects.exists() and not Skill.objects.exists():
            _catalogue_created()
        elif not _catalogue_complete():
            _catalogue_written()


def _catalogue_created() -> None:
    """The whole catalogue into empty tables (after a flush), five inserts in all."""
    from queueing.models import BusinessSkill, RelaxationStep, Skill

    businesses = {
        key: business
        for key, business in zip(
            [key for key, _, _ in _seed.BUSINESSES],
            Business.objects.bulk_create(
                Business(key=key, name_zh=zh, name_en=en, sort_order=order)
                for order, (key, zh, en) in enumerate(_seed.BUSINESSES)
            ),
            strict=True,
        )
    }
    Group.objects.bulk_create([Group(name=name) for name in _seed.GROUPS], ignore_conflicts=True)
    skills = {
        skill.key: skill
        for skill in Skill.objects.bulk_create(
            Skill(key=key, name_zh=zh, name_en=en) for key, zh, en in _skills.SKILLS
        )
    }
    requirements, steps = [], []
    for key, (needs, relaxations) in _skills.REQUIREMENTS.items():
        requirements += [
            BusinessSkill(business=businesses[key], skill=skills[skill], min_level=level)
            for skill, level in needs
        ]
        steps += [
            RelaxationStep(business=businesses[key], after_s=after_s, kind=kind, value=value)
            for after_s, kind, value in relaxations
        ]
    BusinessSkill.objects.bulk_create(requirements)
    RelaxationStep.objects.bulk_create(steps)


def _catalogue_complete() -> bool:
    from queueing.models import BusinessSkill, RelaxationStep, Skill

    keys = [key for key, _, _ in _seed.BUSINESSES]
    with_requirements = list(_skills.REQUIREMENTS)
    return (
        Business.objects.filter(key__in=keys).count() == len(keys)
        and Group.objects.filter(name__in=_seed.GROUPS).count() == len(_seed.GROUPS)
        and Skill.objects.filter(key__in=[key for key, _, _ in _skills.SKILLS]).count()
        == len(_skills.SKILLS)
        and BusinessSkill.objects.filter(business__key__in=with_requirements)
        .values("business")
        .distinct()
        .count()
        == len(with_requirements)
        and RelaxationStep.objects.filter(business__key__in=with_requirements)
        .values("business")
        .distinct()
        .count()
        == len(with_requirements)
    )


def _catalogue_written() -> None:
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


def connected_call(teller, *, business: str = "account_change", **fields) -> Call:
    """A call the teller answered just now (rows only: no sockets, no media)."""
    now = timezone.now()
    return Call.objects.create(
        business=Business.objects.get(key=business),
        status=CallStatus.CONNECTED,
        teller=teller,
        enqueued_at=now,
        answered_at=now,
        **fields,
    )


TRANSFER_RESULT = {"transaction_ref": "T0000000042", "balance_after": "50800.00"}


def done_transfer(
    teller,
    *,
    idempotency_key: str,
    from_account: str = "6230021000000001018",
    customer_ref: str = "CIF000000001",
    result: dict | None = None,
) -> BusinessCase:
    """A transfer of 1,200.00 to 刘洋 in a connected call, as it stands once the core bank
    carried it out (no receipt yet: ``workflows.receipts.receipt_issue`` makes one)."""
    params = {
        "from_account": from_account,
        "to_account": "6230021000000004012",
        "payee_name": "刘洋",
        "amount": "1200.00",
    }
    now = timezone.now()
    return BusinessCase.objects.create(
        call=connected_call(teller),
        business="transfer",
        status=CaseStatus.DONE,
        teller=teller,
        customer_ref=customer_ref,
        params=params,
        summary=workflow_catalogue.TRANSFER.summary(params, {}),
        result=TRANSFER_RESULT if result is None else result,
        idempotency_key=idempotency_key,
        confirmed_at=now,
        done_at=now,
    )
