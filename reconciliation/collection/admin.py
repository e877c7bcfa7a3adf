"""Admin for finance staff: collection runs, their lines, and the payment attempts.

Everything here is read-only (runs, lines and attempts are written by the services only);
what staff *do* goes through the services, which check the state and write the audit entry:

- runs: *Collect now* (``run_start``) and *Approve* on a preview awaiting approval
  (``run_approve``), both behind a confirmation page;
- attempts: *Retry now*, *Cancel* and *Mark resolved* (``reconciliation.collection.actions``);
  Cancel and Mark resolved ask for a reason first.

A service's refusal (``RunRefused`` / ``ActionRefused``) becomes a message, never a 500.
Operators and admins act; viewers read. Scoping to the user's companies is
``TenantScopedAdmin``'s (querysets, actions); the custom views below start from
``get_queryset`` too, so another company's run is a 404 whatever id is posted.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from reconciliation.collection.actions import (
    ActionRefused,
    attempt_cancel,
    attempt_resolve,
    attempt_retry_now,
)
from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    CollectionItem,
    CollectionRun,
    Decision,
    RunKind,
    RunState,
    RunTrigger,
    SkipReason,
)
from reconciliation.collection.runs import RunRefused, run_approve, run_start
from tenants.admin_base import TenantScopedAdmin
from tenants.models import Role, Tenant
from tenants.scoping import tenant_ids_with_role

logger = logging.getLogger(__name__)

# The run page lists this many lines; the full list is the item changelist (paginated).
RUN_PAGE_LINES = 200


def money(amount, currency: str) -> str:
    """``EUR 1,234.50``: amounts are Decimal (or Decimal strings in the totals JSON)."""
    if amount is None or amount == "":
        return "-"
    return f"{currency} {Decimal(str(amount)):,.2f}".strip()


def money_totals(totals: dict | None) -> str:
    return ", ".join(money(v, c) for c, v in sorted((totals or {}).items())) or "-"


def _admin_url(obj, view: str = "change") -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[obj.pk])


def _run_link(run) -> str:
    return format_html('<a href="{}">{}</a>', _admin_url(run), run)


# --- filters --------------------------------------------------------------------------------


class TenantFilter(admin.SimpleListFilter):
    """By company, offering only the user's companies (a plain FK filter lists them all)."""

    title = "company"
    parameter_name = "tenant"

    def lookups(self, request, model_admin):
        tenants = Tenant.objects.order_by("name")
        if not request.user.is_superuser:
            tenants = tenants.filter(
                pk__in=tenant_ids_with_role(request.user, Role.VIEWER, request=request)
            )
        return [(str(t.pk), t.name) for t in tenants]

    def queryset(self, request, queryset):
        return queryset.filter(tenant_id=self.value()) if self.value() else queryset


class RunFilter(admin.SimpleListFilter):
    """By run: the user's latest runs, plus the one chosen (links from a run's page)."""

    title = "run"
    parameter_name = "run"

    def lookups(self, request, model_admin):
        runs = CollectionRun.objects.select_related(None)
        if not request.user.is_superuser:
            runs = runs.filter(
                tenant_id__in=tenant_ids_with_role(request.user, Role.VIEWER, request=request)
            )
        chosen = list(runs.filter(pk=self.value())) if (self.value() or "").isdigit() else []
        latest = [r for r in runs[:10] if r not in chosen]
        return [(str(r.pk), str(r)) for r in chosen + latest]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(run_id=int(value))
        return queryset


class AttemptStateFilter(admin.SimpleListFilter):
    """States in the order staff look at them: what needs a person first."""

    title = "state"
    parameter_name = "state"
    ORDER = (
        AttemptState.NEEDS_ATTENTION,
        AttemptState.RETRY_SCHEDULED,
        AttemptState.PENDING,
        AttemptState.SUBMITTED,
        AttemptState.CONFIRMED,
        AttemptState.PAID_OUT,
        AttemptState.RETRIED,
        AttemptState.CANCELLED,
        AttemptState.SUPERSEDED,
        AttemptState.RESOLVED,
    )

    def lookups(self, request, model_admin):
        labels = dict(AttemptState.choices)
        return [("flagged", "Flagged (any state)")] + [(s.value, labels[s]) for s in self.ORDER]

    def queryset(self, request, queryset):
        if self.value() == "flagged":
            return queryset.exclude(flag="")
        if self.value():
            return queryset.filter(state=self.value())
        return queryset


# --- runs -----------------------------------------------------------------------------------


class _CollectNowForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none(), label="Company")

    def __init__(self, *args, tenants, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tenant"].queryset = tenants
        if tenants.count() == 1:
            self.fields["tenant"].initial = tenants.first()


@admin.register(CollectionRun)
class CollectionRunAdmin(TenantScopedAdmin):
    """Runs are created by the services only; operators collect now and approve previews."""

    read_only = True
    audit_changes = False  # never saved here; the services audit what they do
    action_roles = {"approve": Role.OPERATOR, "collect": Role.OPERATOR}
    list_display = (
        "run",
        "tenant",
        "kind",
        "trigger",
        "state",
        "as_of",
        "counts",
        "totals_display",
        "submitted_display",
        "triggered_by",
        "approved_by",
        "started_at",
    )
    list_filter = ("kind", "state", "trigger", TenantFilter)
    list_select_related = ("tenant", "triggered_by", "approved_by")
    date_hierarchy = "started_at"
    actions = ("approve",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "tenant",
                    "kind",
                    "trigger",
                    "state",
                    "as_of",
                    "triggered_by",
                    "preview_link",
                    "live_runs_links",
                    "approved_by",
                    "approved_at",
                    "started_at",
                    "finished_at",
                    "error",
                )
            },
        ),
        (
            "Outcome",
            {
                "fields": (
                    "evaluated",
                    "to_collect",
                    "skipped",
                    "submitted",
                    "errors",
                    "totals_display",
                    "submitted_display",
                    "reasons",
                )
            },
        ),
        ("Lines", {"fields": ("lines",)}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [name for _, opts in self.fieldsets for name in opts["fields"]]

    # --- columns ----------------------------------------------------------------------------
    @admin.display(description="Run", ordering="pk")
    def run(self, obj):
        return f"#{obj.pk}"

    @admin.display(description="Evaluated / collect / skip / sent / errors")
    def counts(self, obj):
        return (
            f"{obj.evaluated} / {obj.to_collect} / {obj.skipped} / {obj.submitted} / {obj.errors}"
        )

    @admin.display(description="To collect")
    def totals_display(self, obj):
        return money_totals(obj.totals)

    @admin.display(description="Submitted")
    def submitted_display(self, obj):
        return money_totals(obj.submitted_totals) if obj.kind == RunKind.LIVE else "-"

    @admin.display(description="Approved preview")
    def preview_link(self, obj):
        return _run_link(obj.preview) if obj.preview_id else "-"

    @admin.display(description="Submitted by")
    def live_runs_links(self, obj):
        runs = list(obj.live_runs.all()) if obj.pk else []
        return format_html(", ".join(["{}"] * len(runs)), *map(_run_link, runs)) if runs else "-"

    @admin.display(description="Lines by decision and reason")
    def reasons(self, obj):
        rows = (
            obj.items.values("decision", "reason")
            .annotate(n=Count("pk"))
            .order_by("decision", "reason")
        )
        labels = dict(SkipReason.choices)
        base = reverse("admin:collection_collectionitem_changelist")
        return render_to_string(
            "admin/collection/run_reasons.html",
            {
                "rows": [
                    {
                        "label": labels.get(r["reason"], "Collect"),
                        "count": r["n"],
                        "url": f"{base}?run={obj.pk}&decision__exact={r['decision']}"
                        + (f"&reason__exact={r['reason']}" if r["reason"] else ""),
                    }
                    for r in rows
                ]
            },
        )

    @admin.display(description="Lines")
    def lines(self, obj):
        items = list(obj.items.all()[:RUN_PAGE_LINES])
        return render_to_string(
            "admin/collection/run_lines.html",
            {
                "items": items,
                "total": obj.evaluated,
                "more": obj.evaluated > len(items),
                "all_url": reverse("admin:collection_collectionitem_changelist") + f"?run={obj.pk}",
            },
        )

    # --- permissions ------------------------------------------------------------------------
    def has_approve_permission(self, request, obj=None):
        return self.has_action_permission(request, "approve", obj)

    def has_collect_permission(self, request, obj=None):
        return self.has_action_permission(request, "collect", obj)

    @staticmethod
    def approvable(run) -> bool:
        return run.kind == RunKind.PREVIEW and run.state == RunState.AWAITING_APPROVAL

    # --- urls and pages ---------------------------------------------------------------------
    def get_urls(self):
        own = [
            path(
                "collect-now/",
                self.admin_site.admin_view(self.collect_now_view),
                name="collection_collectionrun_collect_now",
            ),
            path(
                "<int:pk>/approve/",
                self.admin_site.admin_view(self.approve_view),
                name="collection_collectionrun_approve",
            ),
        ]
        return own + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        # What needs a person is one click away from the runs (scoped like the attempts list).
        attention = self.scope_queryset(
            request, CollectionAttempt.objects.filter(state=AttemptState.NEEDS_ATTENTION)
        ).count()
        extra = {
            "can_collect_now": self.has_collect_permission(request),
            "needs_attention": attention,
            "needs_attention_url": reverse("admin:collection_collectionattempt_changelist")
            + f"?state={AttemptState.NEEDS_ATTENTION}",
        }
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra = {
            "can_approve": obj is not None
            and self.approvable(obj)
            and self.has_approve_permission(request, obj)
        }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    @admin.action(description="Approve the selected preview…", permissions=("approve",))
    def approve(self, request, queryset):
        """Leads to the confirmation page; nothing is submitted from the changelist."""
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one preview to approve.", messages.WARNING)
            return None
        return HttpResponseRedirect(
            reverse("admin:collection_collectionrun_approve", args=[queryset.get().pk])
        )

    def approve_view(self, request, pk):
        # Scoped queryset first: another company's run is a 404, not a 403 that confirms it.
        run = get_object_or_404(self.get_queryset(request).select_related("tenant"), pk=pk)
        if not self.has_approve_permission(request, run):
            raise PermissionDenied
        change_url = _admin_url(run)
        if request.method == "POST":
            return self._approve(request, run, change_url)
        if not self.approvable(run):
            self.message_user(
                request,
                f"Run #{run.pk} is {run.get_state_display().lower()}; only a preview awaiting "
                "approval can be approved.",
                messages.ERROR,
            )
            return HttpResponseRedirect(change_url)
        collect = run.items.filter(decision=Decision.COLLECT)
        return TemplateResponse(
            request,
            "admin/collection/approve.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Approve preview #{run.pk} of {run.tenant}",
                "opts": self.model._meta,
                "run": run,
                "totals": money_totals(run.totals),
                "items": collect,
                "skipped": run.skipped,
                "skipped_url": reverse("admin:collection_collectionitem_changelist")
                + f"?run={run.pk}&decision__exact={Decision.SKIP}",
                "change_url": change_url,
            },
        )

    def _approve(self, request, run, change_url):
        # The service re-checks the state under a row lock, so a second click (or a second
        # person) is refused there and becomes a message; nothing is submitted twice.
        try:
            live = run_approve(preview=run, user=request.user)
        except RunRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(change_url)
        except Exception as exc:  # a person's click never ends in a 500
            logger.exception("approving collection preview %s failed", run.pk)
            live = run.live_runs.order_by("-pk").first()
            if live is not None:  # run_live stored its failure before re-raising
                self._report_live(request, live, f"Preview #{run.pk} approved.")
            else:
                self.message_user(
                    request,
                    f"Approving run #{run.pk} failed ({type(exc).__name__}).",
                    messages.ERROR,
                )
            return HttpResponseRedirect(change_url)
        self._report_live(request, live, f"Preview #{run.pk} approved.")
        return HttpResponseRedirect(_admin_url(live))

    def _report_live(self, request, live, prefix: str) -> None:
        link = format_html('<a href="{}">live run #{}</a>', _admin_url(live), live.pk)
        if live.state == RunState.COMPLETED:
            level = messages.WARNING if live.errors else messages.SUCCESS
            text = format_html(
                "{} {}: {} payment(s) created ({}), {} error(s), {} line(s) not collected.",
                prefix,
                link,
                live.submitted,
                money_totals(live.submitted_totals),
                live.errors,
                live.skipped,
            )
        else:
            level = messages.ERROR
            # run_approve puts a preview back to "awaiting approval" when nothing was sent;
            # otherwise the rest needs a fresh preview. Say which, so nobody guesses.
            preview = CollectionRun.objects.filter(pk=live.preview_id).first()
            if preview is not None and preview.state == RunState.AWAITING_APPROVAL:
                next_step = "Nothing was sent; the preview can be approved again."
            elif preview is not None and preview.state == RunState.SUPERSEDED:
                next_step = "Nothing was sent; approve the newer preview."
            else:
                next_step = "Use Collect now for a fresh preview once the cause is fixed."
            text = format_html(
                "{} {} is {}: {}. {} payment(s) created. {}",
                prefix,
                link,
                live.get_state_display().lower(),
                live.error or "no detail",
                live.submitted,
                next_step,
            )
        self.message_user(request, text, level)

    def collect_now_view(self, request):
        if not self.has_collect_permission(request):
            raise PermissionDenied
        tenants = Tenant.objects.filter(is_active=True).order_by("name")
        if not request.user.is_superuser:
            tenants = tenants.filter(
                pk__in=tenant_ids_with_role(request.user, Role.OPERATOR, request=request)
            )
        form = _CollectNowForm(request.POST or None, tenants=tenants)
        if request.method == "POST" and form.is_valid():
            tenant = form.cleaned_data["tenant"]
            changelist = reverse("admin:collection_collectionrun_changelist")
            try:
                run = run_start(tenant=tenant, trigger=RunTrigger.USER, user=request.user)
            except RunRefused as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return HttpResponseRedirect(changelist)
            except Exception as exc:  # a person's click never ends in a 500
                logger.exception("collect now for tenant %s failed", tenant.pk)
                self.message_user(
                    request, f"Collect now failed ({type(exc).__name__}).", messages.ERROR
                )
                return HttpResponseRedirect(changelist)
            if run.kind == RunKind.LIVE:
                self._report_live(request, run, f"{tenant}: collected now.")
            else:
                self.message_user(
                    request,
                    format_html(
                        '{}: <a href="{}">preview #{}</a>: {} to collect ({}), {} not. {}',
                        tenant,
                        _admin_url(run),
                        run.pk,
                        run.to_collect,
                        money_totals(run.totals),
                        run.skipped,
                        "Review it and approve." if run.state == RunState.AWAITING_APPROVAL else "",
                    ),
                    messages.SUCCESS,
                )
            return HttpResponseRedirect(_admin_url(run))
        return TemplateResponse(
            request,
            "admin/collection/collect_now.html",
            {
                **self.admin_site.each_context(request),
                "title": "Collect now",
                "opts": self.model._meta,
                "form": form,
                "modes": [(t, t.get_collection_mode_display()) for t in tenants],
                "back_url": reverse("admin:collection_collectionrun_changelist"),
            },
        )


# --- lines ----------------------------------------------------------------------------------


@admin.register(CollectionItem)
class CollectionItemAdmin(TenantScopedAdmin):
    """One line of a run: what it decided for a receivable, and why."""

    read_only = True
    audit_changes = False
    list_display = (
        "invoice_number",
        "customer",
        "run_link",
        "decision",
        "reason_label",
        "detail",
        "amount_display",
        "due_date",
        "charge_date",
        "scheme",
        "parts",
    )
    list_filter = (RunFilter, "decision", "reason", TenantFilter)
    list_select_related = ("run",)
    search_fields = ("invoice_number", "account_label", "mandate_gocardless_id")
    actions = None

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    @admin.display(description="Run", ordering="run")
    def run_link(self, obj):
        return _run_link(obj.run)

    @admin.display(description="Customer", ordering="account_label")
    def customer(self, obj):
        return obj.account_label or "-"

    @admin.display(description="Reason", ordering="reason")
    def reason_label(self, obj):
        return obj.get_reason_display() if obj.reason else "-"

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return money(obj.amount, obj.currency)


# --- attempts -------------------------------------------------------------------------------


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=2000,
        help_text="Recorded on each attempt and in the audit trail, with your name.",
    )


@admin.register(CollectionAttempt)
class CollectionAttemptAdmin(TenantScopedAdmin):
    """Payments we created (or are creating); operators retry, cancel or resolve them."""

    read_only = True
    audit_changes = False
    action_roles = {"retry": Role.OPERATOR, "cancel": Role.OPERATOR, "resolve": Role.OPERATOR}
    list_display = (
        "invoice_number",
        "customer",
        "attempt",
        "amount_display",
        "charge_date",
        "state",
        "flag",
        "payment",
        "next_retry_on",
        "tenant",
        "run_link",
        "updated_at",
    )
    list_filter = (AttemptStateFilter, TenantFilter, "currency", RunFilter)
    list_select_related = ("tenant", "run")
    search_fields = ("invoice_number", "account_label", "payment_gocardless_id", "key")
    actions = ("retry_now", "cancel", "mark_resolved")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "tenant",
                    "run_link",
                    "invoice_number",
                    "account_label",
                    "receivable_exact_id",
                    "account_exact_id",
                    "attempt_number",
                    "part",
                    "parts",
                    "key",
                    "idempotency_key",
                )
            },
        ),
        (
            "Payment",
            {
                "fields": (
                    "amount_display",
                    "charge_date",
                    "mandate_gocardless_id",
                    "payment_gocardless_id",
                    "payment_status",
                    "state",
                    "next_retry_on",
                    "send_count",
                )
            },
        ),
        (
            "Problems and resolution",
            {
                "fields": (
                    "flag",
                    "failure_cause",
                    "failure_description",
                    "last_error",
                    "resolution",
                    "resolved_by",
                    "resolved_at",
                    "created_at",
                    "updated_at",
                )
            },
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        return [name for _, opts in self.fieldsets for name in opts["fields"]]

    @admin.display(description="Customer", ordering="account_label")
    def customer(self, obj):
        return obj.account_label or "-"

    @admin.display(description="GoCardless payment", ordering="payment_gocardless_id")
    def payment(self, obj):
        return obj.payment_gocardless_id or "-"

    @admin.display(description="Attempt", ordering="key")
    def attempt(self, obj):
        return obj.key.split("/", 1)[-1]

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return money(obj.amount, obj.currency)

    @admin.display(description="Run", ordering="run")
    def run_link(self, obj):
        return _run_link(obj.run) if obj.run_id else "-"

    # --- actions ----------------------------------------------------------------------------
    def has_retry_permission(self, request, obj=None):
        return self.has_action_permission(request, "retry", obj)

    def has_cancel_permission(self, request, obj=None):
        return self.has_action_permission(request, "cancel", obj)

    def has_resolve_permission(self, request, obj=None):
        return self.has_action_permission(request, "resolve", obj)

    def _each(self, request, queryset, verb: str, call) -> None:
        """Call the service per attempt; refusals one message each, successes counted."""
        done = 0
        for attempt in queryset.select_related("tenant").order_by("pk"):
            try:
                outcome = call(attempt)
            except ActionRefused as exc:
                self.message_user(request, f"{attempt}: {exc}", messages.ERROR)
                continue
            except Exception as exc:  # a person's click never ends in a 500
                logger.exception("%s of collection attempt %s failed", verb, attempt.pk)
                self.message_user(
                    request, f"{attempt}: {verb} failed ({type(exc).__name__}).", messages.ERROR
                )
                continue
            if outcome is not None:
                self.message_user(request, outcome, messages.WARNING)
                continue
            done += 1
        if done:
            self.message_user(request, f"{verb}: {done} attempt(s).", messages.SUCCESS)

    @admin.action(description="Retry now", permissions=("retry",))
    def retry_now(self, request, queryset):
        def call(attempt):
            run = attempt_retry_now(attempt=attempt, user=request.user)
            if run.submitted:
                return None
            # The new run decided not to send (or could not): say why, with its link.
            item = run.items.filter(receivable_exact_id=attempt.receivable_exact_id).first()
            why = (
                item.get_reason_display() + (f" ({item.detail})" if item.detail else "")
                if item is not None and item.reason
                else (run.error or run.get_state_display())
            )
            return format_html(
                '{}: <a href="{}">run #{}</a> did not send a payment: {}',
                attempt,
                _admin_url(run),
                run.pk,
                why,
            )

        self._each(request, queryset, "Retried", call)

    def _with_reason(self, request, queryset, *, action: str, title: str, verb: str, service):
        """Intermediate page: a reason is required; then the service per attempt."""
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            self._each(
                request,
                queryset,
                verb,
                lambda attempt: service(attempt=attempt, user=request.user, reason=reason),
            )
            return None
        return TemplateResponse(
            request,
            "admin/collection/attempt_reason.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "opts": self.model._meta,
                "form": form,
                "attempts": queryset.select_related("tenant").order_by("pk"),
                "action": action,
                "back_url": request.get_full_path(),
            },
        )

    @admin.action(description="Cancel…", permissions=("cancel",))
    def cancel(self, request, queryset):
        return self._with_reason(
            request,
            queryset,
            action="cancel",
            title="Cancel collection attempts",
            verb="Cancelled",
            service=attempt_cancel,
        )

    @admin.action(description="Mark resolved…", permissions=("resolve",))
    def mark_resolved(self, request, queryset):
        return self._with_reason(
            request,
            queryset,
            action="mark_resolved",
            title="Mark collection attempts resolved",
            verb="Marked resolved",
            service=attempt_resolve,
        )
