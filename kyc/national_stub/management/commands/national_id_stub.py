import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.core.servers.basehttp import ThreadedWSGIServer, run
from django.core.wsgi import get_wsgi_application

from videobank.checks import stub_key_problems


class Command(BaseCommand):
    help = (
        "Serve the national ID check stub as its own process (a threaded WSGI server with only "
        "the stub's URLs: /v1/<channel>/verify, /v1/health; /v1/_control with --dev-endpoints). "
        "Its channels' base URLs are http://HOST:PORT/v1/primary and "
        "http://HOST:PORT/v1/secondary. Refuses to start without NATIONAL_STUB_API_KEY (and, "
        "with --dev-endpoints, NATIONAL_STUB_ADMIN_KEY)."
    )

    # A stand-in for an outside system: the project's checks are the main server's business,
    # and skipping them keeps start-up short.
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8020, help="0 picks a free port")
        parser.add_argument(
            "--dev-endpoints",
            action="store_true",
            help="also serve the developer endpoint /v1/_control (fault switches) behind "
            "NATIONAL_STUB_ADMIN_KEY: for tests and demos, never for a stand-in a bank relies on",
        )

    def handle(self, *args, host: str, port: int, dev_endpoints: bool, **options):
        problems = stub_key_problems(
            api=("NATIONAL_STUB_API_KEY", getattr(settings, "NATIONAL_STUB_API_KEY", "")),
            admin=("NATIONAL_STUB_ADMIN_KEY", getattr(settings, "NATIONAL_STUB_ADMIN_KEY", "")),
            dev_endpoints=dev_endpoints,
        )
        if problems:
            raise CommandError(
                "the stub refuses to start: " + "; ".join(problems) + " (set random keys)"
            )
        # Only the stub's routes in this process: the bank's pages and admin are not here; its
        # developer endpoints only when asked for.
        settings.ROOT_URLCONF = (
            "kyc.national_stub.standalone_dev_urls"
            if dev_endpoints
            else "kyc.national_stub.standalone_urls"
        )
        handler = get_wsgi_application()

        def on_bind(bound_port: int) -> None:
            channels = getattr(settings, "NATIONAL_STUB_CHANNELS", ("primary", "secondary"))
            self.stdout.write(
                f"national ID stub listening on http://{host}:{bound_port}/v1/ "
                f"(channels: {', '.join(channels)})"
            )
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
                on_bind=on_bind,
                server_cls=ThreadedWSGIServer,
            )
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from exc
        except KeyboardInterrupt:
            sys.exit(0)
