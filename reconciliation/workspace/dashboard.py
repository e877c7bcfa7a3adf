"""What the finance workspace shows for one company, read in a fixed number of queries.

``dashboard_build(tenant=…, now=…)`` returns plain data for the template: every number
comes with the admin list that explains it (``links``), every code is already in words
(``core.display``). The number of queries does not depend on how many rows there are: each
section is one aggregate (grouped by currency, reason or day) or one bounded read.

Where the numbers come from (docs/workspace.md says the same for people):

- *Needs a person today*: previews awaiting approval (``CollectionRun``), collections that
  need attention (``collection.selectors.attempts_needing_attention``, the definition the
  admin filter and the daily e-mail share), bookings failed or given up, ambiguous customer
  matches, and Exact / GoCardless connections that must be connected again.
- *This month* (calendar month in the company's time zone): GoCardless' own records (our
  mirrors), so they agree with GoCardless and the bank: payments charged this month by
  their status now; refunds paid and payouts paid (and their fees) created this month.
- *Next run*: the next slot of the company's schedule (``collection.schedule_slots``: its
  collection days and hour in its zone, a day moved to the next working day said with
  why), or "Due now" while a slot has come without its run, as ``collection.schedules``
  decides it; *API budget*: Exact's budget row as last reported, "unknown" without one.
- Charts: GoCardless payments per charge date over 90 days; why ml-connector's payments
  failed (the cause is kept on the attempt), as a share of those sent.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count

from core.calendars import tenant_today
from core.display import FAILURE_CAUSE_WORDS, local_date_display, words
from exact.models import ExactConnection
from gocardless.models import GoCardlessConnection, Payment
from reconciliation.collection.models import AttemptState, CollectionAttempt
from reconciliation.workspace import charts
from reconciliation.workspace.attention import (
    Attention,
    attention_build,
    needs_attention_groups,
)
from reconciliation.workspace.links import changelist
from reconciliation.workspace.month import (
    CHARGED_BACK,
    COLLECTED,
    FAILED,
    IN_PROGRESS,
    MonthRow,
    month_build,
)
from reconciliation.workspace.schedule import Budget, budgets_build, next_run

CHART_DAYS = 90


@dataclass
class Dashboard:
    tenant: object
    today: dt.date
    today_text: str
    attention: list[Attention]
    attention_groups: list[Attention]
    attention_all_url: str
    month_title: str
    currencies: list[str]
    month_rows: list[MonthRow]
    next_run: str
    next_run_detail: str
    next_run_url: str
    budgets: list[Budget]
    daily_chart: charts.DailyChart
    daily_url: str
    reason_chart: charts.ReasonChart
    reason_url: str

    @property
    def nothing_to_do(self) -> bool:
        return not self.attention and not self.attention_groups

    @property
    def attention_groups_total(self) -> int:
        return sum(a.count for a in self.attention_groups)


# --- building it ----------------------------------------------------------------------------------


def dashboard_build(*, tenant, now: dt.datetime) -> Dashboard:
    """Everything the workspace shows for ``tenant`` at ``now`` (module docstring)."""
    today = tenant_today(tenant, now=now)
    exact = ExactConnection.objects.filter(tenant=tenant).first()
    gocardless = GoCardlessConnection.objects.filter(tenant=tenant).first()
    attention = attention_build(tenant=tenant, exact=exact, gocardless=gocardless)
    month_title, currencies, month_rows = month_build(tenant, today)
    run_when, run_what = next_run(tenant, now, today)
    return Dashboard(
        tenant=tenant,
        today=today,
        today_text=local_date_display(today),
        attention=attention,
        attention_groups=needs_attention_groups(tenant),
        attention_all_url=changelist(
            "collection.collectionattempt", state=AttemptState.NEEDS_ATTENTION, tenant=tenant.pk
        ),
        month_title=month_title,
        currencies=currencies,
        month_rows=month_rows,
        next_run=run_when,
        next_run_detail=run_what,
        next_run_url=changelist("collection.collectionrun", tenant=tenant.pk),
        budgets=budgets_build(tenant, exact, now),
        daily_chart=_daily_chart(tenant, today),
        daily_url=changelist(
            "gocardless.payment",
            tenant__id__exact=tenant.pk,
            charge_date__gte=today - dt.timedelta(days=CHART_DAYS - 1),
            charge_date__lte=today,
        ),
        reason_chart=_reason_chart(tenant, today),
        reason_url=changelist(
            "collection.collectionattempt",
            tenant=tenant.pk,
            charge_date__gte=today - dt.timedelta(days=CHART_DAYS - 1),
            charge_date__lte=today,
        ),
    )


# --- charts ---------------------------------------------------------------------------------------


def _daily_chart(tenant, today: dt.date) -> charts.DailyChart:
    first = today - dt.timedelta(days=CHART_DAYS - 1)
    per_day: dict[dt.date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in (
        Payment.objects.filter(tenant=tenant, charge_date__gte=first, charge_date__lte=today)
        .values("charge_date", "status")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        kind = (
            "collected" if row["status"] in COLLECTED
            else "failed" if row["status"] in (*FAILED, *CHARGED_BACK)
            else "in_progress" if row["status"] in IN_PROGRESS
            else None
        )
        if kind:
            per_day[row["charge_date"]][kind] += row["n"]

    def day_url(day: dt.date) -> str:
        return changelist("gocardless.payment", tenant__id__exact=tenant.pk, charge_date=day)

    return charts.daily_chart(first=first, last=today, counts=per_day, url_for=day_url)


def _reason_chart(tenant, today: dt.date) -> charts.ReasonChart:
    first = today - dt.timedelta(days=CHART_DAYS - 1)
    sent = (
        CollectionAttempt.objects.filter(
            tenant=tenant, charge_date__gte=first, charge_date__lte=today
        )
        .exclude(payment_gocardless_id="")
        .values("failure_cause")
        .annotate(n=Count("pk"))
        .order_by()
    )
    by_cause = {row["failure_cause"]: row["n"] for row in sent}
    total = sum(by_cause.values())
    reasons = []
    for cause, count in by_cause.items():
        if not cause:
            continue
        url = changelist(
            "collection.collectionattempt",
            tenant=tenant.pk,
            failure_cause__exact=cause,
            charge_date__gte=first,
            charge_date__lte=today,
        )
        reasons.append((words(cause, FAILURE_CAUSE_WORDS), count, url))
    return charts.reason_chart(total=total, reasons=reasons)
