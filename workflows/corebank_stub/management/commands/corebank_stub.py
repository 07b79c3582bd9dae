import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.core.servers.basehttp import ThreadedWSGIServer, run
from django.core.wsgi import get_wsgi_application

from videobank.checks import stub_key_problems
from workflows.corebank_stub.conf import stub_setting


class Command(BaseCommand):
    help = (
        "Serve the core-banking stub as its own process (a threaded WSGI server with only the "
        "stub's API under /v1/; its developer endpoints with --dev-endpoints). Point the client "
        "at it with COREBANK_URL=http://HOST:PORT/v1 and COREBANK_API_KEY = its "
        "COREBANK_STUB_API_KEY. Refuses to start without that key (and, with --dev-endpoints, "
        "COREBANK_STUB_ADMIN_KEY)."
    )

    # A stand-in for an outside system: the project's checks are the main server's business,
    # and skipping them keeps start-up short.
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8030, help="0 picks a free port")
        parser.add_argument(
            "--dev-endpoints",
            action="store_true",
            help="also serve the developer endpoints /v1/_control (fault switches) and "
            "/v1/_dev/otp (the last one-time code) behind COREBANK_STUB_ADMIN_KEY: for tests and "
            "demos, never for a stand-in a bank relies on",
        )

    def handle(self, *args, host: str, port: int, dev_endpoints: bool, **options):
        problems = stub_key_problems(
            api=("COREBANK_STUB_API_KEY", stub_setting("COREBANK_STUB_API_KEY", "")),
            admin=("COREBANK_STUB_ADMIN_KEY", stub_setting("COREBANK_STUB_ADMIN_KEY", "")),
            dev_endpoints=dev_endpoints,
        )
        if problems:
            raise CommandError(
                "the stub refuses to start: " + "; ".join(problems) + " (set random keys)"
            )
        # Only the stub's routes in this process: the bank's pages and admin are not here; its
        # developer endpoints only when asked for.
        settings.ROOT_URLCONF = (
            "workflows.corebank_stub.standalone_dev_urls"
            if dev_endpoints
            else "workflows.corebank_stub.standalone_urls"
        )
        handler = get_wsgi_application()

        def on_bind(bound_port: int) -> None:
            self.stdout.write(f"core-bank stub listening on http://{host}:{bound_port}/v1/")
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
