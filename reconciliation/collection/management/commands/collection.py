"""Collection runs without the admin: for operators, cron and the crash-safety test.

    manage.py collection run --tenant SLUG [--json]        # live run: creates payments
    manage.py collection preview --tenant SLUG [--json]    # what a run would do; sends nothing
    manage.py collection list --tenant SLUG [--limit 20] [--json]

``run`` is a live run (``run_live``) with trigger *schedule*: an operator's command stands in
for the tenant's scheduled run, there is no Django user behind it, and the audit trail shows
it as the scheduled job (docs/decisions.md). It only runs for an active tenant in *auto*
mode: in *review* mode a run must go through a preview that finance staff approve in the
admin (``preview`` makes one), and *off* means off. A crashed run is simply run again: the
new run resubmits what the dead one left pending under the same idempotency keys.

Exit status: 0 done; 1 bad input or the run failed; 3 refused because another live run of
the tenant is active (try again later). Bad input ends with one line on stderr, never a
traceback.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from reconciliation.collection.models import CollectionRun, Decision, RunState, RunTrigger
from reconciliation.collection.runs import RunRefused, run_live, run_preview
from tenants.models import CollectionMode, Tenant

EXIT_REFUSED = 3


def run_describe(run: CollectionRun, *, items: bool = False) -> dict:
    """A JSON-safe description of a run (no secrets) for the CLI."""
    data = {
        "id": run.pk,
        "tenant": run.tenant.slug,
        "kind": run.kind,
        "trigger": run.trigger,
        "state": run.state,
        "as_of": run.as_of.isoformat() if run.as_of else None,
        "evaluated": run.evaluated,
        "to_collect": run.to_collect,
        "skipped": run.skipped,
        "submitted": run.submitted,
        "errors": run.errors,
        "totals": run.totals,
        "submitted_totals": run.submitted_totals,
        "preview": run.preview_id,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "error": run.error,
    }
    if items:
        data["items"] = [
            {
                "receivable": str(item.receivable_exact_id),
                "invoice_number": item.invoice_number,
                "account": item.account_label,
                "due_date": item.due_date.isoformat() if item.due_date else None,
                "currency": item.currency,
                "outstanding": str(item.outstanding),
                "amount": str(item.amount),
                "charge_date": item.charge_date.isoformat() if item.charge_date else None,
                "mandate": item.mandate_gocardless_id,
                "parts": item.parts,
                "decision": item.decision,
                "reason": item.reason,
                "detail": item.detail,
            }
            for item in run.items.order_by("decision", "due_date", "invoice_number", "pk")
        ]
    return data


class Command(BaseCommand):
    help = "Run, preview and list collection runs of a tenant."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        for name, text in (
            ("run", "live run now: creates the payments (auto mode only)"),
            ("preview", "store what a run would collect and why not the rest; sends nothing"),
            ("list", "recent runs of the tenant, newest first"),
        ):
            action = sub.add_parser(name, help=text)
            action.add_argument("--tenant", required=True, metavar="SLUG")
            action.add_argument("--json", action="store_true")
            if name == "list":
                action.add_argument("--limit", type=int, default=20)

    def handle(self, *args, **options):
        try:
            return getattr(self, f"do_{options['action']}")(options)
        except DatabaseError as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise CommandError(
                f"Database error ({type(exc).__name__}: {first_line}). Has `migrate` run?"
            ) from None

    # --- helpers ---------------------------------------------------------------------------
    def _tenant(self, slug: str) -> Tenant:
        try:
            return Tenant.objects.get(slug=slug)
        except Tenant.DoesNotExist:
            raise CommandError(f"No tenant with slug {slug!r}.") from None

    def _emit(self, options, data, text: str) -> None:
        self.stdout.write(json.dumps(data, indent=2) if options["json"] else text)

    @staticmethod
    def _summary(run: CollectionRun) -> str:
        totals = ", ".join(f"{c} {t}" for c, t in run.totals.items()) or "nothing"
        line = (
            f"{run.get_kind_display()} run #{run.pk} ({run.get_state_display()}): "
            f"{run.evaluated} evaluated, {run.to_collect} to collect ({totals}), "
            f"{run.skipped} skipped"
        )
        if run.kind == "live":
            sent = ", ".join(f"{c} {t}" for c, t in run.submitted_totals.items()) or "nothing"
            line += f"; {run.submitted} payments created ({sent}), {run.errors} errors"
        return line

    # --- actions ---------------------------------------------------------------------------
    def do_run(self, options):
        tenant = self._tenant(options["tenant"])
        if not tenant.is_active:
            raise CommandError(f"Tenant {tenant.slug} is inactive; nothing is collected.")
        if tenant.collection_mode == CollectionMode.OFF:
            raise CommandError(f"Collection is off for {tenant.slug}.")
        if tenant.collection_mode == CollectionMode.REVIEW:
            raise CommandError(
                f"{tenant.slug} is in review mode: make a preview (`collection preview`) and "
                "approve it in the admin."
            )
        try:
            run = run_live(tenant=tenant, trigger=RunTrigger.SCHEDULE)
        except RunRefused as exc:  # pragma: no cover - run_live records these itself
            raise CommandError(str(exc)) from None
        except Exception as exc:
            # run_live stored the run as failed (and logged the traceback) before re-raising.
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise CommandError(f"Collection run failed: {type(exc).__name__}: {message}") from None
        if run.state == RunState.REFUSED:
            raise CommandError(
                f"Refused: {run.error} (run #{run.pk}). Try again when it has finished.",
                returncode=EXIT_REFUSED,
            )
        if run.state == RunState.FAILED:
            raise CommandError(f"Run #{run.pk} failed: {run.error}")
        self._emit(options, run_describe(run), self._summary(run))

    def do_preview(self, options):
        tenant = self._tenant(options["tenant"])
        run = run_preview(tenant=tenant, trigger=RunTrigger.SCHEDULE)
        if options["json"]:
            self._emit(options, run_describe(run, items=True), "")
            return
        lines = [self._summary(run)]
        skipped: dict[str, int] = {}
        for item in run.items.filter(decision=Decision.SKIP).only("reason"):
            label = item.get_reason_display()
            skipped[label] = skipped.get(label, 0) + 1
        lines += [f"  {n:>6}  {label}" for label, n in sorted(skipped.items())]
        if run.state == RunState.AWAITING_APPROVAL:
            lines.append(f"Awaiting approval in the admin (run #{run.pk}).")
        self.stdout.write("\n".join(lines))

    def do_list(self, options):
        tenant = self._tenant(options["tenant"])
        if options["limit"] < 1:
            raise CommandError("--limit must be at least 1.")
        runs = list(
            CollectionRun.objects.filter(tenant=tenant)
            .select_related("tenant")
            .order_by("-started_at", "-id")[: options["limit"]]
        )
        if options["json"]:
            self._emit(options, [run_describe(r) for r in runs], "")
            return
        for r in runs:
            self.stdout.write(
                f"#{r.pk:<6} {r.started_at:%Y-%m-%d %H:%M} {r.kind:<7} {r.trigger:<8} "
                f"{r.state:<17} {r.to_collect:>5} to collect {r.submitted:>5} created "
                f"{r.errors:>3} errors"
            )
