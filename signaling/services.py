from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from .errors import Refused
from .models import Kiosk, KioskEvent, KioskEventKind
from .selectors import kiosk_by_credential, kiosk_credential_hash, kiosk_credential_id

log = logging.getLogger(__name__)


# --- kiosks -------------------------------------------------------------------------------------
# Each returns the new credential (when there is one) to show once; only its hash is stored, and
# neither the log nor the audit trail ever holds it.

KIOSK_SEEN_EVERY_S = 60  # last_seen is refreshed at most this often (not one write per socket)


def kiosk_credential_new() -> tuple[str, str]:
    """A fresh credential and its public id: ``vtm_<id>_<256 random bits>``."""
    credential_id = secrets.token_hex(8)
    return credential_id, f"vtm_{credential_id}_{secrets.token_urlsafe(32)}"


def kiosk_create(*, name: str, branch: str, actor: str) -> tuple[Kiosk, str]:
    credential_id, credential = kiosk_credential_new()
    with transaction.atomic():
        kiosk = Kiosk.objects.create(
            name=name,
            branch=branch,
            created_by=actor,
            credential_id=credential_id,
            credential_hash=kiosk_credential_hash(credential),
        )
        KioskEvent.objects.create(
            kiosk=kiosk, kind=KioskEventKind.CREATED, actor=actor, credential_id=credential_id
        )
    log.info(
        "kiosk %s (%s) registered by %s, credential id %s", kiosk.pk, name, actor, credential_id
    )
    return kiosk, credential


def kiosk_rotate(*, kiosk_id: int, actor: str) -> tuple[Kiosk, str]:
    """A new credential; the old one stops working at once (new sockets, enrolment, and the
    peripherals of sockets already open)."""
    credential_id, credential = kiosk_credential_new()
    with transaction.atomic():
        kiosk = Kiosk.objects.select_for_update().get(pk=kiosk_id)
        if kiosk.revoked_at is not None:
            raise Refused(
                f"Kiosk {kiosk.name} is revoked; register a new kiosk instead.",
                f"自助柜员机 {kiosk.name} 已吊销，请重新登记一台。",
            )
        old = kiosk.credential_id
        kiosk.credential_id = credential_id
        kiosk.credential_hash = kiosk_credential_hash(credential)
        kiosk.rotated_at, kiosk.rotated_by = timezone.now(), actor
        kiosk.save(update_fields=["credential_id", "credential_hash", "rotated_at", "rotated_by"])
        KioskEvent.objects.create(
            kiosk=kiosk, kind=KioskEventKind.ROTATED, actor=actor, credential_id=credential_id
        )
    log.warning(
        "kiosk %s (%s) credential rotated by %s: %s -> %s",
        kiosk.pk,
        kiosk.name,
        actor,
        old,
        credential_id,
    )
    return kiosk, credential


def kiosk_revoke(*, kiosk_id: int, actor: str) -> Kiosk:
    """The kiosk is no longer believed: its sockets are web pages from now on."""
    with transaction.atomic():
        kiosk = Kiosk.objects.select_for_update().get(pk=kiosk_id)
        if kiosk.revoked_at is None:
            kiosk.revoked_at, kiosk.revoked_by = timezone.now(), actor
            kiosk.save(update_fields=["revoked_at", "revoked_by"])
            KioskEvent.objects.create(
                kiosk=kiosk,
                kind=KioskEventKind.REVOKED,
                actor=actor,
                credential_id=kiosk.credential_id,
            )
            log.warning("kiosk %s (%s) revoked by %s", kiosk.pk, kiosk.name, actor)
    return kiosk


def kiosk_enrol(*, credential: str, ip: str | None) -> Kiosk:
    """A branch technician enrols a kiosk's browser with its credential (the page then sets the
    cookie). Refused in words for anything but an active kiosk's current credential."""
    kiosk = kiosk_by_credential(credential)
    if kiosk is None:
        log.warning(
            "kiosk enrolment refused from %s (credential id %s)",
            ip,
            kiosk_credential_id(credential) or "malformed",
        )
        raise Refused(
            "That is not the current credential of an active kiosk (it may have been rotated or "
            "revoked). Ask an administrator for the kiosk's credential.",
            "这不是在用的自助柜员机凭证（可能已更换或吊销），请向管理员索取该机的凭证。",
        )
    now = timezone.now()
    with transaction.atomic():
        Kiosk.objects.filter(pk=kiosk.pk).update(
            enrolled_at=now, enrolled_ip=ip, last_seen_at=now, last_seen_ip=ip
        )
        KioskEvent.objects.create(
            kiosk=kiosk, kind=KioskEventKind.ENROLLED, ip=ip, credential_id=kiosk.credential_id
        )
    log.info("kiosk %s (%s) enrolled from %s", kiosk.pk, kiosk.name, ip)
    kiosk.refresh_from_db()
    return kiosk


def kiosk_seen(*, kiosk: Kiosk, ip: str | None) -> None:
    now = timezone.now()
    if (
        kiosk.last_seen_at is None
        or now - kiosk.last_seen_at > timedelta(seconds=KIOSK_SEEN_EVERY_S)
        or kiosk.last_seen_ip != ip
    ):
        Kiosk.objects.filter(pk=kiosk.pk).update(last_seen_at=now, last_seen_ip=ip)
