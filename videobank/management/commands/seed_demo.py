from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from kyc.national_stub.seed import registry_seed
from queueing.services import teller_profile_set
from signaling.models import Kiosk
from signaling.services import kiosk_create, kiosk_rotate
from workflows.corebank_stub.seed import corebank_seed

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
        registry_seed()  # test citizens of the national-ID stub (see README "Identity checks")
        corebank_seed()  # their accounts, cards and PINs in the core-banking stub
        names = ", ".join(u for u, *_ in DEMO_USERS)
        self.stdout.write(f"Demo accounts: {names} — password: {password}")
        credential = demo_kiosk_credential()
        self.stdout.write(
            f"Demo kiosk {DEMO_KIOSK!r}: open /kiosk/enrol/ in the kiosk's browser and paste "
            f"{credential} (new with every seed; the previous one no longer works)."
        )


DEMO_KIOSK = "Demo kiosk"


def demo_kiosk_credential() -> str:
    """Register the demo kiosk, or rotate its credential: a random one per seed, never a
    published constant."""
    kiosk = Kiosk.objects.filter(name=DEMO_KIOSK, revoked_at__isnull=True).first()
    if kiosk is None:
        for revoked in Kiosk.objects.filter(name=DEMO_KIOSK):  # the name is unique: free it
            revoked.name = f"{DEMO_KIOSK} (revoked #{revoked.pk})"
            revoked.save(update_fields=["name"])
        _, credential = kiosk_create(name=DEMO_KIOSK, branch="Demo branch", actor="seed_demo")
    else:
        _, credential = kiosk_rotate(kiosk_id=kiosk.pk, actor="seed_demo")
    return credential
