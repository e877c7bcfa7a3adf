"""Create or update the django-q2 schedules of the GoCardless jobs (idempotent)."""

from django.core.management.base import BaseCommand
from django_q.models import Schedule

SCHEDULES = {
    # name: (function, minutes)
    "gocardless.events_sweep": ("gocardless.tasks.events_sweep_task", 1),
    "gocardless.events_poll": ("gocardless.tasks.events_poll_task", 15),
}


class Command(BaseCommand):
    help = "Upsert the GoCardless sweeper (every minute) and polling (every 15 minutes)."

    def handle(self, *args, **options):
        for name, (func, minutes) in SCHEDULES.items():
            Schedule.objects.update_or_create(
                name=name,
                defaults={
                    "func": func,
                    "schedule_type": Schedule.MINUTES,
                    "minutes": minutes,
                    "repeats": -1,
                },
            )
            self.stdout.write(f"{name}: every {minutes} min")
