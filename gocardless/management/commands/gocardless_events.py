"""Replay stored GoCardless events through the same processor as webhooks and polling.

    manage.py gocardless_events --ids EV1,EV2 | --failed | --type payments[.confirmed]
                                [--tenant SLUG] [--dry-run] [--json]

Safe to repeat (gocardless/events_replay.py): each resource is re-fetched and its current
state applied; only a real status change sends a signal, so a replay never books twice.
Exits with status 1 when an event fails again (its error is on the event, in the admin).
"""

import json

from django.core.management.base import BaseCommand, CommandError

from core.audit import Actor
from gocardless.events_replay import ReplayError, events_replay_select, events_reprocess
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Replay stored GoCardless events (by id, the failed ones, or by type) through the "
        "event processor; --dry-run lists them only."
    )

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--ids", help="comma-separated GoCardless event ids (EV...)")
        which.add_argument("--failed", action="store_true",
                           help="every failed event (waiting for a retry or given up)")
        which.add_argument("--type", dest="event_type",
                           help="resource type, optionally with the action: payments, "
                                "payments.confirmed")
        parser.add_argument("--tenant", help="tenant slug (default: every active tenant)")
        parser.add_argument("--dry-run", action="store_true",
                            help="list the events, replay nothing")
        parser.add_argument("--json", action="store_true", help="machine-readable output")

    def handle(self, *args, **options):
        tenant = None
        if options["tenant"]:
            tenant = Tenant.objects.filter(slug=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"no tenant {options['tenant']!r}")
        ids = [i.strip() for i in (options["ids"] or "").split(",") if i.strip()]
        if options["ids"] is not None and not ids:
            raise CommandError("--ids needs at least one event id")
        try:
            events = events_replay_select(event_ids=ids, failed=options["failed"],
                                          event_type=options["event_type"] or "", tenant=tenant)
        except ReplayError as exc:
            raise CommandError(str(exc)) from None
        counts = None
        if events and not options["dry_run"]:
            counts = events_reprocess(event_pks=[e.pk for e in events],
                                      actor=Actor.system("manage.py gocardless_events"))
        self._report(events, counts, dry_run=options["dry_run"], as_json=options["json"])
        if counts and counts.get("failed"):
            raise CommandError(
                f"{counts['failed']} event(s) failed again; their error is on the event "
                "(admin: GoCardless events, filter Failed)", returncode=1,
            )

    def _report(self, events, counts, *, dry_run: bool, as_json: bool) -> None:
        rows = [
            {
                "event_id": e.event_id,
                "tenant": e.tenant.slug,
                "type": f"{e.resource_type}.{e.action}",
                "resource_id": e.resource_id,
                "processed_at": e.processed_at and e.processed_at.isoformat(),
                "attempts": e.attempts,
                "error": e.error,
            }
            for e in events
        ]
        if as_json:
            self.stdout.write(json.dumps({"dry_run": dry_run, "events": rows, "counts": counts},
                                         indent=2))
            return
        if not rows:
            self.stdout.write("No events to replay.")
            return
        self.stdout.write(f"{len(rows)} event(s){' (dry run, nothing replayed)' * dry_run}:")
        for row in rows:
            state = (f"processed {row['processed_at']}" if row["processed_at"]
                     else f"not processed, {row['attempts']} attempt(s) {row['error'][:80]}")
            self.stdout.write(f"  {row['event_id']}  {row['tenant']}  {row['type']}  "
                              f"{row['resource_id']}  {state}".rstrip())
        if counts is not None:
            summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing"
            self.stdout.write(f"Replayed: {summary}.")
