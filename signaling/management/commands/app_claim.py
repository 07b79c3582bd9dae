"""Mint an app claim, as the bank's app backend does for its app before each call (and tests)."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from signaling.access import app_claim_issue


class Command(BaseCommand):
    help = (
        "Print a signed app claim (HMAC-SHA256 under the newest APP_CLAIM_KEYS key) for a "
        "call.request's `claim`: channel app, this device, VIP if asked, valid a few minutes."
    )

    def add_arguments(self, parser):
        parser.add_argument("--device", required=True, help="the app's device id (1-64 chars)")
        parser.add_argument("--vip", action="store_true", help="the customer is a VIP")
        parser.add_argument(
            "--ttl",
            type=int,
            default=None,
            help=f"seconds of validity (default and most: APP_CLAIM_MAX_TTL_S, "
            f"{settings.APP_CLAIM_MAX_TTL_S})",
        )

    def handle(self, *args, **options):
        try:
            claim = app_claim_issue(
                device_id=options["device"], vip=options["vip"], ttl_s=options["ttl"]
            )
        except (ValueError, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(claim)
