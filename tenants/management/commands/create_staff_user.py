"""Create an admin login for one operator role, e.g. an auditor (docs/audit.md "Creating an auditor").

    manage.py create_staff_user li.auditor --role auditor --email li@example.com [--full-numbers]

Prints the generated password once; the creation is recorded in the operation trail (R-AUD-3).
"""

from django.core.management.base import BaseCommand, CommandError

from smsplatform.errors import DomainError
from tenants.services import Actor
from tenants.staff import ROLES, create_staff_user


class Command(BaseCommand):
    help = "Create a staff user in one role group (operator, reviewer, finance, auditor)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--full-numbers",
            action="store_true",
            help="let this person see unmasked recipient numbers (delivery.view_full_number, R-AUD-2)",
        )

    def handle(self, *args, **options):
        try:
            user, password = create_staff_user(
                username=options["username"],
                role=options["role"],
                email=options["email"],
                full_numbers=options["full_numbers"],
                actor=Actor.system("manage.py create_staff_user"),
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Created {options['role']} {user.username}. Password (shown once): {password}")
        self.stdout.write("They log in at /admin/ and should change it under the user menu (Change password).")
