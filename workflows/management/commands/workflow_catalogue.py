"""``manage.py workflow_catalogue [--json]``: the businesses a teller can do in a call."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from workflows.catalogue import catalogue_list


class Command(BaseCommand):
    help = "Print the workflow catalogue: key, name, identity level, steps."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="as JSON (a list of objects)")

    def handle(self, *args, **options) -> None:
        entries = catalogue_list()
        if options["json"]:
            rows = [{k: e[k] for k in ("key", "name", "identity_level", "steps")} for e in entries]
            self.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        for e in entries:
            self.stdout.write(
                f"{e['key']:<24} {e['name']['zh']} / {e['name']['en']}\n"
                f"{'':<24} identity: {e['identity_level']}; steps: {' → '.join(e['steps'])}"
            )
