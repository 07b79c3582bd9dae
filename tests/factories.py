from __future__ import annotations

import importlib

from django.apps import apps as django_apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from queueing.models import Business, BusinessSkill, Call, CallStatus, RelaxationStep, Skill
from queueing.services import teller_profile_set
from workflows import catalogue as workflow_catalogue
from workflows.models import BusinessCase, CaseStatus

_seed = importlib.import_module("queueing.migrations.0002_seed_catalogue")
_skills = importlib.import_module("queueing.migrations.0004_seed_skills")


def catalogue_seed() -> None:
    """What the migrations seed (transactional tests flush it): businesses, role groups, skills,
    requirements and relaxation steps. Every staff account asks for it: when it is all there
    (five counts), nothing is written; into empty tables (after a flush) it goes in five inserts
    (3 ms, where the migrations' row-by-row seeds take 18 ms); anything in between is completed
    by the migrations' own seeds."""
    with transaction.atomic():
        if not Business.objects.exists() and not Skill.objects.exists():
            _catalogue_created()
        elif not _catalogue_complete():
            _seed.seed(django_apps, None)
            _skills.seed(django_apps, None)


def _catalogue_created() -> None:
    by_key = {
        business.key: business
        for business in Business.objects.bulk_create(
            Business(key=key, name_zh=zh, name_en=en, sort_order=order)
            for order, (key, zh, en) in enumerate(_seed.BUSINESSES)
        )
    }
    Group.objects.bulk_create([Group(name=name) for name in _seed.GROUPS], ignore_conflicts=True)
    skills = {
        skill.key: skill
        for skill in Skill.objects.bulk_create(
            Skill(key=key, name_zh=zh, name_en=en) for key, zh, en in _skills.SKILLS
        )
    }
    needs = _skills.REQUIREMENTS.items()
    BusinessSkill.objects.bulk_create(
        BusinessSkill(business=by_key[key], skill=skills[skill], min_level=level)
        for key, (requirements, _) in needs
        for skill, level in requirements
    )
    RelaxationStep.objects.bulk_create(
        RelaxationStep(business=by_key[key], after_s=after_s, kind=kind, value=value)
        for key, (_, steps) in needs
        for after_s, kind, value in steps
    )


def _catalogue_complete() -> bool:
    needs = _skills.REQUIREMENTS
    businesses = [key for key, _, _ in _seed.BUSINESSES]
    skills = [key for key, _, _ in _skills.SKILLS]
    expected = [
        (Business.objects.filter(key__in=businesses), businesses),
        (Group.objects.filter(name__in=_seed.GROUPS), _seed.GROUPS),
        (Skill.objects.filter(key__in=skills), skills),
        (
            BusinessSkill.objects.filter(business__key__in=needs),
            [need for requirements, _ in needs.values() for need in requirements],
        ),
        (
            RelaxationStep.objects.filter(business__key__in=needs),
            [step for _, steps in needs.values() for step in steps],
        ),
    ]
    return all(rows.count() >= len(seeded) for rows, seeded in expected)


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
