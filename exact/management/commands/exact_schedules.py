"""Register (or refresh) Exact's periodic jobs; `manage.py schedules` does this for every app."""

from django.core.management.base import BaseCommand

from exact.schedules import exact_schedules_ensure


class Command(BaseCommand):
    help = (
        "Create/update the django-q2 schedules exact.sync_due (the sync sweep, every minute) "
        "and exact-keepalive (daily); removes per-tenant exact-sync:<tenant id> rows."
    )

    def handle(self, *args, **options):
        self.stdout.write(", ".join(exact_schedules_ensure()))
