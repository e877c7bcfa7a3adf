"""Customers and mandates from the command line (operators, cron, the demo).

manage.py customers match --tenant SLUG     import GoCardless customers/mandates, match
manage.py customers register --tenant SLUG  invite qualifying customers now
manage.py customers push --tenant SLUG      push Exact account changes to GoCardless
manage.py customers tick                    expire / re-issue / remind invitations
manage.py customers reflect                 retry due Exact writes
manage.py customers schedules               create the periodic schedules
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from core.audit import Actor
from tenants.models import Tenant

TENANT_ACTIONS = ("match", "register", "push")


class Command(BaseCommand):
    help = "Match, register, push, tick invitations, retry Exact writes, create schedules."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=(*TENANT_ACTIONS, "tick", "reflect", "schedules"))
        parser.add_argument("--tenant", help="tenant slug (match, register, push)")

    def handle(self, *args, action, tenant=None, **options):
        actor = Actor.system(f"manage.py customers {action}")
        if action in TENANT_ACTIONS:
            if not tenant:
                raise CommandError(f"'{action}' needs --tenant SLUG")
            row = Tenant.objects.filter(slug=tenant).first()
            if row is None:
                raise CommandError(f"no tenant with slug {tenant!r}")
            result = self._tenant_action(action, row, actor)
        elif action == "tick":
            from reconciliation.customers.invitations import invitations_tick

            result = invitations_tick(actor=actor)
        elif action == "reflect":
            from reconciliation.customers.exact_reflection import reflections_retry_due

            result = {"retried": reflections_retry_due()}
        else:
            from reconciliation.customers.schedules import customer_schedules_ensure

            result = {"schedules": customer_schedules_ensure()}
        self.stdout.write(json.dumps(result, default=str, sort_keys=True))

    @staticmethod
    def _tenant_action(action, tenant, actor):
        if action == "match":
            from reconciliation.customers.matching import customers_match

            return customers_match(tenant=tenant, actor=actor).as_dict()
        if action == "register":
            from reconciliation.customers.registration import registration_run

            return registration_run(tenant=tenant, actor=actor)
        from reconciliation.customers.exact_push import links_push_exact_changes

        return links_push_exact_changes(tenant=tenant, actor=actor)
