"""How the collection screens show money, codes, times and links (``core.display`` words)."""

from __future__ import annotations

from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from core.display import NOTHING, local_time_display, money_display, totals_display, words
from reconciliation.collection.schemes import SCHEME_WORDS


def money(amount, currency: str) -> str:
    """``EUR 1,234.50``: amounts are Decimal (or Decimal strings in the totals JSON)."""
    if amount is None or amount == "":
        return NOTHING
    return money_display(amount, currency)


def money_totals(totals: dict | None) -> str:
    """Per-currency totals, ``EUR 1,234.50, GBP 10.00``; a dash when there are none."""
    return ", ".join(totals_display(totals)) or NOTHING


def scheme_words(scheme: str) -> str:
    return words(scheme, SCHEME_WORDS) or NOTHING


def when(moment, tenant) -> str:
    """An instant in the company's own time zone."""
    return local_time_display(moment, tenant)


def admin_url(obj, view: str = "change") -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[obj.pk])


def run_link(run) -> str:
    return format_html('<a href="{}">{}</a>', admin_url(run), run)


def search_link(admin_name: str, value) -> str:
    """An id linked to the list that finds it (``admin:gocardless_payment_changelist``);
    the bare id when there is none (or the screen is not installed)."""
    if not value:
        return NOTHING
    try:
        url = reverse(f"admin:{admin_name}_changelist")
    except NoReverseMatch:
        return str(value)
    return format_html('<a href="{}?q={}">{}</a>', url, value, value)


class ExternalLinksMixin:
    """The Exact invoice, Exact account and GoCardless mandate of a line or an attempt, each a
    link to the list that finds it (both models carry the same three ids)."""

    @admin.display(description="Invoice in Exact")
    def receivable_link(self, obj):
        return search_link("exact_exactreceivable", obj.receivable_exact_id)

    @admin.display(description="Account in Exact")
    def account_link(self, obj):
        return search_link("exact_exactaccount", obj.account_exact_id)

    @admin.display(description="GoCardless mandate")
    def mandate_link(self, obj):
        return search_link("gocardless_mandate", obj.mandate_gocardless_id)
