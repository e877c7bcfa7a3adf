"""Register every periodic job of the product with django-q2 (safe to run again).

    manage.py schedules          # upsert all schedules, print them
    manage.py schedules --list   # only print what is registered

Run it after each deploy (or let `make demo` run it). Every job is installation-wide: the
periodic sweeps pick the tenants that are due themselves (an inactive tenant or a disconnected
Exact connection is simply not picked), so no schedule changes when tenants come and go.
"""

from django.core.management.base import BaseCommand
from django_q.models import Schedule

from exact.schedules import exact_schedules_ensure
from gocardless.schedules import gocardless_schedules_ensure
from reconciliation.bookings.schedules import booking_schedules_ensure
from reconciliation.collection.schedules import collection_schedules_ensure
from reconciliation.customers.schedules import customer_schedules_ensure


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules of every app."

    def add_arguments(self, parser):
        parser.add_argument("--list", action="store_true", help="only list the schedules")

    def handle(self, *args, **options):
        if not options["list"]:
            gocardless_schedules_ensure()
            customer_schedules_ensure()
            collection_schedules_ensure()
            booking_schedules_ensure()
            exact_schedules_ensure()
        for schedule in Schedule.objects.order_by("name"):
            every = (
                f"every {schedule.minutes} min"
                if schedule.schedule_type == Schedule.MINUTES
                else schedule.get_schedule_type_display().lower()
            )
            self.stdout.write(f"{schedule.name:<32} {every:<14} {schedule.func}")
