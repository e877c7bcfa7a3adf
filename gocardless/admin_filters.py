"""List filters whose choices read as words, and never read the table they filter.

Django's filter on a plain CharField lists the stored values (``paid_out``, ``sepa_core``) with
a ``SELECT DISTINCT`` over every row the user may see, on every view of the list: at 100,000
payments that alone cost tens of milliseconds (docs/admin-performance.md). These offer fixed
choices instead: the codes of the words tables (gocardless/words.py, core/display.py), under
their words. A code the table does not know is not offered, but a link selecting it still
works. The query parameter stays ``<field>__exact``, the one Django's own filter uses, so links
built elsewhere (the dashboard's month table: ``status__exact=paid``) keep selecting the same
rows, now with the choice highlighted.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.utils import timezone

from core.display import words
from tenants.models import Role, Tenant
from tenants.scoping import tenant_ids_with_role

from .words import EVENT_ACTION_WORDS, RESOURCE_TYPE_WORDS, event_action_words


class WordsFilter(admin.SimpleListFilter):
    """``field`` by the codes of ``table`` (or of ``codes``, when only some of the table's
    codes can be stored there), in words; no query."""

    field: str = ""
    table: dict[str, str] = {}
    codes: tuple[str, ...] = ()

    def lookups(self, request, model_admin):
        codes = list(self.codes or self.table)
        if self.value() and self.value() not in codes:
            codes.append(self.value())  # a link's code stays selectable (and highlighted)
        shown = [(code, words(code, self.table)) for code in codes]
        return sorted(shown, key=lambda choice: choice[1].lower())

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.field: self.value()})
        return queryset


def words_filter(field: str, title: str, table: dict[str, str],
                 codes: tuple[str, ...] = ()) -> type[WordsFilter]:
    """A ``WordsFilter`` on ``field`` (``words_filter("scheme", "scheme", SCHEME_WORDS)``)."""
    return type(f"{field.title().replace('_', '')}WordsFilter", (WordsFilter,), {
        "field": field, "table": table, "codes": tuple(codes), "title": title,
        "parameter_name": f"{field}__exact",
    })


class PlanFilter(admin.SimpleListFilter):
    """Which payments a GoCardless plan created (a subscription, an instalment plan) and which
    not: fixed choices, an indexed column each."""

    title = "created by"
    parameter_name = "plan"

    def lookups(self, request, model_admin):
        return [("subscription", "A subscription"), ("instalment_plan", "An instalment plan"),
                ("none", "Not a subscription or instalment plan")]

    def queryset(self, request, queryset):
        if self.value() == "subscription":
            return queryset.exclude(subscription_id="")
        if self.value() == "instalment_plan":
            return queryset.exclude(instalment_schedule_id="")
        if self.value() == "none":
            return queryset.filter(subscription_id="", instalment_schedule_id="")
        return queryset


class CurrencyFilter(admin.SimpleListFilter):
    """The currencies the user's companies collect (``Tenant.currencies``: a few rows of the
    companies' table, never the filtered one); ``currency__exact`` as Django's own filter."""

    title = "currency"
    parameter_name = "currency__exact"

    def lookups(self, request, model_admin):
        tenants = Tenant.objects.all()
        if not request.user.is_superuser:
            tenants = tenants.filter(pk__in=tenant_ids_with_role(request.user, Role.VIEWER,
                                                                 request=request))
        found = {c for currencies in tenants.values_list("currencies", flat=True)
                 for c in (currencies or []) if isinstance(c, str) and len(c) == 3}
        if self.value() and len(self.value()) == 3:
            found.add(self.value())  # a link's currency stays selectable (and highlighted)
        return [(c, c) for c in sorted(found)]

    def queryset(self, request, queryset):
        return queryset.filter(currency=self.value()) if self.value() else queryset


def _month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


class DatePeriodFilter(admin.SimpleListFilter):
    """``field`` (a date) in a fixed period around today: no query to offer the choices (as
    ``date_hierarchy`` did, with MIN/MAX and DISTINCT over the table on every view)."""

    field: str = ""
    title = "date"
    parameter_name = "period"

    def lookups(self, request, model_admin):
        return (("this_month", "This month"), ("last_month", "Last month"),
                ("last_90_days", "The last 90 days"), ("from_today", "Today and later"))

    def _range(self, value: str) -> tuple[dt.date | None, dt.date | None]:
        """[start, end) of the period, in the server's zone."""
        today = timezone.localdate()
        this_month = _month_start(today)
        next_month = _month_start(this_month + dt.timedelta(days=32))
        if value == "this_month":
            return this_month, next_month
        if value == "last_month":
            return _month_start(this_month - dt.timedelta(days=1)), this_month
        if value == "last_90_days":
            return today - dt.timedelta(days=89), today + dt.timedelta(days=1)
        if value == "from_today":
            return today, None
        return None, None

    def queryset(self, request, queryset):
        start, end = self._range(self.value() or "")
        if start is not None:
            queryset = queryset.filter(**{f"{self.field}__gte": start})
        if end is not None:
            queryset = queryset.filter(**{f"{self.field}__lt": end})
        return queryset


def date_period_filter(field: str, title: str) -> type[DatePeriodFilter]:
    """A ``DatePeriodFilter`` on ``field`` (``date_period_filter("charge_date", "charge date")``),
    its parameter ``<field>_period``."""
    return type(f"{field.title().replace('_', '')}PeriodFilter", (DatePeriodFilter,), {
        "field": field, "title": title, "parameter_name": f"{field}_period",
    })


# Payment statuses that no event announces (a payment is created in them: "created").
_NO_EVENT = {"pending_customer_approval", "pending_submission"}


class EventWhatFilter(admin.SimpleListFilter):
    """Events by what happened (resource type and action together: "paid" is one thing for a
    payout and another for a refund). The value is ``payments.confirmed``; the choices are
    every pair gocardless/words.py names, no query."""

    title = "what happened"
    parameter_name = "event"

    def lookups(self, request, model_admin):
        shown = [(f"{rt}.{action}",
                  f"{words(rt, RESOURCE_TYPE_WORDS)}: {event_action_words(rt, action)}")
                 for rt, actions in EVENT_ACTION_WORDS.items() for action in actions
                 if not (rt == "payments" and action in _NO_EVENT)]
        return sorted(shown, key=lambda choice: choice[1].lower())

    def queryset(self, request, queryset):
        value = self.value() or ""
        if "." in value:
            resource_type, action = value.split(".", 1)
            return queryset.filter(resource_type=resource_type, action=action)
        return queryset
