"""Provision tenants without the admin.

    manage.py tenants create --name "Acme BV" [--slug acme] [--time-zone Europe/Amsterdam]
                             [--mode off|review|auto] [--lead-days 5] [--minimum-amount 1.00]
                             [--currencies EUR,GBP] [--json]
    manage.py tenants list [--all] [--json]
    manage.py tenants show SLUG [--json]
    manage.py tenants update SLUG [--name ...] [same options as create] [--json]
    manage.py tenants deactivate SLUG [--reason TEXT] [--json]
    manage.py tenants activate SLUG [--json]
    manage.py tenants connect-gocardless SLUG --token-file FILE --webhook-secret-file FILE
                             [--environment live|sandbox] [--json]
    manage.py tenants connect-exact SLUG [--region nl|be|uk|de|fr|es|us] [--division N] [--json]

``connect-gocardless`` checks the access token with GoCardless and connects the company (the
organisation comes from GoCardless, never from the command line). Secrets are read from files
(``-`` for standard input), never from arguments, which other users of the machine can read in
the process list. ``connect-exact`` prints the Exact consent URL for the company: open it in a
browser as the Exact user, consent, and the connection completes at the callback (with
``--division`` the consent binds that division, refused if another company holds it).

Deactivating stops all outbound work for the tenant (no e-mails to its customers, no Exact
Online or GoCardless calls, no bookings, no collection runs); pending work keeps its state
and resumes, once, after ``activate`` (tenants/activity.py).

Bad input ends with one line on stderr and a non-zero exit, never a traceback.

It lives in config/ (the top layer) because connecting a company needs both provider apps,
which tenants/ may not import.
"""

import getpass
import json
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from core.audit import Actor
from exact.connections import connection_ensure
from exact.errors import ExactConnectionUnavailable
from exact.models import Region
from exact.oauth import consent_url_create
from gocardless.connect import ConnectError, connection_connect_with_token
from gocardless.models import Environment
from tenants.activity import WHAT_DEACTIVATION_STOPS
from tenants.models import CollectionMode, ScheduleKind, Tenant
from tenants.services import (
    parse_amount,
    parse_currencies,
    parse_month_days,
    parse_weekdays,
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
    parser.add_argument("--schedule", dest="schedule_kind", choices=ScheduleKind.values,
                        help="when the scheduled collection runs (docs/schedules.md)")
    parser.add_argument("--weekdays", help="for --schedule weekdays: e.g. mon,thu")
    parser.add_argument("--month-days", dest="month_days",
                        help="for --schedule month_days: e.g. 1,15 (31: the month's last day)")
    parser.add_argument("--hour", dest="collection_hour", type=int,
                        help="local hour (0-23) of the scheduled run")
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
        gocardless = sub.add_parser(
            "connect-gocardless",
            help="connect a company to GoCardless with an access token and its webhook secret",
        )
        gocardless.add_argument("slug")
        gocardless.add_argument("--token-file", required=True,
                                help="file holding the access token ('-': stdin)")
        gocardless.add_argument("--webhook-secret-file", required=True,
                                help="file holding the webhook endpoint secret")
        gocardless.add_argument(
            "--environment", default=Environment.LIVE,
            choices=[e for e in Environment.values if e != Environment.CUSTOM],
        )
        gocardless.add_argument(
            "--base-url", default="",
            help="a custom API base URL (the simulators); refused unless the installation "
            "allows custom base URLs (GOCARDLESS_ALLOW_CUSTOM_BASE_URL)",
        )
        gocardless.add_argument("--json", action="store_true")
        exact = sub.add_parser(
            "connect-exact", help="print the Exact Online consent URL that connects a company"
        )
        exact.add_argument("slug")
        exact.add_argument("--region", choices=[r for r in Region.values if r != Region.CUSTOM])
        exact.add_argument("--division", type=int)
        exact.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        actor = Actor.system(f"cli:{getpass.getuser()}")
        try:
            return getattr(self, f"do_{options['action'].replace('-', '_')}")(options, actor)
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
        for key in (
            "name", "slug", "time_zone", "collection_mode", "lead_days", "schedule_kind",
            "collection_hour",
        ):
            if options.get(key) is not None:
                fields[key] = options[key]
        if options.get("minimum_amount") is not None:
            fields["minimum_amount"] = parse_amount(options["minimum_amount"])
        if options.get("currencies") is not None:
            fields["currencies"] = parse_currencies(options["currencies"])
        if options.get("weekdays") is not None:
            fields["schedule_weekdays"] = parse_weekdays(options["weekdays"])
        if options.get("month_days") is not None:
            fields["schedule_month_days"] = parse_month_days(options["month_days"])
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

    def _secret(self, path: str, what: str) -> str:
        try:
            text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
        except OSError as exc:
            raise CommandError(f"Cannot read the {what} from {path}: {exc.strerror}.") from None
        text = text.strip()
        if not text:
            raise CommandError(f"The {what} file {path} is empty.")
        return text

    def do_connect_gocardless(self, options, actor):
        tenant = self._get(options["slug"])
        token = self._secret(options["token_file"], "access token")
        secret = self._secret(options["webhook_secret_file"], "webhook secret")
        try:
            connection = connection_connect_with_token(
                tenant=tenant, access_token=token, webhook_secret=secret,
                # A base URL of its own is the "custom" environment (simulators only).
                environment=Environment.CUSTOM if options["base_url"] else options["environment"],
                actor=actor, custom_base_url=options["base_url"],
            )
        except ConnectError as exc:
            raise CommandError(str(exc)) from None
        if options["json"]:
            self.stdout.write(json.dumps({
                "tenant": tenant.slug, "status": connection.status,
                "organisation_id": connection.organisation_id,
                "creditor_id": connection.creditor_id,
                "environment": connection.environment,
                "webhook_url": tenant.webhook_url("gocardless"),
            }, indent=2))
            return
        self.stdout.write(
            f"Connected {tenant.slug} to GoCardless (creditor {connection.creditor_id}, "
            f"{connection.environment}). Webhook URL for GoCardless: "
            f"{tenant.webhook_url('gocardless')}"
        )

    def do_connect_exact(self, options, actor):
        tenant = self._get(options["slug"])
        try:
            connection = connection_ensure(tenant=tenant, actor=actor, region=options["region"])
        except ExactConnectionUnavailable as exc:
            raise CommandError(str(exc)) from None
        url = consent_url_create(
            connection=connection, operator=actor.label, division=options["division"]
        )
        if options["json"]:
            self.stdout.write(json.dumps({"tenant": tenant.slug, "consent_url": url}, indent=2))
            return
        self.stdout.write(
            f"Open this URL in a browser as the Exact Online user who consents for {tenant.slug} "
            f"(it works once, within a day):\n{url}"
        )

