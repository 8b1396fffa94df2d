"""Regenerate the endpoint reference in docs/api.md from the OpenAPI schema (smsplatform.apidoc)."""

from django.core.management.base import BaseCommand, CommandError

from smsplatform.apidoc import DOC, update_doc


class Command(BaseCommand):
    help = "Rewrite the generated endpoint reference of docs/api.md (--check: only compare)."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true")

    def handle(self, *args, **options):
        current = update_doc(check=options["check"])
        if options["check"] and not current:
            raise CommandError(f"{DOC} is out of date: run `manage.py api_reference`.")
        self.stdout.write(f"{DOC}: {'up to date' if current else 'rewritten'}")
