"""Template filters for ``core.display``: ``{% load workspace_display %}``.

- ``{{ amount|money:currency }}`` → ``EUR 12,883.10`` (Decimal, or a Decimal string)
- ``{{ minor|minor_money:currency }}`` → ``EUR 12.34`` (GoCardless' integer minor units)
- ``{{ status|payment_status }}``, ``{{ cause|failure_cause }}`` → the words for the code
- ``{{ moment|local_time:tenant }}`` → ``Tue 3 Mar 2026, 06:00 CET`` (the tenant's zone)
- ``{{ count|count }}`` → ``1,234``
"""

from __future__ import annotations

from django import template

from core.display import (
    FAILURE_CAUSE_WORDS,
    PAYMENT_STATUS_WORDS,
    local_time_display,
    minor_display,
    money_display,
    words,
)

register = template.Library()


@register.filter
def money(amount, currency):
    return money_display(amount, currency)


@register.filter
def minor_money(minor, currency):
    return minor_display(minor, currency)


@register.filter
def payment_status(code):
    return words(code, PAYMENT_STATUS_WORDS)


@register.filter
def failure_cause(code):
    return words(code, FAILURE_CAUSE_WORDS)


@register.filter
def local_time(moment, tenant):
    return local_time_display(moment, tenant)


@register.filter
def count(number):
    return "" if number is None else f"{number:,}"
