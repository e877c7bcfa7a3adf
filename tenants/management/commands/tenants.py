"""Provision tenants without the admin.

    manage.py tenants create --name "Acme BV" [--slug acme] [--time-zone Europe/Amsterdam]
                             [--mode off|review|auto] [--lead-days 5] [--minimum-amount 1.00]
                             [--currencies EUR,GBP] [--json]
    manage.py tenants list [--all] [--json]
    manage.py tenants show SLUG [--json]
    manage.py tenants update SLUG [--name ...] [same options as create] [--json]
    manage.py tenants deactivate SLUG [--reason TEXT] [--json]
    manage.py tenants activate SLUG [--json]

Deactivating stops all outbound work for the tenant (no e-mails to its customers, no Exact
Online or GoCardless calls, no bookings, no collection runs); pending work keeps its state
and resumes, once, after ``activate`` (tenants/activity.py).

Bad input ends with one line on stderr and a non-zero exit, never a traceback.
"""

import getpass
import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from core.audit import Actor
from tenants.activity import WHAT_DEACTIVATION_STOPS
from tenants.models import CollectionMode, Tenant
from tenants.services import (
    parse_amount,
    parse_currencies,
    tenant_create,
    tenant_describe,
    tenant_set_active,
    tenant_update,
)


def _policy_options(parser, *, with_name: bool, name_required: bool) -> None:
    if with_name:
        parser.add_argument("--name", required=name_required)
    parser.add_argument("--slug")
    parser.add_argument("--time-zone", dest="time_zone")
    parser.add_argument("--mode", dest="collection_mode", choices=CollectionMode.values)
    parser.add_argument("--lead-days", dest="lead_days", type=int)
    parser.add_argument("--minimum-amount", dest="minimum_amount")
    parser.add_argument("--currencies", help="comma-separated ISO codes, e.g. EUR,GBP")
    parser.add_argument("--json", action="store_true")


def _one_line(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in error.message_dict.items())
    return " ".join(error.messages)


class Command(BaseCommand):
    help = "Create, list, show, update and deactivate tenants."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        _policy_options(
            sub.add_parser("create", help="create a tenant"), with_name=True, name_required=True
        )
        listing = sub.add_parser("list", help="list tenants")
        listing.add_argument("--all", action="store_true", help="include inactive tenants")
        listing.add_argument("--json", action="store_true")
        show = sub.add_parser("show", help="show one tenant")
        show.add_argument("slug")
        show.add_argument("--json", action="store_true")
        update = sub.add_parser("update", help="change a tenant")
        update.add_argument("target")
        _policy_options(update, with_name=True, name_required=False)
        deactivate = sub.add_parser(
            "deactivate",
            help="stop all outbound work for a tenant (e-mails, Exact, GoCardless, bookings, "
            "collection); pending work resumes after activate",
        )
        deactivate.add_argument("slug")
        deactivate.add_argument("--reason", default="")
        deactivate.add_argument("--json", action="store_true")
        activate = sub.add_parser(
            "activate", help="resume a deactivated tenant (its pending work runs once)"
        )
        activate.add_argument("slug")
        activate.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        actor = Actor.system(f"cli:{getpass.getuser()}")
        try:
            return getattr(self, f"do_{options['action']}")(options, actor)
        except ValidationError as exc:
            raise CommandError(_one_line(exc)) from None
        except DatabaseError as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise CommandError(
                f"Database error ({type(exc).__name__}: {first_line}). Has `migrate` run?"
            ) from None

    # --- actions ---------------------------------------------------------------------------
    def _fields(self, options) -> dict:
        fields = {}
        for key in ("name", "slug", "time_zone", "collection_mode", "lead_days"):
            if options.get(key) is not None:
                fields[key] = options[key]
        if options.get("minimum_amount") is not None:
            fields["minimum_amount"] = parse_amount(options["minimum_amount"])
        if options.get("currencies") is not None:
            fields["currencies"] = parse_currencies(options["currencies"])
        if fields.get("lead_days") is not None and fields["lead_days"] < 0:
            raise ValidationError({"lead_days": ["must not be negative."]})
        return fields

    def _get(self, slug: str) -> Tenant:
        try:
            return Tenant.objects.get(slug=slug)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant with slug {slug!r}.") from None

    def _emit(self, options, tenant: Tenant, text: str) -> None:
        if options.get("json"):
            self.stdout.write(json.dumps(tenant_describe(tenant=tenant), indent=2))
        else:
            self.stdout.write(text)

    def do_create(self, options, actor):
        fields = self._fields(options)
        if Tenant.objects.filter(slug=fields.get("slug") or "").exists():
            raise CommandError(f"A tenant with slug {fields['slug']!r} already exists.")
        tenant = tenant_create(actor=actor, **fields)
        self._emit(options, tenant, f"Created tenant {tenant.slug} ({tenant.uuid}).")

    def do_list(self, options, actor):
        tenants = Tenant.objects.order_by("slug")
        if not options["all"]:
            tenants = tenants.filter(is_active=True)
        if options["json"]:
            self.stdout.write(json.dumps([tenant_describe(tenant=t) for t in tenants], indent=2))
            return
        for t in tenants:
            state = "active" if t.is_active else "inactive"
            self.stdout.write(f"{t.slug:<24} {state:<9} {t.collection_mode:<7} {t.name}")

    def do_show(self, options, actor):
        tenant = self._get(options["slug"])
        if options["json"]:
            self._emit(options, tenant, "")
            return
        info = tenant_describe(tenant=tenant)
        for key in ("name", "slug", "uuid", "time_zone", "active"):
            self.stdout.write(f"{key:<16} {info[key]}")
        for provider, url in info["webhook_urls"].items():
            self.stdout.write(f"{'webhook ' + provider:<16} {url}")
        for provider, summary in info["connections"].items():
            self.stdout.write(f"{provider + ' status':<16} {summary['status']}")

    def do_update(self, options, actor):
        tenant = self._get(options["target"])
        fields = self._fields(options)
        if not fields:
            raise CommandError("Nothing to change: give at least one option.")
        if (
            "slug" in fields
            and Tenant.objects.filter(slug=fields["slug"]).exclude(pk=tenant.pk).exists()
        ):
            raise CommandError(f"A tenant with slug {fields['slug']!r} already exists.")
        tenant = tenant_update(tenant=tenant, actor=actor, **fields)
        self._emit(options, tenant, f"Updated tenant {tenant.slug}.")

    def do_deactivate(self, options, actor):
        tenant = tenant_set_active(
            tenant=self._get(options["slug"]), active=False, actor=actor, reason=options["reason"]
        )
        self._emit(options, tenant, f"Tenant {tenant.slug} is inactive. {WHAT_DEACTIVATION_STOPS}")

    def do_activate(self, options, actor):
        tenant = tenant_set_active(tenant=self._get(options["slug"]), active=True, actor=actor)
        self._emit(
            options,
            tenant,
            f"Tenant {tenant.slug} is active. Its pending work (invitations, reminders, "
            "bookings, Exact sync and mandate states) resumes with the next scheduled runs.",
        )
