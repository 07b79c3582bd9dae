from videobank.outside.stubs.command import StubCommand
from workflows.corebank_stub.services import KEYS


class Command(StubCommand):
    help = (
        "Serve the core-banking stub as its own process (a threaded WSGI server with only the "
        "stub's API under /v1/; its developer endpoints with --dev-endpoints). Point the client "
        "at it with COREBANK_URL=http://HOST:PORT/v1 and COREBANK_API_KEY = its "
        "COREBANK_STUB_API_KEY. Refuses to start without that key (and, with --dev-endpoints, "
        "COREBANK_STUB_ADMIN_KEY)."
    )
    keys = KEYS
    urls = "workflows.corebank_stub.urls"
    default_port = 8030
    dev_endpoints_help = (
        "the developer endpoints /v1/_control (fault switches) and /v1/_dev/otp (the last "
        "one-time code)"
    )

    def listening(self, host: str, port: int) -> str:
        return f"core-bank stub listening on http://{host}:{port}/v1/"
