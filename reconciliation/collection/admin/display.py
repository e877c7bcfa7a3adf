"""How the collection screens show money and link to runs."""

from __future__ import annotations

from decimal import Decimal

from django.urls import reverse
from django.utils.html import format_html


def money(amount, currency: str) -> str:
    """``EUR 1,234.50``: amounts are Decimal (or Decimal strings in the totals JSON)."""
    if amount is None or amount == "":
        return "-"
    return f"{currency} {Decimal(str(amount)):,.2f}".strip()


def money_totals(totals: dict | None) -> str:
    return ", ".join(money(v, c) for c, v in sorted((totals or {}).items())) or "-"


def admin_url(obj, view: str = "change") -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[obj.pk])


def run_link(run) -> str:
    return format_html('<a href="{}">{}</a>', admin_url(run), run)
