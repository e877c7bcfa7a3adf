"""The payment links screen: each link e-mailed to a customer whose Direct Debit failed, its
state (sent, paid, expired, cancelled) and the payment made through it; operators cancel a
link that is still open (``pay_links.pay_link_cancel``, audited with their name). Links are
also shown on their attempt's page and on the invoice's lines (``pay_links_display``)."""

from __future__ import annotations

import logging

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from core.display import NOTHING, PAYMENT_STATUS_WORDS, counted, words
from reconciliation.collection.admin.display import admin_url, money, search_link, when
from reconciliation.collection.admin.filters import TenantFilter
from reconciliation.collection.models import PayLink
from reconciliation.collection.pay_links import PayLinkRefused, pay_link_cancel
from tenants.admin_base import TenantScopedAdmin
from tenants.models import Role

logger = logging.getLogger(__name__)


def pay_links_display(links) -> str:
    """One line per link: its state in words, amount, when it was sent, the payment."""
    rows = [
        (
            admin_url(link),
            link.get_state_display(),
            money(link.amount, link.currency),
            when(link.sent_at, link.tenant) if link.sent_at else "not sent yet",
            f", payment {link.payment_gocardless_id}" if link.payment_gocardless_id else "",
        )
        for link in links
    ]
    if not rows:
        return NOTHING
    return format_html_join(
        mark_safe("<br>"), '<a href="{}">Payment link: {}</a> ({}, sent {}{})', rows
    )


class PayLinkStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state__exact"

    def lookups(self, request, model_admin):
        return PayLink._meta.get_field("state").choices

    def queryset(self, request, queryset):
        return queryset.filter(state=self.value()) if self.value() else queryset


@admin.register(PayLink)
class PayLinkAdmin(TenantScopedAdmin):
    """Payment links sent to customers; written by the failure rules, never by hand."""

    read_only = True
    audit_changes = False
    action_roles = {"cancel": Role.OPERATOR}
    actions = ("cancel_links",)
    list_display = (
        "invoice_number",
        "amount_display",
        "state",
        "email",
        "sent",
        "expires",
        "payment",
        "attempt_link",
        "tenant",
    )
    list_filter = (PayLinkStateFilter, TenantFilter)
    list_select_related = ("tenant", "attempt")
    search_fields = ("=invoice_number", "email", "=payment_gocardless_id")
    list_per_page = 50
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "tenant",
                    "invoice_number",
                    "attempt_link",
                    "amount_display",
                    "email",
                    "state",
                    "rule",
                    "error",
                )
            },
        ),
        (
            "At GoCardless",
            {
                "fields": (
                    "kind",
                    "authorisation_url",
                    "billing_request",
                    "payment",
                    "payment_status_words",
                    "sent",
                    "expires",
                    "created",
                    "updated",
                )
            },
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        return [name for _, opts in self.fieldsets for name in opts["fields"]]

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return money(obj.amount, obj.currency)

    @admin.display(description="Sent", ordering="sent_at")
    def sent(self, obj):
        return when(obj.sent_at, obj.tenant)

    @admin.display(description="Page expires", ordering="expires_at")
    def expires(self, obj):
        return when(obj.expires_at, obj.tenant)

    @admin.display(description="Created", ordering="created_at")
    def created(self, obj):
        return when(obj.created_at, obj.tenant)

    @admin.display(description="Updated", ordering="updated_at")
    def updated(self, obj):
        return when(obj.updated_at, obj.tenant)

    @admin.display(description="How the customer pays")
    def kind(self, obj):
        if not obj.billing_request_gocardless_id:
            return NOTHING
        return "Instant bank payment" if obj.instant else "Direct Debit on a new mandate"

    @admin.display(description="GoCardless billing request")
    def billing_request(self, obj):
        return obj.billing_request_gocardless_id or NOTHING

    @admin.display(description="GoCardless payment", ordering="payment_gocardless_id")
    def payment(self, obj):
        return search_link("gocardless_payment", obj.payment_gocardless_id)

    @admin.display(description="Payment status at GoCardless")
    def payment_status_words(self, obj):
        return words(obj.payment_status, PAYMENT_STATUS_WORDS) or NOTHING

    @admin.display(description="Failed attempt")
    def attempt_link(self, obj):
        return format_html('<a href="{}">{}</a>', admin_url(obj.attempt), obj.attempt)

    def has_cancel_permission(self, request, obj=None):
        return self.has_action_permission(request, "cancel", obj)

    @admin.action(description="Cancel payment link", permissions=("cancel",))
    def cancel_links(self, request, queryset):
        done = 0
        for link in queryset.select_related("tenant").order_by("pk"):
            try:
                pay_link_cancel(link=link, user=request.user)
            except PayLinkRefused as exc:
                self.message_user(request, f"{link}: {exc}", messages.ERROR)
                continue
            except Exception as exc:  # a person's click never ends in a 500
                logger.exception("cancel of payment link %s failed", link.pk)
                self.message_user(
                    request,
                    f"{link}: not cancelled, because of an unexpected error "
                    f"({type(exc).__name__}); the details are in the server log.",
                    messages.ERROR,
                )
                continue
            done += 1
        if done:
            self.message_user(
                request, f"Cancelled: {counted(done, 'payment link')}.", messages.SUCCESS
            )
