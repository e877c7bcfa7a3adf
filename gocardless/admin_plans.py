"""Admin of the plans GoCardless collects by itself: subscriptions (a payment each period)
and instalment schedules ("instalment plans": a fixed set of payments).

Read-only mirrors like the others (admin_mirrors.py): name, amount with its currency, how
often in words, the next payments with their dates, the status in words; linked to their
mandate and customer, and to their payments (the payments list, filtered). How other pages
name a plan: plan_display.py.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from core.display import NOTHING, local_date_display
from gocardless.admin_display import minor_amount
from gocardless.admin_filters import CurrencyFilter, words_filter
from gocardless.admin_mirrors import MandateColumns, MirrorAdmin, _changelist
from gocardless.models import InstalmentSchedule, Subscription
from gocardless.plan_display import upcoming_list, upcoming_rows
from gocardless.words import (
    INSTALMENT_SCHEDULE_STATUS_WORDS,
    SUBSCRIPTION_STATUS_WORDS,
    interval_words,
)


class PlanAdmin(MandateColumns, MirrorAdmin):
    search_fields = ("gocardless_id__exact", "mandate_id__exact", "name")
    list_per_page = 50
    #: The payments field that points at this kind of plan.
    payment_field = ""

    @admin.display(description="Name", ordering="name")
    def name_display(self, obj):
        return obj.name or NOTHING

    @admin.display(description="Next payments")
    def upcoming(self, obj):
        return upcoming_list(obj.upcoming_payments, obj.currency)

    @admin.display(description="Next payment")
    def next_payment(self, obj):
        rows = upcoming_rows(obj.upcoming_payments, obj.currency)
        return f"{rows[0][0]}: {rows[0][1]}" if rows else NOTHING

    @admin.display(description="Payments")
    def payments(self, obj):
        url = _changelist("payment", **{f"{self.payment_field}__exact": obj.gocardless_id,
                                        "tenant__id__exact": obj.tenant_id})
        return format_html('<a href="{}">The payments it created</a>', url)


@admin.register(Subscription)
class SubscriptionAdmin(PlanAdmin):
    list_display = ("gocardless_id", "tenant", "name_display", "status_words", "amount_display",
                    "interval_display", "next_payment", "mandate")
    base_filters = (words_filter("status", "status", SUBSCRIPTION_STATUS_WORDS),
                    CurrencyFilter)
    detail_fields = ("name_display", "amount_display", "interval_display", "start_day",
                     "end_day", "upcoming", "mandate", "customer", "payments")
    payment_field = "subscription_id"

    @admin.display(description="Amount each time", ordering="amount")
    def amount_display(self, obj):
        return minor_amount(obj.amount, obj.currency)

    @admin.display(description="How often")
    def interval_display(self, obj):
        return interval_words(obj.interval_unit, obj.interval, obj.day_of_month) or NOTHING

    @admin.display(description="First payment", ordering="start_date")
    def start_day(self, obj):
        return local_date_display(obj.start_date)

    @admin.display(description="Ends", ordering="end_date")
    def end_day(self, obj):
        return local_date_display(obj.end_date) if obj.end_date else "No end date"


@admin.register(InstalmentSchedule)
class InstalmentScheduleAdmin(PlanAdmin):
    list_display = ("gocardless_id", "tenant", "name_display", "status_words", "total_display",
                    "instalments", "next_payment", "mandate")
    base_filters = (words_filter("status", "status", INSTALMENT_SCHEDULE_STATUS_WORDS),
                    CurrencyFilter)
    detail_fields = ("name_display", "total_display", "instalments", "upcoming", "mandate",
                     "customer", "payments")
    payment_field = "instalment_schedule_id"

    @admin.display(description="Total", ordering="total_amount")
    def total_display(self, obj):
        return minor_amount(obj.total_amount, obj.currency)

    @admin.display(description="Instalments")
    def instalments(self, obj):
        return len(obj.payment_ids) if obj.payment_ids else NOTHING
