"""The pieces every GoCardless admin page shows the same way: a code in words (the code in a
tooltip), an amount with its currency, a moment in the company's zone, a link to a mirror by
its GoCardless id, and the verbatim payload folded away under "As received from GoCardless".

Only ``raw_block`` puts text inside ``mlc-raw``: the page-walk test (tests/workspace/
page_words.py) skips that element because it is evidence of what GoCardless sent, not our
words; nothing of ours may hide there.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from types import SimpleNamespace

from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from core.display import (
    NOTHING,
    local_time_display,
    minor_display,
    money_display,
    sentence,
    words,
)
from core.money import MINOR_UNIT_EXPONENT, parse_minor_string

from .words import METADATA_KEY_WORDS

# A delivery to the partner endpoint has no company: its moments are shown in UTC.
NO_TENANT = SimpleNamespace(zone=dt.UTC)
# Places for a currency core.money does not list (as core.display does).
DEFAULT_PLACES = 2


def printable(text) -> str:
    """Text from a payload made safe to put on a page: a lone surrogate or a NUL (a hostile
    or broken body) written as its escape instead of breaking the response's encoding."""
    text = str(text).replace("\x00", "\\u0000")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def coded(text: str, code: str | None):
    """Words on the page, the code GoCardless sent in the tooltip."""
    if not code:
        return NOTHING
    return format_html('<span title="{}">{}</span>', code, text)


def in_words(code: str | None, table: dict[str, str]):
    return coded(words(code, table), code)


def moment(value, tenant):
    """An instant where the company is (``Tue 3 Mar 2026, 06:00 CET``)."""
    return local_time_display(value, tenant if tenant is not None else NO_TENANT)


def minor_amount(minor: int | None, currency: str) -> str:
    """GoCardless integer minor units with their currency; a row not fetched yet (no
    currency) shows a dash rather than a bare number."""
    if minor is None or not currency:
        return NOTHING
    return minor_display(int(minor), currency)


def item_units(minor: Decimal, currency: str) -> Decimal:
    """Minor units (a payout item's may carry one decimal place, "45.0") as currency units,
    exactly: a shift of the decimal point, never a float."""
    places = MINOR_UNIT_EXPONENT.get(currency, DEFAULT_PLACES)
    return Decimal(minor).scaleb(-places)


def item_amount(amount: Decimal | str | None, currency: str) -> str:
    """A payout item amount (``PayoutItem.amount``, minor units with one decimal) as money."""
    if amount is None or not currency:
        return NOTHING
    return money_display(item_units(parse_minor_string(str(amount)), currency), currency)


def item_vat(taxes: list | None) -> Decimal:
    """The VAT in a payout item's ``taxes`` (minor units, as GoCardless sends them)."""
    return sum((parse_minor_string(str(tax.get("amount", "0"))) for tax in taxes or []),
               Decimal(0))


def mirror_url(model_name: str, tenant_id: int, gocardless_id: str) -> str:
    """The admin page of a mirror found by its GoCardless id (a redirect, so that a list
    needs no query per row to link to another mirror)."""
    try:
        return reverse(f"admin:gocardless_{model_name}_by_id", args=[tenant_id, gocardless_id])
    except NoReverseMatch:
        return ""


def mirror_link(model_name: str, tenant_id: int | None, gocardless_id: str | None):
    if not gocardless_id:
        return NOTHING
    url = mirror_url(model_name, tenant_id, gocardless_id) if tenant_id else ""
    if not url:
        return gocardless_id
    return format_html('<a href="{}">{}</a>', url, gocardless_id)


def change_link(obj, text=None):
    if obj is None:
        return NOTHING
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else str(obj))


def metadata_list(metadata: dict | None):
    """A payment's metadata (ours: attempt, invoice, account) as labelled lines."""
    if not metadata:
        return NOTHING
    return format_html(
        "<dl class='mlc-facts'>{}</dl>",
        format_html_join(
            "", "<dt title='{}'>{}</dt><dd>{}</dd>",
            ((printable(key), METADATA_KEY_WORDS.get(key) or sentence(printable(key)),
              printable(value))
             for key, value in sorted(metadata.items(), key=str)),
        ),
    )


def raw_block(payload, *, label: str = "As received from GoCardless"):
    """The verbatim payload, folded away: evidence, not what anyone should have to read."""
    if payload in (None, "", {}, []):
        return NOTHING
    text = payload if isinstance(payload, str) else json.dumps(
        payload, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    text = printable(text)
    return format_html(
        "<details class='mlc-raw-details'><summary>{}</summary>"
        "<pre class='mlc-raw mlc-pre-wrap'>{}</pre></details>",
        label, text,
    )


class WordsLabelMixin:
    """For an admin whose model's ``str()`` is a code: the change page's heading and
    breadcrumb show ``object_label(obj)`` instead."""

    change_form_template = "gocardless/admin/object_change_form.html"

    def object_label(self, obj) -> str:
        return str(obj)

    def render_change_form(self, request, context, add=False, change=False, form_url="",
                           obj=None):
        if obj is not None:
            label = self.object_label(obj)
            context.update(subtitle=label, object_label=label)
        return super().render_change_form(request, context, add=add, change=change,
                                          form_url=form_url, obj=obj)
