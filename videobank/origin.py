"""The signaling sockets' Origin check: scheme, host and port.

A browser attaches a staff member's session cookie to any WebSocket a page opens, whichever site
the page came from; the Origin header is what tells the server which site that was. Channels'
``AllowedHostsOriginValidator`` compares only the host name, so a page served by any port of an
allowed host (another service on the same machine, a plain-HTTP listener) could open a socket
with the teller's session. Here the Origin must be this very site: the scheme (``https`` for a
``wss`` socket, or when the TLS-terminating proxy says so through ``SECURE_PROXY_SSL_HEADER``),
the Host the socket was opened to (validated against ``ALLOWED_HOSTS``) and its port - or one of
``CSRF_TRUSTED_ORIGINS``, compared the same way (``https://*.bank.example`` covers subdomains).

A socket without an Origin is refused too. Every browser sends one with each WebSocket, and so
does our Python client (``signaling/client.py``); a native app sets it to the bank's site. Since
only non-browser clients can omit it, accepting them would be safe against cross-site use of a
cookie, but no client we know needs it and one rule is easier to reason about (it is also what
Channels' validator did before).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin_parts(value: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of an origin, the port made explicit; None if it is not one."""
    try:
        parts = urlsplit(value.strip())
        scheme, host, port = parts.scheme.lower(), (parts.hostname or ""), parts.port
    except ValueError:  # a port out of range, a bad IPv6 literal
        return None
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return scheme, host.lower().rstrip("."), port or DEFAULT_PORTS[scheme]


def _headers(scope) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in scope.get("headers", [])
    }


def _secure(scope, headers: dict[str, str]) -> bool:
    if scope.get("scheme") == "wss":
        return True
    if settings.SECURE_PROXY_SSL_HEADER:
        meta_name, expected = settings.SECURE_PROXY_SSL_HEADER
        name = meta_name.removeprefix("HTTP_").replace("_", "-").lower()
        value = headers.get(name, "").split(",")[0].strip()
        return value == expected
    return False


def socket_site(scope) -> tuple[str, str, int] | None:
    """The site this socket was opened to, as an origin's parts (None if the Host is missing
    or not one of ``ALLOWED_HOSTS``)."""
    headers = _headers(scope)
    host = headers.get("host", "")
    if settings.USE_X_FORWARDED_HOST and "x-forwarded-host" in headers:
        host = headers["x-forwarded-host"].strip()  # as Django's request.get_host() takes it
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    scheme = "https" if _secure(scope, headers) else "http"
    return _origin_parts(f"{scheme}://{host}")


def _trusted(origin: tuple[str, str, int]) -> bool:
    scheme, host, port = origin
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        wildcard = "://*." in entry
        trusted = _origin_parts(entry.replace("://*.", "://", 1))
        if trusted is None or (trusted[0], trusted[2]) != (scheme, port):
            continue
        if host == trusted[1] or (wildcard and host.endswith("." + trusted[1])):
            return True
    return False


def origin_allowed(scope) -> bool:
    raw = _headers(scope).get("origin")
    origin = _origin_parts(raw) if raw else None
    if origin is None:
        return False
    return origin == socket_site(scope) or _trusted(origin)


class SameOriginValidator:
    """ASGI middleware for websockets: closes the handshake (no ``hello``) unless the Origin is
    this site (see the module doc)."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            headers = _headers(scope)
            log.warning(
                "socket %s refused: Origin %r is not this site (Host %r)",
                scope.get("path"),
                headers.get("origin"),
                headers.get("host"),
            )
            denier = WebsocketDenier()
            return await denier(scope, receive, send)
        return await self.application(scope, receive, send)
