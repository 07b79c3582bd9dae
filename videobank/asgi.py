"""ASGI entry point for daphne.

On the embedded profile the queue ticker and the media worker live inside this process, started
on the first connection inside daphne's event loop. In production both are processes of their own
(``manage.py queue_ticker``, ``manage.py media_worker``).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "videobank.settings")
django_asgi_app = get_asgi_application()

# Daphne runs no system checks: production refuses to serve here with unset or published keys,
# or an outside system pointed at a stub (videobank/checks.py).
from videobank.checks import production_refuse_unsafe  # noqa: E402

production_refuse_unsafe("daphne (videobank.asgi)")

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from queueing.notify import remember_server_loop  # noqa: E402
from queueing.ticker import ensure_ticker  # noqa: E402
from signaling.routing import websocket_urlpatterns  # noqa: E402
from videobank.body_limit import BodySizeLimit  # noqa: E402
from videobank.origin import SameOriginValidator  # noqa: E402


class BackgroundLoops:
    """Starts this process's background loops on the first ASGI call: the queue ticker (or, when
    it is a process of its own, hands it the queue broadcasts) and, on the embedded profile, the
    media worker."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        remember_server_loop()
        if settings.QUEUE_TICKER != "off":
            ensure_ticker()
        if settings.MEDIA_WORKER_EMBEDDED:
            # The media engine (aiortc, the recorders) loads only in a server that runs one.
            from signaling.media.worker import ensure_embedded_worker

            await ensure_embedded_worker()
        return await self.app(scope, receive, send)


application = BackgroundLoops(
    ProtocolTypeRouter(
        {
            # Static files (a few CSS/JS modules) come from daphne itself; a deployment may put
            # a CDN or reverse proxy in front instead (SERVE_STATIC=false). Request bodies are
            # capped (HTTP_BODY_MAX_BYTES) before Django reads them.
            "http": BodySizeLimit(
                ASGIStaticFilesHandler(django_asgi_app)
                if settings.SERVE_STATIC
                else django_asgi_app
            ),
            # The Origin must be this site, port and scheme included (Channels' own
            # AllowedHostsOriginValidator compares the host name only): videobank/origin.py.
            "websocket": SameOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
        }
    )
)
