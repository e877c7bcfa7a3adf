"""Create or update the django-q2 schedules of the GoCardless jobs (idempotent).

`manage.py schedules` registers every app's jobs; this one only GoCardless's."""

from django.core.management.base import BaseCommand

from gocardless.schedules import SCHEDULES, gocardless_schedules_ensure


class Command(BaseCommand):
    help = "Upsert the GoCardless sweeper (every minute) and polling (every 15 minutes)."

    def handle(self, *args, **options):
        for name in gocardless_schedules_ensure():
            self.stdout.write(f"{name}: every {SCHEDULES[name][1]} min")
