"""Retry GoCardless events whose processing failed (backoff passed) or was lost."""

import json

from django.core.management.base import BaseCommand

from gocardless.events_sweep import events_retry_due


class Command(BaseCommand):
    help = "Process due failed/stale GoCardless events now."

    def handle(self, *args, **options):
        self.stdout.write(json.dumps(events_retry_due()))
