"""Admin: payments of GoCardless subscriptions and instalment schedules, and which invoice each
pays (docs/subscriptions.md). A payment no single open invoice fitted waits here for a person:
pick the invoice it pays from the customer's open invoices, or say it is not an invoice
payment. The decision is the service's (plan_bookings.plan_payment_decide: audited with the
person, refused in words when it cannot be taken); this page only shows and asks."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from core.display import (
    PAYMENT_STATUS_WORDS,
    local_date_display,
    local_time_display,
    minor_display,
    money_display,
    words,
)
from exact.models import ExactAccount
from tenants.admin_base import TenantScopedAdmin
from tenants.models import Role

from .display import first_upper, payment_origin_words
from .models import PlanMatchState, PlanPaymentMatch
from .plan_bookings import plan_payment_decide
from .plan_matching import DecisionRefused

NOT_INVOICE = "not_invoice"


def _day(value) -> str:
    try:
        return local_date_display(date.fromisoformat(str(value))) if value else "no due date"
    except ValueError:
        return str(value)


def candidate_words(candidate: dict, currency: str) -> str:
    """``Invoice 25000002: EUR 25.00 left to pay, due Thu 10 Mar 2026``."""
    amount = money_display(Decimal(str(candidate["outstanding"])), currency)
    return (
        f"Invoice {candidate['invoice']}: {amount} left to pay, "
        f"due {_day(candidate['due_date'])}"
    )


class PlanDecisionForm(forms.ModelForm):
    """The one question a person answers about a waiting plan payment."""

    decision = forms.ChoiceField(
        label="This payment pays",
        required=True,
        help_text="One of the customer's open invoices in the payment's currency, or none.",
    )

    class Meta:
        model = PlanPaymentMatch
        fields: tuple = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        match = self.instance
        currency = match.payment.currency if match.pk else ""
        choices = [("", "Choose…")]
        choices += [
            (c["receivable"], candidate_words(c, currency)) for c in (match.candidates or [])
        ]
        choices.append((NOT_INVOICE, "No invoice: it is not an invoice payment"))
        self.fields["decision"].choices = choices


class PlanStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state__exact"

    def lookups(self, request, model_admin):
        return list(PlanMatchState.choices)

    def queryset(self, request, queryset):
        return queryset.filter(state=self.value()) if self.value() else queryset


@admin.register(PlanPaymentMatch)
class PlanPaymentMatchAdmin(TenantScopedAdmin):
    add_role = None  # made by matching, never by hand
    delete_role = None  # the decision is history
    change_role = Role.OPERATOR
    audit_changes = False  # the decision service writes the audit entry
    form = PlanDecisionForm
    list_display = (
        "payment_link",
        "paid_by",
        "amount",
        "charge_date",
        "state_words",
        "invoice",
        "why",
    )
    list_filter = (PlanStateFilter,)
    list_select_related = ("tenant", "payment")
    list_per_page = 50
    search_fields = ("=payment__gocardless_id", "=plan", "=invoice_number")
    readonly_fields = (
        "tenant",
        "payment_link",
        "paid_by",
        "amount",
        "charge_date",
        "payment_status",
        "customer",
        "state_words",
        "invoice",
        "why",
        "candidates_table",
        "decided",
        "receipt_link",
    )

    def has_change_permission(self, request, obj=None):
        # Only a waiting payment has a question to answer; a decision is history.
        allowed = super().has_change_permission(request, obj)
        return allowed and (obj is None or obj.state == PlanMatchState.WAITING)

    def get_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None and self.has_change_permission(request, obj):
            fields.append("decision")
        return fields

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields

    # --- columns, in words ------------------------------------------------------------------
    @admin.display(description="payment", ordering="payment__gocardless_id")
    def payment_link(self, obj):
        pid = obj.payment.gocardless_id
        try:
            url = reverse("admin:gocardless_payment_change", args=[obj.payment_id])
        except NoReverseMatch:
            return pid
        return format_html('<a href="{}">{}</a>', url, pid)

    @admin.display(description="paid by")
    def paid_by(self, obj):
        kind = "instalment schedule" if obj.payment.instalment_schedule_id else "subscription"
        model = "instalmentschedule" if kind == "instalment schedule" else "subscription"
        text = first_upper(payment_origin_words("", None, obj.plan))
        try:
            url = reverse(f"admin:gocardless_{model}_changelist")
        except NoReverseMatch:
            return text
        return format_html('<a href="{}?q={}">{}</a>', url, obj.plan, text)

    @admin.display(description="amount")
    def amount(self, obj):
        return minor_display(int(obj.payment.amount), obj.payment.currency)

    @admin.display(description="charge date", ordering="payment__charge_date")
    def charge_date(self, obj):
        return local_date_display(obj.payment.charge_date)

    @admin.display(description="status at GoCardless")
    def payment_status(self, obj):
        return words(obj.payment.status, PAYMENT_STATUS_WORDS)

    @admin.display(description="state", ordering="state")
    def state_words(self, obj):
        return obj.get_state_display()

    @admin.display(description="invoice", ordering="invoice_number")
    def invoice(self, obj):
        if obj.state != PlanMatchState.MATCHED:
            return "None yet" if obj.state == PlanMatchState.WAITING else "None"
        return f"Invoice {obj.invoice_number}"

    @admin.display(description="why it waits")
    def why(self, obj):
        return obj.note if obj.state == PlanMatchState.WAITING else ""

    @admin.display(description="customer in Exact")
    def customer(self, obj):
        guids = {obj.account_exact_id} if obj.account_exact_id else set()
        guids |= {c.get("account") for c in obj.candidates or [] if c.get("account")}
        names = [
            f"{a.code.strip()} {a.name}".strip()
            for a in ExactAccount.objects.filter(tenant=obj.tenant, exact_id__in=guids)
        ]
        return ", ".join(sorted(names)) or "Not known (its GoCardless customer is not linked)"

    @admin.display(description="open invoices to choose from")
    def candidates_table(self, obj):
        if not obj.candidates:
            return "None: no open invoice of this customer in this currency has anything left."
        rows = [
            (
                c["invoice"],
                money_display(Decimal(str(c["outstanding"])), obj.payment.currency),
                _day(c["due_date"]),
            )
            for c in obj.candidates
        ]
        return format_html(
            '<table class="mlc-lines"><thead><tr><th>Invoice</th><th>Left to pay</th><th>Due</th>'
            "</tr></thead><tbody>{}</tbody></table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", rows),
        )

    @admin.display(description="decided")
    def decided(self, obj):
        if obj.state == PlanMatchState.WAITING:
            return "Not yet"
        if obj.matched_by != "person":
            return obj.get_matched_by_display()
        who = obj.decided_by.get_username() if obj.decided_by else "a person"
        return f"By {who}, {local_time_display(obj.decided_at, obj.tenant)}"

    @admin.display(description="receipt in Exact")
    def receipt_link(self, obj):
        if obj.receipt_id is None:
            return "None yet"
        url = reverse("admin:bookings_booking_change", args=[obj.receipt_id])
        return format_html('<a href="{}">{}</a>', url, obj.receipt.sentence())

    # --- the decision -------------------------------------------------------------------------
    def save_model(self, request, obj, form, change):
        choice = form.cleaned_data.get("decision")
        if not choice:
            request._plan_refused = "Choose an invoice, or say it is not an invoice payment."
            return
        try:
            plan_payment_decide(
                match=obj,
                receivable_exact_id=None if choice == NOT_INVOICE else choice,
                user=request.user,
            )
        except DecisionRefused as exc:
            request._plan_refused = str(exc)

    def save_related(self, request, form, formsets, change):
        pass  # nothing related is edited here

    def log_change(self, request, obj, message):
        pass  # the decision's audit entry is the record

    def response_change(self, request, obj):
        refused = getattr(request, "_plan_refused", "")
        if refused:
            self.message_user(request, refused, messages.ERROR)
            return HttpResponseRedirect(request.path)
        obj.refresh_from_db()
        self.message_user(request, f"Saved: {obj.get_state_display().lower()}.", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:bookings_planpaymentmatch_changelist"))
