"""Catch up on GoCardless events by polling (the fallback when webhooks were missed)."""

import json

from django.core.management.base import BaseCommand, CommandError

from gocardless.models import GoCardlessConnection
from gocardless.polling import events_poll, events_poll_all


class Command(BaseCommand):
    help = "Poll GET /events for one tenant (--tenant SLUG) or every connected tenant."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="tenant slug (default: all connected tenants)")

    def handle(self, *args, tenant=None, **options):
        if tenant:
            connection = GoCardlessConnection.objects.select_related("tenant").filter(
                tenant__slug=tenant
            ).first()
            if connection is None:
                raise CommandError(f"no GoCardless connection for tenant {tenant!r}")
            result = {tenant: events_poll(connection=connection)}
        else:
            result = {str(k): v for k, v in events_poll_all().items()}
        self.stdout.write(json.dumps(result, indent=2, default=str))
