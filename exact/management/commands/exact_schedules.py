"""Register (or refresh) the Exact periodic schedules for every tenant with a connection."""

from django.core.management.base import BaseCommand

from exact.models import ConnectionStatus, ExactConnection
from exact.schedules import exact_schedules_ensure, exact_schedules_remove


class Command(BaseCommand):
    help = "Create/update django-q2 schedules: exact-sync:<tenant id> and exact-keepalive."

    def handle(self, *args, **options):
        for connection in ExactConnection.objects.select_related("tenant"):
            if connection.status == ConnectionStatus.DISCONNECTED:
                removed = exact_schedules_remove(tenant=connection.tenant)
                if removed:
                    self.stdout.write(f"{connection.tenant}: schedule removed (disconnected)")
                continue
            names = exact_schedules_ensure(tenant=connection.tenant)
            self.stdout.write(f"{connection.tenant}: {', '.join(names)}")
