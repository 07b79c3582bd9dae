from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from workflows.corebank.masking import id_number_mask
from workflows.corebank_stub.seed import CUSTOMERS, corebank_customer_register, corebank_seed


class Command(BaseCommand):
    help = (
        "Seed the core-banking stub with its demo customers (accounts, one dormant; cards, one "
        "reported lost; reserved mobiles; limits; PINs — listed in "
        "workflows/corebank_stub/seed.py). --customer NAME:ID_NUMBER[:PIN[:BALANCE]] makes one "
        "more person a customer with a current account and a card."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--customer", action="append", default=[], metavar="NAME:ID_NUMBER[:PIN[:BALANCE]]"
        )

    def handle(self, *args, customer: list[str], **options):
        extra = []
        for spec in customer:
            parts = spec.split(":")
            if not 2 <= len(parts) <= 4 or not parts[0] or not parts[1]:
                raise CommandError(f"--customer {spec!r}: expected NAME:ID_NUMBER[:PIN[:BALANCE]]")
            try:
                balance = Decimal(parts[3]) if len(parts) == 4 else Decimal("20000.00")
            except InvalidOperation as exc:
                raise CommandError(f"--customer {spec!r}: {parts[3]!r} is not an amount") from exc
            extra.append((parts[0], parts[1], parts[2] if len(parts) >= 3 else "147258", balance))
        refs = corebank_seed()
        lines = [f"core-bank stub: {len(refs)} demo customers seeded ({', '.join(refs)})"]
        for name, number, pin, balance in extra:
            try:
                made = corebank_customer_register(
                    id_number=number, name=name, pin=pin, balance=balance
                )
            except ValueError as exc:
                raise CommandError(f"--customer {name}: {exc}") from exc
            lines.append(f"  + {made['customer_ref']} {id_number_mask(number)}")
        # PINs are never printed (logs of a run are searched for them): they are in the seed
        # module's docstring.
        lines.append(
            f"demo PINs and accounts of {', '.join(c.name for c in CUSTOMERS)}: see "
            "workflows/corebank_stub/seed.py"
        )
        self.stdout.write("\n".join(lines))
