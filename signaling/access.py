"""What a customer device proves at the edge: an enrolled kiosk, the bank's app, or a web page.

A customer socket is anonymous, but not all alike: who it is comes from what it *proves* — an
enrolled kiosk's credential (a cookie on the handshake), or a claim the bank's app backend signed
— never from what it says. :class:`Caller` holds the result, once per socket. Staff roles are
``videobank.access``; the customer's call token is ``queueing.access``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from queueing.selectors import call_get
from videobank.keys import local_key_file, parse_master_keys

from .errors import Refused
from .selectors import kiosk_by_credential, kiosk_credential_id, kiosk_current
from .services import kiosk_seen

log = logging.getLogger(__name__)

# The customer page's first-party device id: random, kept a year, carried by the socket's
# handshake; the per-device limits on call requests count by it (queueing/limits.py).
DEVICE_COOKIE = "vb_device"
DEVICE_COOKIE_MAX_AGE_S = 365 * 24 * 3600
_DEVICE_ID = re.compile(r"[A-Za-z0-9_-]{22,64}")


def device_id_valid(value: str | None) -> bool:
    return bool(value and _DEVICE_ID.fullmatch(value))


def device_cookie_ensure(request, response) -> None:
    """Give a browser its device id, once (the page's view calls this)."""
    if device_id_valid(request.COOKIES.get(DEVICE_COOKIE)):
        return
    response.set_cookie(
        DEVICE_COOKIE,
        secrets.token_urlsafe(24),
        max_age=DEVICE_COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="Lax",
        secure=settings.SESSION_COOKIE_SECURE,
    )


# --- who a customer socket is ------------------------------------------------------------------

WEB, APP, VTM = "web", "app", "vtm"


@dataclass(frozen=True)
class Caller:
    """Who a customer socket is, as proven. Per-device limits and the peripheral check read it:
    ``device`` is ``kiosk:<id>``, ``app:<device id>`` or empty (a web page: only its ``ip``)."""

    channel: str = WEB
    ip: str | None = None
    kiosk_id: int | None = None
    kiosk_credential_id: str = ""
    kiosk_name: str = ""
    app_device_id: str = ""
    vip: bool = False

    @property
    def device(self) -> str:
        if self.kiosk_id is not None:
            return f"kiosk:{self.kiosk_id}"
        if self.app_device_id:
            return f"app:{self.app_device_id}"
        return ""

    @property
    def actor(self) -> str:
        """How the call's timeline names what this socket did."""
        return f"kiosk:{self.kiosk_id}" if self.kiosk_id is not None else "customer"


# --- kiosks: a per-device credential, kept only as a hash ---------------------------------------

# The cookie the kiosk page carries after enrolment (HttpOnly, SameSite=Strict); a kiosk app or
# the Python client sends the same ``Cookie`` header on the socket's handshake. The credential's
# form and hash are read in ``selectors`` (``kiosk_credential_*``), a new one made in ``services``.
KIOSK_COOKIE = "vtm_kiosk"


def access_kiosk(credential: str | None, *, ip: str | None = None) -> Caller:
    """Who presents this kiosk credential: an enrolled kiosk (channel vtm), or — no credential,
    a malformed, unknown, rotated or revoked one — a web page."""
    if not credential:
        return Caller(channel=WEB, ip=ip)
    kiosk = kiosk_by_credential(credential)
    if kiosk is None:
        log.warning(
            "kiosk credential refused from %s (credential id %s)",
            ip,
            kiosk_credential_id(credential) or "malformed",
        )
        return Caller(channel=WEB, ip=ip)
    kiosk_seen(kiosk=kiosk, ip=ip)
    return Caller(
        channel=VTM,
        ip=ip,
        kiosk_id=kiosk.pk,
        kiosk_credential_id=kiosk.credential_id,
        kiosk_name=kiosk.name,
    )


NOT_A_KIOSK = (
    "Only a registered kiosk's card reader, document camera, printer or card dispenser may "
    "report here; this device is not an enrolled kiosk, so nothing was changed.",
    "只有已登记的自助柜员机的读卡器、高拍仪、打印机或发卡机可以上报；本设备不是已登记的自助柜员机，"
    "未做任何更改。",
)


def access_kiosk_call(*, caller: Caller, call_id: uuid.UUID) -> None:
    """May this socket speak for a kiosk's peripherals in this call? Only an enrolled kiosk whose
    credential is still the current one (a rotation or revocation stops it at once, open sockets
    included), in a call placed from a kiosk. Refused in words otherwise."""
    if caller.channel != VTM or caller.kiosk_id is None:
        raise Refused(*NOT_A_KIOSK)
    if not kiosk_current(kiosk_id=caller.kiosk_id, credential_id=caller.kiosk_credential_id):
        raise Refused(
            "This kiosk's credential was rotated or revoked: it must be enrolled again before its "
            "peripherals are believed; nothing was changed.",
            "本自助柜员机的凭证已更换或吊销，需重新登记后外设上报才有效；未做任何更改。",
        )
    call = call_get(call_id=call_id)
    if call is None or call.channel != VTM:
        raise Refused(
            "This call was not placed from a kiosk, so no peripheral may report in it; nothing "
            "was changed.",
            "该通话不是从自助柜员机发起的，外设不能在其中上报；未做任何更改。",
        )


# --- app claims: what the bank's app backend vouches for ----------------------------------------

APP_CLAIM_SKEW_S = 30  # clocks of the app backend and this server may differ this much
_CLAIM_CONTEXT = b"videobank.app-claim.v1"
_CLAIM = re.compile(r"^([A-Za-z0-9_-]{1,32})\.([A-Za-z0-9_-]{16,600})\.([A-Za-z0-9_-]{43})$")
_DEVICE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
LOCAL_CLAIM_KEY_ID = "local"
LOCAL_CLAIM_KEY_FILENAME = "app-claim.key"


@dataclass(frozen=True)
class AppClaim:
    device_id: str
    vip: bool
    expires_at: int
    claim_id: str


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_claim_keys(spec: str) -> dict[str, bytes]:
    """``"id:base64key,id2:base64key2"`` (keys of 32 bytes or more), newest first: the first
    signs, every one verifies. The form of every key setting (videobank.keys)."""
    keys = parse_master_keys(spec, setting="APP_CLAIM_KEYS", exact=False)
    bad = next((key_id for key_id in keys if not _CLAIM_KEY_ID.fullmatch(key_id)), None)
    if bad is not None:
        raise ImproperlyConfigured(
            f"APP_CLAIM_KEYS: key id {bad!r} must be letters, digits, - or _ (at most 32)"
        )
    return keys


_CLAIM_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


_keys_cache: dict[tuple[str, str, str], dict[str, bytes]] = {}
_keys_lock = threading.Lock()


def _local_claim_key(var_dir: Path) -> bytes:
    """The embedded profile's own claim key (made once, mode 0600), so ``manage.py app_claim``
    works in the demo; production has none unless APP_CLAIM_KEYS is set."""
    return local_key_file(Path(var_dir) / LOCAL_CLAIM_KEY_FILENAME)


def app_claim_keys() -> dict[str, bytes]:
    spec, profile = settings.APP_CLAIM_KEYS, getattr(settings, "PROFILE", "")
    cache_key = (spec, profile, str(settings.VAR_DIR))
    with _keys_lock:
        keys = _keys_cache.get(cache_key)
        if keys is None:
            keys = parse_claim_keys(spec)
            if not keys and profile == "embedded":
                keys = {LOCAL_CLAIM_KEY_ID: _local_claim_key(settings.VAR_DIR)}
            _keys_cache[cache_key] = keys
        return keys


def _claim_mac(key: bytes, key_id: str, payload: str) -> hmac.HMAC:
    return hmac.new(key, b".".join([_CLAIM_CONTEXT, key_id.encode(), payload.encode()]), "sha256")


def app_claim_issue(
    *, device_id: str, vip: bool = False, ttl_s: int | None = None, now: float | None = None
) -> str:
    """What the bank's app backend gives its app for one call (``manage.py app_claim`` mints
    one too): HMAC-SHA256 under the newest APP_CLAIM_KEYS key, good for ``ttl_s`` seconds."""
    if not _DEVICE_ID.match(device_id):
        raise ValueError("device_id: 1-64 of letters, digits and . _ : -")
    ttl = settings.APP_CLAIM_MAX_TTL_S if ttl_s is None else ttl_s
    if not 0 < ttl <= settings.APP_CLAIM_MAX_TTL_S:
        raise ValueError(f"ttl_s must be within 1..{settings.APP_CLAIM_MAX_TTL_S} s")
    keys = app_claim_keys()
    if not keys:
        raise ImproperlyConfigured("APP_CLAIM_KEYS is empty: no app claim can be signed")
    key_id, key = next(iter(keys.items()))
    issued = int(time.time() if now is None else now)
    body = {
        "ch": APP,
        "dev": device_id,
        "vip": bool(vip),
        "iat": issued,
        "exp": issued + int(ttl),
        "jti": secrets.token_hex(8),
    }
    payload = _b64url(json.dumps(body, separators=(",", ":")).encode())
    return f"{key_id}.{payload}.{_b64url(_claim_mac(key, key_id, payload).digest())}"


_CLAIM_FORGED = (
    "The app claim is not signed by this bank, so the call was not placed.",
    "手机银行凭证不是本行签发的，未发起通话。",
)


def app_claim_read(claim: str, *, now: float | None = None) -> AppClaim:
    """The app claim's content if this bank signed it and it is still good; refused in words
    (no call is placed) if forged, tampered with, signed by an unknown key, or expired."""
    match = _CLAIM.match(claim or "")
    if not match:
        raise Refused(*_CLAIM_FORGED)
    key_id, payload, mac = match.groups()
    keys = app_claim_keys()
    if not keys:
        raise Refused(
            "This server takes no app claims (APP_CLAIM_KEYS is not set); the call was not placed.",
            "本服务器未配置手机银行凭证密钥，不接受该凭证；未发起通话。",
        )
    key = keys.get(key_id)
    expected = _claim_mac(key or b"\0" * 32, key_id, payload).digest()
    try:
        given = _b64url_decode(mac)
    except (binascii.Error, ValueError):
        given = b""
    if not hmac.compare_digest(expected, given) or key is None:
        raise Refused(*_CLAIM_FORGED)
    try:
        body = json.loads(_b64url_decode(payload))
        if not isinstance(body, dict):
            raise ValueError
        channel, device_id, vip = body["ch"], body["dev"], body["vip"]
        issued, expires, claim_id = body["iat"], body["exp"], str(body.get("jti", ""))
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise Refused(*_CLAIM_FORGED) from None
    if (
        channel != APP
        or not isinstance(device_id, str)
        or not _DEVICE_ID.match(device_id)
        or not isinstance(vip, bool)
        or not isinstance(issued, int)
        or not isinstance(expires, int)
    ):
        raise Refused(*_CLAIM_FORGED)
    at = time.time() if now is None else now
    if expires - issued > settings.APP_CLAIM_MAX_TTL_S or issued > at + APP_CLAIM_SKEW_S:
        raise Refused(
            "The app claim's validity is not one this server accepts (too long, or issued in "
            "the future); the call was not placed.",
            "手机银行凭证的有效期不符合要求（过长或签发时间在未来）；未发起通话。",
        )
    if at >= expires:
        raise Refused(
            "The app claim has expired (they last a few minutes); the app asks the bank for a "
            "new one. The call was not placed.",
            "手机银行凭证已过期（有效期仅几分钟），请应用重新获取；未发起通话。",
        )
    return AppClaim(device_id=device_id, vip=vip, expires_at=expires, claim_id=claim_id)


# --- the call's channel: from proof, never from the client's word ------------------------------


def caller_for_call(*, socket: Caller, claim: str | None, channel: str | None) -> Caller:
    """Who places this ``call.request``: the socket's own identity, or — with a valid signed
    app claim — the app (VIP if the bank says so). ``channel``, if the client sends one, is
    only what it expects: a different answer is refused in words, no call is placed."""
    caller = socket
    if claim is not None:
        if socket.channel == VTM:
            raise Refused(
                "A kiosk's call carries no app claim; the call was not placed.",
                "自助柜员机的通话不应携带手机银行凭证；未发起通话。",
            )
        verified = app_claim_read(claim)
        caller = Caller(
            channel=APP, ip=socket.ip, app_device_id=verified.device_id, vip=verified.vip
        )
    if channel is not None and channel != caller.channel:
        raise Refused(*_CHANNEL_REFUSED.get(channel, _CHANNEL_REFUSED[WEB]))
    return caller


_CHANNEL_REFUSED = {
    VTM: (
        "Only an enrolled kiosk places kiosk (VTM) calls, and this device is not one (a branch "
        "technician enrols a kiosk at /kiosk/enrol/); the call was not placed.",
        "只有已登记的自助柜员机才能发起柜员机通话，本设备尚未登记（请网点技术人员在 /kiosk/enrol/ "
        "登记）；未发起通话。",
    ),
    APP: (
        "An app call needs the signed claim the bank's app backend gives the app, and none was "
        "sent; the call was not placed.",
        "手机银行通话需要银行后台签发给应用的凭证，本次未提供；未发起通话。",
    ),
    WEB: (
        "This device proved it is an enrolled kiosk or the bank's app, so it does not place a "
        "web call; the call was not placed.",
        "本设备已证明是已登记的自助柜员机或手机银行应用，不能以网页渠道发起通话；未发起通话。",
    ),
}
