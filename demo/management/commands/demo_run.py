"""Run the product end to end for the demo tenant, against the local simulators.

    manage.py demo_run [--exact-url http://127.0.0.1:8101] [--gocardless-url http://127.0.0.1:8102]

Seeds the simulated Exact division and GoCardless account, connects the demo tenant to both
(Exact through the real OAuth code exchange), syncs, matches and invites customers, lets the
payers complete the hosted page, runs a collection (preview, approved by the demo user; the
subscription's invoice left to the subscription), lets the days pass until today (the story
starts 14 days ago: the product's clock and both simulators' move together), processes the
events through the polling job (the subscription's payment matched to its invoice; a payment
refused because the account closed, a payment link e-mailed and paid), posts the bookings to
Exact and prints a summary. Safe to run again: it resets both
simulators and the demo tenant's data first. django-q2 tasks run inline (no cluster needed).
"""

from __future__ import annotations

import logging
import os
from io import StringIO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

from demo.management.commands.demo_setup import DEMO_PASSWORD, DEMO_USERNAME
from tenants.models import Tenant

QUIET_LOGGERS = ("django-q", "gocardless", "exact", "reconciliation")


class Command(BaseCommand):
    help = "Run the demo tenant end to end against the local simulators (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--exact-url", default=os.environ.get("DEMO_EXACT_URL", "http://127.0.0.1:8101")
        )
        parser.add_argument(
            "--gocardless-url",
            default=os.environ.get("DEMO_GOCARDLESS_URL", "http://127.0.0.1:8102"),
        )
        parser.add_argument(
            "--exact-minutely-limit",
            type=int,
            default=None,
            help="The Exact simulator's calls-per-minute budget (default 150: the demo's frozen "
            "simulator clock never starts a new minute; Exact itself allows 60).",
        )

    def handle(self, *args, **options):
        from django_q.conf import Conf

        from demo.run import Demo, DemoError, demo_prepare_simulators
        from demo.simulators import SimulatorError
        from demo.summary import summary_build, summary_text

        if not settings.DEBUG:
            raise CommandError("demo_run only runs with DEBUG on: it resets the demo tenant.")
        try:
            demo_prepare_simulators(
                exact_url=options["exact_url"], gocardless_url=options["gocardless_url"]
            )
        except SimulatorError as exc:
            raise CommandError(str(exc)) from exc
        if not Tenant.objects.filter(slug="demo").exists():
            call_command("demo_setup", stdout=StringIO())
        tenant = Tenant.objects.get(slug="demo")
        user = get_user_model().objects.get(username=DEMO_USERNAME)

        self.stdout.write(f"Running the demo for {tenant.name}:")
        sync_before = Conf.SYNC
        Conf.SYNC = True  # django-q2 tasks run inline: the demo needs no cluster
        # Inline tasks log their every start and stop; the demo prints its own steps.
        quiet = {name: logging.getLogger(name) for name in QUIET_LOGGERS}
        levels = {name: logger.level for name, logger in quiet.items()}
        for logger in quiet.values():
            logger.setLevel(logging.WARNING)
        try:
            # Invitation e-mails stay in memory: the payers are simulated too.
            with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
                demo = Demo(
                    tenant=tenant,
                    user=user,
                    exact_url=options["exact_url"],
                    gocardless_url=options["gocardless_url"],
                    log=self.stdout.write,
                    exact_minutely_limit=options["exact_minutely_limit"],
                )
                result = demo.run()
        except (DemoError, SimulatorError) as exc:
            raise CommandError(f"The demo stopped: {exc}") from exc
        finally:
            Conf.SYNC = sync_before
            for name, logger in quiet.items():
                logger.setLevel(levels[name])
        summary = summary_build(
            tenant=Tenant.objects.get(pk=tenant.pk),
            result=result,
            admin_url=f"{settings.PUBLIC_BASE_URL}/admin/",
            login=(DEMO_USERNAME, DEMO_PASSWORD),
        )
        self.stdout.write(summary_text(summary))
