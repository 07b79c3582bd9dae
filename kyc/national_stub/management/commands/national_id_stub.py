from django.conf import settings

from kyc.national_stub.services import KEYS
from videobank.outside.stubs.command import StubCommand


class Command(StubCommand):
    help = (
        "Serve the national ID check stub as its own process (a threaded WSGI server with only "
        "the stub's URLs: /v1/<channel>/verify, /v1/health; /v1/_control with --dev-endpoints). "
        "Its channels' base URLs are http://HOST:PORT/v1/primary and "
        "http://HOST:PORT/v1/secondary. Refuses to start without NATIONAL_STUB_API_KEY (and, "
        "with --dev-endpoints, NATIONAL_STUB_ADMIN_KEY)."
    )
    keys = KEYS
    urls = "kyc.national_stub.urls"
    default_port = 8020
    dev_endpoints_help = "the developer endpoint /v1/_control (fault switches)"

    def listening(self, host: str, port: int) -> str:
        channels = getattr(settings, "NATIONAL_STUB_CHANNELS", ("primary", "secondary"))
        return (
            f"national ID stub listening on http://{host}:{port}/v1/ "
            f"(channels: {', '.join(channels)})"
        )
