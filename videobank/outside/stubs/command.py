"""``manage.py <stub>``: a stub served as its own process, for tests, demos and trials without
the real system — a threaded WSGI server with only the stub's URLs (``urls``); its developer
endpoints only with ``--dev-endpoints``; it refuses to start while its API key (and, with
``--dev-endpoints``, its admin key) is unset, published, or the same as the other."""

from __future__ import annotations

import sys
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.core.servers.basehttp import ThreadedWSGIServer, run
from django.core.wsgi import get_wsgi_application

from .keys import StubKeys


class StubCommand(BaseCommand):
    keys: StubKeys
    urls = ""  # the stub's URL module: api_urlpatterns, dev_urlpatterns, app_name
    default_port = 0
    dev_endpoints_help = ""  # what --dev-endpoints adds

    # A stand-in for an outside system: the project's checks are the main server's business,
    # and skipping them keeps start-up short.
    requires_system_checks: list = []

    def listening(self, host: str, port: int) -> str:
        """The line the process prints once it listens (tests wait for "listening on")."""
        raise NotImplementedError

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--port", type=int, default=self.default_port, help="0 picks a free port"
        )
        parser.add_argument(
            "--dev-endpoints",
            action="store_true",
            help=f"also serve {self.dev_endpoints_help} behind {self.keys.admin_setting}: for "
            "tests and demos, never for a stand-in a bank relies on",
        )

    def handle(self, *args: Any, host: str, port: int, dev_endpoints: bool, **options: Any):
        problems = self.keys.start_problems(dev_endpoints=dev_endpoints)
        if problems:
            raise CommandError(
                "the stub refuses to start: " + "; ".join(problems) + " (set random keys)"
            )
        # Only the stub's routes in this process: the bank's pages and admin are not here; its
        # developer endpoints only when asked for.
        settings.OUTSIDE_STUB_URLS = self.urls
        settings.OUTSIDE_STUB_DEV_ENDPOINTS = dev_endpoints
        settings.ROOT_URLCONF = "videobank.outside.stubs.urls"
        handler = get_wsgi_application()

        def on_bind(bound_port: int) -> None:
            self.stdout.write(self.listening(host, bound_port))
            self.stdout.flush()

        try:
            # A thread per request; ThreadedWSGIServer closes the thread's database connections
            # after each request (a plain ThreadingMixIn server would leave them to the GC).
            run(
                host,
                port,
                handler,
                ipv6=":" in host,
                threading=False,
                on_bind=on_bind,  # type: ignore[arg-type]  # Django passes the int port
                server_cls=ThreadedWSGIServer,
            )
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from exc
        except KeyboardInterrupt:
            sys.exit(0)
