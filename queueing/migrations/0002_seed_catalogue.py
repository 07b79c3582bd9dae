"""The business catalogue and the staff role groups every installation starts with."""

from django.db import migrations

BUSINESSES = [
    ("password_reset", "密码重置", "Password reset"),
    ("card_loss", "借记卡挂失", "Debit card loss report"),
    ("account_change", "账户信息变更", "Account details change"),
    ("time_deposit", "定期存款", "Time deposit"),
    ("corporate_account", "对公开户", "Corporate account opening"),
    ("consultation", "业务咨询", "Consultation"),
]

GROUPS = ["teller", "supervisor", "qa", "admin"]


def seed(apps, schema_editor):
    Business = apps.get_model("queueing", "Business")
    Group = apps.get_model("auth", "Group")
    for order, (key, zh, en) in enumerate(BUSINESSES):
        Business.objects.update_or_create(
            key=key, defaults={"name_zh": zh, "name_en": en, "sort_order": order}
        )
    for name in GROUPS:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [("queueing", "0001_initial"), ("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
