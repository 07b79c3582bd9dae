"""Default skills, what each business needs, and when its calls relax (bank configuration,
editable in the admin)."""

from django.db import migrations

SKILLS = [
    ("general", "综合业务", "General services"),
    ("cards", "银行卡", "Cards"),
    ("deposits", "存款", "Deposits"),
    ("corporate", "对公业务", "Corporate banking"),
]

# business: [(skill, min level)], [(after_s, kind, value)]
REQUIREMENTS = {
    "password_reset": ([("general", 1)], [(60, "any", ""), (180, "group", "generalist")]),
    "card_loss": (
        [("cards", 2)],
        [(30, "lower", "1"), (90, "any", ""), (180, "group", "generalist")],
    ),
    "account_change": ([("general", 2)], [(30, "lower", "1"), (180, "group", "generalist")]),
    "time_deposit": (
        [("deposits", 2)],
        [(30, "lower", "1"), (90, "any", ""), (180, "group", "generalist")],
    ),
    "corporate_account": (
        [("corporate", 3)],
        [(30, "lower", "1"), (90, "any", ""), (180, "group", "generalist")],
    ),
    "consultation": ([("general", 1)], [(60, "group", "generalist")]),
}


def seed(apps, schema_editor):
    Skill = apps.get_model("queueing", "Skill")
    Business = apps.get_model("queueing", "Business")
    BusinessSkill = apps.get_model("queueing", "BusinessSkill")
    RelaxationStep = apps.get_model("queueing", "RelaxationStep")
    skills = {}
    for key, zh, en in SKILLS:
        skills[key], _ = Skill.objects.update_or_create(
            key=key, defaults={"name_zh": zh, "name_en": en}
        )
    for key, (requirements, steps) in REQUIREMENTS.items():
        business = Business.objects.filter(key=key).first()
        if business is None:
            continue
        for skill, level in requirements:
            BusinessSkill.objects.update_or_create(
                business=business, skill=skills[skill], defaults={"min_level": level}
            )
        if not RelaxationStep.objects.filter(business=business).exists():
            for after_s, kind, value in steps:
                RelaxationStep.objects.create(
                    business=business, after_s=after_s, kind=kind, value=value
                )


class Migration(migrations.Migration):
    dependencies = [("queueing", "0003_routing")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
