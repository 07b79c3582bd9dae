from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from queueing.services import teller_profile_set

# user, role groups, skills (level 1-5), teller groups
DEMO_USERS = [
    ("teller1", ["teller"], {"general": 3, "cards": 3, "deposits": 2}, []),
    ("teller2", ["teller"], {"general": 2, "corporate": 4, "deposits": 3}, []),
    ("supervisor1", ["supervisor", "teller"], {"general": 2}, ["generalist"]),
    ("qa1", ["qa"], None, []),
]


class Command(BaseCommand):
    help = "Create the demo staff accounts (embedded profile only)."

    def handle(self, *args, **options):
        if settings.PROFILE != "embedded":
            raise CommandError("Demo accounts are refused on the production profile.")
        password = settings.DEMO_PASSWORD
        User = get_user_model()
        for username, groups, skills, teller_groups in DEMO_USERS:
            user, _ = User.objects.get_or_create(username=username)
            user.set_password(password)
            user.is_staff = "supervisor" in groups
            user.save()
            user.groups.set([Group.objects.get(name=g) for g in groups])
            if skills is not None:
                teller_profile_set(teller=user, skills=skills, groups=teller_groups)
        from kyc.national_stub.seed import registry_seed

        registry_seed()  # test citizens of the national-ID stub (see README "Identity checks")
        from workflows.corebank_stub.seed import corebank_seed

        corebank_seed()  # their accounts, cards and PINs in the core-banking stub
        names = ", ".join(u for u, *_ in DEMO_USERS)
        self.stdout.write(f"Demo accounts: {names} — password: {password}")
