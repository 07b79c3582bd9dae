"""ICE servers: STUN for everyone, short-lived TURN credentials for a call being connected.

A TURN server relays media for whoever holds a valid credential, so a credential handed to every
anonymous socket (as a static ``ICE_SERVERS`` password was) lets anyone relay anything through
the bank's TURN server, for as long as the password lives. Instead, credentials follow the TURN
REST API as coturn implements it (``use-auth-secret`` / ``static-auth-secret``):

- user name ``"<expiry unix time>:<call id>"``;
- password ``base64(HMAC-SHA1(TURN_SECRET, user name))``.

The TURN server checks both without asking us, refuses an expired one, and its logs name the
call. They are minted on the socket that hands them out (never put on the channel layer), only
for the two sides of a call that is connected, and live ``TURN_TTL_S`` (at most 10 minutes:
coturn checks the expiry when an allocation is made, so a longer call keeps its relay).
Rotating ``TURN_SECRET``: give coturn the new secret alongside the old one (its ``turn_secret``
table holds several), switch ours, drop the old one after ``TURN_TTL_S``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid

from django.conf import settings

MAX_TTL_S = 600


def ice_servers_public() -> list[dict]:
    """What any socket may know (in ``hello``): STUN URLs, without credentials."""
    return [{"urls": list(settings.STUN_URLS)}] if settings.STUN_URLS else []


def turn_credential(*, call_id: uuid.UUID | str, now: float | None = None) -> dict[str, str]:
    """A TURN user name and password for this call, valid for ``TURN_TTL_S`` from ``now``."""
    ttl = min(int(settings.TURN_TTL_S), MAX_TTL_S)
    expiry = int(now if now is not None else time.time()) + ttl
    username = f"{expiry}:{call_id}"
    digest = hmac.new(settings.TURN_SECRET.encode(), username.encode(), hashlib.sha1).digest()
    return {"username": username, "credential": base64.b64encode(digest).decode("ascii")}


def ice_servers_for_call(*, call_id: uuid.UUID | str) -> list[dict]:
    """The ICE servers for one side of a call being connected: STUN, and TURN with a fresh
    credential when a TURN server is configured."""
    servers = ice_servers_public()
    if settings.TURN_URLS and settings.TURN_SECRET:
        servers.append({"urls": list(settings.TURN_URLS), **turn_credential(call_id=call_id)})
    return servers


def ice_servers_media_worker() -> list[dict]:
    """The media worker's own: STUN only (it is the server end, reachable by the TURN server; it
    needs no relay of its own). Always a list, never None: aiortc would then ask a public STUN
    server."""
    return ice_servers_public()
