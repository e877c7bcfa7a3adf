"""List filters whose choices read as words.

Django's filter on a plain CharField lists the stored values (``paid_out``, ``sepa_core``);
these list the same values under their words. The query parameter stays ``<field>__exact``,
the one Django's own filter uses, so links built elsewhere (the dashboard's month table:
``status__exact=paid``) keep selecting the same rows, now with the choice highlighted.
"""

from __future__ import annotations

from django.contrib import admin

from core.display import words

from .words import RESOURCE_TYPE_WORDS, event_action_words


class WordsFilter(admin.SimpleListFilter):
    """The distinct values of ``field`` among the rows the user may see, in words."""

    field: str = ""
    table: dict[str, str] = {}

    def lookups(self, request, model_admin):
        values = (model_admin.get_queryset(request).order_by().exclude(**{self.field: ""})
                  .values_list(self.field, flat=True).distinct())
        shown = [(value, words(value, self.table)) for value in values]
        return sorted(shown, key=lambda choice: choice[1].lower())

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.field: self.value()})
        return queryset


def words_filter(field: str, title: str, table: dict[str, str]) -> type[WordsFilter]:
    """A ``WordsFilter`` on ``field`` (``words_filter("scheme", "scheme", SCHEME_WORDS)``)."""
    return type(f"{field.title().replace('_', '')}WordsFilter", (WordsFilter,), {
        "field": field, "table": table, "title": title, "parameter_name": f"{field}__exact",
    })


class EventWhatFilter(admin.SimpleListFilter):
    """Events by what happened (resource type and action together: "paid" is one thing for a
    payout and another for a refund). The value is ``payments.confirmed``."""

    title = "what happened"
    parameter_name = "event"

    def lookups(self, request, model_admin):
        pairs = (model_admin.get_queryset(request).order_by()
                 .values_list("resource_type", "action").distinct())
        shown = [(f"{rt}.{action}",
                  f"{words(rt, RESOURCE_TYPE_WORDS)}: {event_action_words(rt, action)}")
                 for rt, action in pairs]
        return sorted(shown, key=lambda choice: choice[1].lower())

    def queryset(self, request, queryset):
        value = self.value() or ""
        if "." in value:
            resource_type, action = value.split(".", 1)
            return queryset.filter(resource_type=resource_type, action=action)
        return queryset
