"""The attempts screen: the payments we created (or are creating), with *needs attention*
first in the state filter; operators *Retry now*, *Cancel…* or *Mark resolved…* (the last
two ask for a reason). The services in ``reconciliation.collection.actions`` decide."""

from __future__ import annotations

import logging

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html

from core.display import FAILURE_CAUSE_WORDS, NOTHING, PAYMENT_STATUS_WORDS, counted, words
from reconciliation.collection.actions import (
    ActionRefused,
    attempt_cancel,
    attempt_resolve,
    attempt_retry_now,
    retry_not_sent_reason,
)
from reconciliation.collection.admin.display import (
    ExternalLinksMixin,
    admin_url,
    money,
    run_link,
    search_link,
    when,
)
from reconciliation.collection.admin.filters import (
    AttemptStateFilter,
    CurrencyFilter,
    RunFilter,
    TenantFilter,
)
from reconciliation.collection.admin.pay_links import pay_links_display
from reconciliation.collection.models import CollectionAttempt
from tenants.admin_base import TenantScopedAdmin
from tenants.models import Role

logger = logging.getLogger(__name__)


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=2000,
        help_text="Recorded on each attempt and in the audit trail, with your name.",
    )


@admin.register(CollectionAttempt)
class CollectionAttemptAdmin(ExternalLinksMixin, TenantScopedAdmin):
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
        "updated",
    )
    list_filter = (AttemptStateFilter, TenantFilter, CurrencyFilter, RunFilter)
    list_select_related = ("tenant", "run")
    # Identifiers match exactly (an index, not a scan of every attempt); the customer's name
    # is what a person types partially.
    search_fields = ("=invoice_number", "account_label", "=payment_gocardless_id", "=key")
    list_per_page = 50
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
                    "receivable_link",
                    "account_link",
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
                    "mandate_link",
                    "payment",
                    "payment_status_words",
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
                    "failure_cause_words",
                    "failure_description",
                    "decided_by_words",
                    "pay_links_shown",
                    "last_error",
                    "resolution",
                    "resolved_by",
                    "resolved",
                    "created",
                    "updated",
                )
            },
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        return [name for _, opts in self.fieldsets for name in opts["fields"]]

    @admin.display(description="Customer", ordering="account_label")
    def customer(self, obj):
        return obj.account_label or NOTHING

    @admin.display(description="GoCardless payment", ordering="payment_gocardless_id")
    def payment(self, obj):
        return search_link("gocardless_payment", obj.payment_gocardless_id)

    @admin.display(description="Payment status at GoCardless", ordering="payment_status")
    def payment_status_words(self, obj):
        return words(obj.payment_status, PAYMENT_STATUS_WORDS) or NOTHING

    @admin.display(description="Why it failed", ordering="failure_cause")
    def failure_cause_words(self, obj):
        return words(obj.failure_cause, FAILURE_CAUSE_WORDS) or NOTHING

    @admin.display(description="Decided by")
    def decided_by_words(self, obj):
        return obj.decided_by or NOTHING

    @admin.display(description="Payment links")
    def pay_links_shown(self, obj):
        return pay_links_display(obj.pay_links.select_related("tenant"))

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj):
        return when(obj.created_at, obj.tenant)

    @admin.display(description="Updated", ordering="updated_at")
    def updated(self, obj):
        return when(obj.updated_at, obj.tenant)

    @admin.display(description="Resolved at", ordering="resolved_at")
    def resolved(self, obj):
        return when(obj.resolved_at, obj.tenant)

    @admin.display(description="Attempt", ordering="key")
    def attempt(self, obj):
        return obj.key.split("/", 1)[-1]

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return money(obj.amount, obj.currency)

    @admin.display(description="Run", ordering="run")
    def run_link(self, obj):
        return run_link(obj.run) if obj.run_id else NOTHING

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
                    request,
                    f"{attempt}: not {verb.lower()}, because of an unexpected error "
                    f"({type(exc).__name__}: {exc}); the details are in the server log.",
                    messages.ERROR,
                )
                continue
            if outcome is not None:
                self.message_user(request, outcome, messages.WARNING)
                continue
            done += 1
        if done:
            self.message_user(request, f"{verb}: {counted(done, 'attempt')}.", messages.SUCCESS)

    @admin.action(description="Retry now", permissions=("retry",))
    def retry_now(self, request, queryset):
        def call(attempt):
            run = attempt_retry_now(attempt=attempt, user=request.user)
            why = retry_not_sent_reason(run=run, attempt=attempt)
            if why is None:
                return None
            # The new run decided not to send (or could not): say why, with its link.
            return format_html(
                '{}: no payment was sent, because {} (<a href="{}">run #{}</a>).',
                attempt,
                why,
                admin_url(run),
                run.pk,
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
