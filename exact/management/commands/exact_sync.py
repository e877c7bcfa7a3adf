"""Run an Exact Online sync of one tenant now, from the command line.

    manage.py exact_sync --tenant SLUG                       # incremental, every entity
    manage.py exact_sync --tenant SLUG --full                # full resync (bulk endpoints)
    manage.py exact_sync --tenant SLUG --entity receivables [--full] [--json]

Runs in this process (not queued) through the same services as the scheduled job
(``exact.sync``), with trigger *command*. ``--entity all`` (the default) is exactly what the
job does: accounts, then open receivables, then ``sync/Deleted``. ``--full`` re-reads the
entities through the bulk endpoints and removes mirror rows Exact no longer returns — the
remedy after an outage longer than the two months Exact keeps ``sync/Deleted``
(docs/exact.md, "Full resync").

Exit status: 0 done; 1 unknown tenant, no usable connection (not connected, needs
re-authorisation, inactive tenant) or the sync failed; 3 the connection is paused because
Exact's daily API budget is spent (try again after the reset). Errors are one line on stderr,
never a traceback (``--traceback`` shows it for an unexpected failure).
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from core.audit import Actor, audit_record
from exact.errors import (
    ExactConnectionUnavailable,
    ExactDailyBudgetExhausted,
    ExactError,
    ExactPaused,
)
from exact.models import ExactConnection, SyncRun
from exact.sync import accounts_sync, exact_sync, receivables_sync
from tenants.models import Tenant

EXIT_TRY_LATER = 3
TRIGGER = "command"
ENTITIES = ("all", "accounts", "receivables")


def run_describe(run: SyncRun) -> dict:
    return {
        "id": run.pk,
        "entity": run.entity,
        "mode": run.mode,
        "trigger": run.trigger,
        "created": run.created,
        "updated": run.updated,
        "deleted": run.deleted,
        "pages": run.pages,
        "calls": run.calls,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "error": run.error,
    }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Command(BaseCommand):
    help = "Sync a tenant's Exact Online mirror now (incremental, or --full to resync)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, metavar="SLUG")
        parser.add_argument(
            "--entity",
            choices=ENTITIES,
            default="all",
            help="all (default: accounts, receivables, then deletions), accounts or receivables",
        )
        parser.add_argument(
            "--full",
            action="store_true",
            help="re-read everything through the bulk endpoints and remove mirror rows Exact "
            "no longer has",
        )
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        try:
            runs = self._sync(options)
        except DatabaseError as exc:
            raise CommandError(
                f"Database error ({type(exc).__name__}: {_first_line(exc)}). Has `migrate` run?"
            ) from None
        if options["json"]:
            self.stdout.write(json.dumps([run_describe(r) for r in runs], indent=2))
            return
        for run in runs:
            self.stdout.write(
                f"{run.get_entity_display()} ({run.mode}): "
                f"{run.created} created, {run.updated} updated, {run.deleted} deleted "
                f"({run.pages} pages, {run.calls} API calls)"
            )

    def _sync(self, options) -> list[SyncRun]:
        slug = options["tenant"]
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant with slug {slug!r}.")
        connection = (
            ExactConnection.objects.select_related("tenant").filter(tenant=tenant).first()
        )
        if connection is None:
            raise CommandError(f"{tenant.slug} is not connected to Exact Online.")
        full, entity = options["full"], options["entity"]
        audit_record(
            actor=Actor.system("manage.py exact_sync"),
            action="exact_sync.requested",
            tenant=tenant,
            obj=connection,
            message=f"{'full' if full else 'incremental'} sync of {entity} (command)",
        )
        try:
            if entity == "accounts":
                return [accounts_sync(connection=connection, full=full, trigger=TRIGGER)]
            if entity == "receivables":
                return [receivables_sync(connection=connection, full=full, trigger=TRIGGER)]
            return exact_sync(connection=connection, full=full, trigger=TRIGGER)
        except ExactPaused as exc:
            raise CommandError(f"{exc}. Try again later.", returncode=EXIT_TRY_LATER) from None
        except ExactConnectionUnavailable as exc:
            # Inactive tenant, not connected, needs re-authorisation: a person must act first.
            raise CommandError(str(exc)) from None
        except ExactDailyBudgetExhausted as exc:
            raise CommandError(
                f"Exact's daily API budget for {tenant.slug} is spent; the connection is "
                f"paused until {exc.reset_at or 'the reset'}. What was synced so far is kept; "
                "run again after the reset.",
                returncode=EXIT_TRY_LATER,
            ) from None
        except ExactError as exc:
            raise CommandError(
                f"Exact sync of {tenant.slug} failed: {_first_line(exc)} "
                "(recorded on the sync run)."
            ) from None
        except Exception as exc:
            if options.get("traceback"):
                raise
            raise CommandError(
                f"Exact sync of {tenant.slug} failed: {type(exc).__name__}: {_first_line(exc)} "
                "(--traceback for details)."
            ) from None
