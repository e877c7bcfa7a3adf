"""Refresh the mirrors of subscriptions and instalment schedules from GoCardless' lists."""

import json

from django.core.management.base import BaseCommand, CommandError

from gocardless.models import ConnectionStatus, GoCardlessConnection
from gocardless.plans_refresh import plans_refresh


class Command(BaseCommand):
    help = ("Fetch every subscription and instalment schedule of one tenant (--tenant SLUG) "
            "or of every connected tenant into their mirrors.")

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="tenant slug (default: all connected tenants)")

    def handle(self, *args, tenant=None, **options):
        connections = GoCardlessConnection.objects.select_related("tenant")
        if tenant:
            connections = connections.filter(tenant__slug=tenant)
            if not connections.exists():
                raise CommandError(f"no GoCardless connection for tenant {tenant!r}")
        else:
            connections = connections.filter(status=ConnectionStatus.CONNECTED)
        result = {}
        for connection in connections:
            result[connection.tenant.slug] = plans_refresh(connection=connection)
        self.stdout.write(json.dumps(result, indent=2, default=str))
