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
- *Next run*: the company's collection hour in its zone, as ``collection.schedules``
  decides it; *API budget*: Exact's budget row as last reported, "unknown" without one.
- Charts: GoCardless payments per charge date over 90 days; why ml-connector's payments
  failed (the cause is kept on the attempt), as a share of those sent.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Q, Sum

from core.calendars import tenant_today
from core.display import (
    FAILURE_CAUSE_WORDS,
    NOTHING,
    local_date_display,
    local_time_display,
    minor_display,
    money_display,
    sentence,
    words,
)
from exact.models import ConnectionStatus as ExactStatus
from exact.models import ExactConnection
from exact.selectors import connection_budget
from gocardless.models import ConnectionStatus as GoCardlessStatus
from gocardless.models import GoCardlessConnection, Payment, Payout, Refund
from reconciliation.bookings.models import Booking, BookingState
from reconciliation.collection.models import (
    AttemptState,
    CollectionAttempt,
    CollectionRun,
    RunKind,
    RunState,
    RunTrigger,
)
from reconciliation.collection.selectors import attempts_needing_attention
from reconciliation.customers.models import CustomerLink, LinkState
from reconciliation.workspace import charts
from reconciliation.workspace.links import change, changelist
from tenants.models import CollectionMode

CHART_DAYS = 90
# Payment statuses by what they mean for the money (GoCardless payment lifecycle).
COLLECTED = ("confirmed", "paid_out")
FAILED = ("failed",)
CHARGED_BACK = ("charged_back",)
IN_PROGRESS = ("pending_customer_approval", "pending_submission", "submitted")
REFUND_PAID = ("paid",)
PAYOUT_PAID = ("paid",)
# How often the collection sweep looks for companies whose hour has come.
SWEEP_MINUTES = 15


def plural(count: int, one: str, many: str) -> str:
    return f"{one if count == 1 else many}"


# --- the shapes the template reads ----------------------------------------------------------------


@dataclass
class Attention:
    """One line of *Needs a person today*: a count (linked) and what it means in words."""

    count: int
    text: str
    url: str
    detail: str = ""
    link_text: str = ""  # instead of the count, for a thing that is not counted


@dataclass
class Cell:
    amount: str
    count: int
    url: str
    count_text: str = ""


@dataclass
class MonthRow:
    label: str
    explain: str
    cells: dict[str, Cell | None]


@dataclass
class Budget:
    provider: str
    text: str
    url: str = ""


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
    notes: list[str] = field(default_factory=list)

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
    attention = (
        _previews(tenant)
        + _bookings(tenant)
        + _ambiguous_links(tenant)
        + _connections(tenant, exact, gocardless)
    )
    month_title, currencies, month_rows = _month(tenant, today)
    next_run, next_run_detail = _next_run(tenant, now, today)
    return Dashboard(
        tenant=tenant,
        today=today,
        today_text=local_date_display(today),
        attention=attention,
        attention_groups=_needs_attention(tenant),
        attention_all_url=changelist(
            "collection.collectionattempt", state=AttemptState.NEEDS_ATTENTION, tenant=tenant.pk
        ),
        month_title=month_title,
        currencies=currencies,
        month_rows=month_rows,
        next_run=next_run,
        next_run_detail=next_run_detail,
        next_run_url=changelist("collection.collectionrun", tenant=tenant.pk),
        budgets=_budgets(tenant, exact, now),
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


# --- needs a person today -------------------------------------------------------------------------


def _previews(tenant) -> list[Attention]:
    waiting = list(
        CollectionRun.objects.filter(
            tenant=tenant, kind=RunKind.PREVIEW, state=RunState.AWAITING_APPROVAL
        )
        .order_by("-started_at", "-id")
        .values("pk", "totals", "to_collect")
    )
    if not waiting:
        return []
    totals: dict[str, Decimal] = defaultdict(Decimal)
    invoices = 0
    for run in waiting:
        invoices += run["to_collect"]
        for currency, amount in (run["totals"] or {}).items():
            totals[currency] += Decimal(str(amount))
    count = len(waiting)
    amounts = ", ".join(money_display(v, c) for c, v in sorted(totals.items()) if v)
    url = (
        change(CollectionRun(pk=waiting[0]["pk"]))
        if count == 1
        else changelist(
            "collection.collectionrun",
            tenant=tenant.pk,
            kind__exact=RunKind.PREVIEW,
            state__exact=RunState.AWAITING_APPROVAL,
        )
    )
    text = (
        "collection preview waits for your approval"
        if count == 1
        else "collection previews wait for your approval"
    )
    detail = f"{invoices:,} {plural(invoices, 'invoice', 'invoices')} to collect"
    return [Attention(count, text, url, f"{detail}: {amounts}" if amounts else detail)]


def _needs_attention(tenant) -> list[Attention]:
    """Collections that need a person, one line per reason (the attempt's flag, in words,
    and GoCardless' cause), with the amounts per currency."""
    rows = (
        attempts_needing_attention(tenant=tenant)
        .values("flag", "failure_cause", "currency")
        .annotate(n=Count("pk"), total=Sum("amount"))
        .order_by()
    )
    groups: dict[tuple[str, str], dict] = {}
    for row in rows:
        key = (row["flag"], row["failure_cause"])
        group = groups.setdefault(key, {"n": 0, "totals": {}})
        group["n"] += row["n"]
        group["totals"][row["currency"]] = row["total"] or Decimal(0)
    lines = []
    for (flag, cause), group in sorted(groups.items(), key=lambda kv: (-kv[1]["n"], kv[0])):
        reason = _reason_words(flag, cause)
        amounts = ", ".join(
            money_display(v, c) for c, v in sorted(group["totals"].items()) if c
        )
        url = changelist(
            "collection.collectionattempt",
            state=AttemptState.NEEDS_ATTENTION,
            tenant=tenant.pk,
            flag__exact=flag,
            failure_cause__exact=cause,
        )
        lines.append(Attention(group["n"], reason, url, amounts))
    return lines


def _reason_words(flag: str, cause: str) -> str:
    flag_text = sentence(flag.strip()) if flag.strip() else ""
    cause_text = words(cause, FAILURE_CAUSE_WORDS)
    if flag_text and cause_text:
        return f"{flag_text} ({cause_text[:1].lower()}{cause_text[1:]})"
    return flag_text or cause_text or "Stopped; a person must decide what happens next"


def _bookings(tenant) -> list[Attention]:
    counts = dict(
        Booking.objects.filter(
            tenant=tenant, state__in=(BookingState.GAVE_UP, BookingState.FAILED)
        )
        .values_list("state")
        .annotate(n=Count("pk"))
        .order_by()
    )
    lines = []
    gave_up = counts.get(BookingState.GAVE_UP, 0)
    failed = counts.get(BookingState.FAILED, 0)
    if gave_up:
        lines.append(
            Attention(
                gave_up,
                plural(gave_up, "booking", "bookings")
                + " could not be posted to Exact and stopped trying",
                changelist(
                    "bookings.booking", tenant__id__exact=tenant.pk, state__exact="gave_up"
                ),
                "Read the error, fix it (often a setting or a closed period) and re-post",
            )
        )
    if failed:
        lines.append(
            Attention(
                failed,
                plural(failed, "booking", "bookings") + " failed to post to Exact",
                changelist(
                    "bookings.booking", tenant__id__exact=tenant.pk, state__exact="failed"
                ),
                "Retried automatically; look if the number does not go down",
            )
        )
    return lines


def _ambiguous_links(tenant) -> list[Attention]:
    count = CustomerLink.objects.filter(tenant=tenant, state=LinkState.AMBIGUOUS).count()
    if not count:
        return []
    return [
        Attention(
            count,
            plural(count, "Exact customer matches", "Exact customers match")
            + " more than one GoCardless customer",
            changelist(
                "customers.customerlink", tenant__id__exact=tenant.pk, state__exact="ambiguous"
            ),
            "Confirm the right match: until then nothing is collected from "
            + plural(count, "this customer", "these customers"),
        )
    ]


def _connections(tenant, exact, gocardless) -> list[Attention]:
    lines = []
    for name, connection, needs, disconnected in (
        ("Exact Online", exact, ExactStatus.NEEDS_REAUTH, ExactStatus.DISCONNECTED),
        ("GoCardless", gocardless, GoCardlessStatus.NEEDS_REAUTH, GoCardlessStatus.DISCONNECTED),
    ):
        if connection is None:
            url = changelist(
                "exact.exactconnection"
                if name == "Exact Online"
                else "gocardless.gocardlessconnection"
            )
            lines.append(Attention(0, f"{name} is not connected", url, "", link_text="Connect"))
        elif connection.status == needs:
            lines.append(
                Attention(
                    0,
                    f"{name} must be connected again",
                    change(connection),
                    connection.status_reason or "The permission to use it has ended",
                    link_text="Reconnect",
                )
            )
        elif connection.status == disconnected:
            lines.append(
                Attention(0, f"{name} is not connected", change(connection), "",
                          link_text="Connect")
            )
    return lines


# --- this month -----------------------------------------------------------------------------------


def month_bounds(tenant, today: dt.date) -> tuple[dt.date, dt.date, dt.datetime, dt.datetime]:
    """The calendar month of ``today`` where the tenant is: first day, first day of the next
    month, and the same two as instants (local midnight)."""
    first = today.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    zone = tenant.zone
    return (
        first,
        following,
        dt.datetime.combine(first, dt.time(0), tzinfo=zone),
        dt.datetime.combine(following, dt.time(0), tzinfo=zone),
    )


def _count(count: int, noun: str) -> str:
    return f"{count:,} {noun if count == 1 else noun + 's'}"


def _minor(value) -> int:
    # SUM of a bigint is an integer on SQLite and a numeric (Decimal) on PostgreSQL.
    return int(value or 0)


def _month(tenant, today: dt.date) -> tuple[str, list[str], list[MonthRow]]:
    first, following, start, end = month_bounds(tenant, today)
    only = {"tenant__id__exact": tenant.pk}
    charged = {"charge_date__gte": first, "charge_date__lt": following}
    created = {"gocardless_created_at__gte": start, "gocardless_created_at__lt": end}

    def sums(statuses):
        match = Q(status__in=statuses)
        return Sum("amount", filter=match), Count("pk", filter=match)

    payments = {}
    for row in (
        Payment.objects.filter(tenant=tenant, charge_date__gte=first, charge_date__lt=following)
        .values("currency")
        .annotate(
            collected=sums(COLLECTED)[0],
            collected_n=sums(COLLECTED)[1],
            failed=sums(FAILED)[0],
            failed_n=sums(FAILED)[1],
            charged_back=sums(CHARGED_BACK)[0],
            charged_back_n=sums(CHARGED_BACK)[1],
        )
        .order_by()
    ):
        payments[row["currency"]] = row
    refunds = {
        row["currency"]: row
        for row in Refund.objects.filter(
            tenant=tenant, status__in=REFUND_PAID, gocardless_created_at__gte=start,
            gocardless_created_at__lt=end,
        )
        .values("currency")
        .annotate(total=Sum("amount"), n=Count("pk"))
        .order_by()
    }
    payouts = {
        row["currency"]: row
        for row in Payout.objects.filter(
            tenant=tenant, status__in=PAYOUT_PAID, gocardless_created_at__gte=start,
            gocardless_created_at__lt=end,
        )
        .values("currency")
        .annotate(total=Sum("amount"), fees=Sum("deducted_fees"), n=Count("pk"))
        .order_by()
    }
    policy = [c for c in (tenant.currencies or []) if isinstance(c, str) and len(c) == 3]
    currencies = sorted(c for c in {*payments, *refunds, *payouts, *policy} if c)

    def payment_cell(currency, key, statuses):
        row = payments.get(currency)
        count = row[f"{key}_n"] if row else 0
        amount = _minor(row[key]) if row else 0
        url = changelist(
            "gocardless.payment", **only, currency__exact=currency, **charged,
            **({"status__in": statuses} if len(statuses) > 1 else {"status__exact": statuses[0]}),
        )
        return Cell(minor_display(amount, currency), count, url, _count(count, "payment"))

    def created_cell(model, table, currency, key, statuses):
        row = table.get(currency)
        url = changelist(
            model, **only, currency__exact=currency, status__exact=statuses[0], **created
        )
        noun = "refund" if model == "gocardless.refund" else "payout"
        count = row["n"] if row else 0
        amount = _minor(row[key]) if row else 0
        return Cell(minor_display(amount, currency), count, url, _count(count, noun))

    rows = [
        MonthRow(
            "Collected",
            "Payments charged this month that GoCardless has collected (paid out or not yet)",
            {c: payment_cell(c, "collected", COLLECTED) for c in currencies},
        ),
        MonthRow(
            "Failed",
            "Payments charged this month that the customer's bank refused",
            {c: payment_cell(c, "failed", FAILED) for c in currencies},
        ),
        MonthRow(
            "Charged back",
            "Payments charged this month that the customer has reclaimed from their bank",
            {c: payment_cell(c, "charged_back", CHARGED_BACK) for c in currencies},
        ),
        MonthRow(
            "Refunded",
            "Refunds created this month and paid to the customer",
            {c: created_cell("gocardless.refund", refunds, c, "total", REFUND_PAID)
             for c in currencies},
        ),
        MonthRow(
            "Paid out",
            "What GoCardless sent to your bank account this month (after fees)",
            {c: created_cell("gocardless.payout", payouts, c, "total", PAYOUT_PAID)
             for c in currencies},
        ),
        MonthRow(
            "Fees",
            "GoCardless fees (VAT included) deducted from this month's payouts",
            {c: created_cell("gocardless.payout", payouts, c, "fees", PAYOUT_PAID)
             for c in currencies},
        ),
    ]
    return f"{first:%B %Y}", currencies, rows


# --- next run and API budgets ---------------------------------------------------------------------


def _next_run(tenant, now: dt.datetime, today: dt.date) -> tuple[str, str]:
    """When the scheduled collection starts next (``collection.schedules``: the sweep every
    15 minutes starts a company's run once its local hour has come, once a day)."""
    if not tenant.is_active:
        return "None", "This company is deactivated: nothing is collected or booked."
    if tenant.collection_mode == CollectionMode.OFF:
        return "None", "Collection is switched off in this company's collection policy."
    hour = dt.time(tenant.collection_hour)
    zone = tenant.zone
    what = (
        "A preview for you to approve"
        if tenant.collection_mode == CollectionMode.REVIEW
        else "Collects automatically"
    )
    local = now.astimezone(zone)
    if local.hour < tenant.collection_hour:
        at = dt.datetime.combine(today, hour, tzinfo=zone)
        return f"Today, {local_time_display(at, tenant)}", what
    ran = (
        CollectionRun.objects.filter(tenant=tenant, trigger=RunTrigger.SCHEDULE, as_of=today)
        .exclude(state__in=(RunState.REFUSED, RunState.FAILED))
        .exists()
    )
    if not ran:
        return f"Due now: starts within {SWEEP_MINUTES} minutes", what
    at = dt.datetime.combine(today + dt.timedelta(days=1), hour, tzinfo=zone)
    return f"Tomorrow, {local_time_display(at, tenant)}", what


def _budgets(tenant, exact, now: dt.datetime) -> list[Budget]:
    budgets = []
    if exact is None or not exact.division:
        budgets.append(Budget("Exact Online", "unknown (not connected)"))
    else:
        budget = connection_budget(connection=exact)
        budgets.append(Budget("Exact Online", _exact_budget_text(budget, tenant, now),
                              change(exact)))
    budgets.append(
        Budget("GoCardless", "unknown (not recorded: GoCardless limits calls per minute, "
               "not per day)")
    )
    return budgets


def _exact_budget_text(budget: dict | None, tenant, now: dt.datetime) -> str:
    if budget is None or budget.get("daily_remaining") is None:
        return "unknown (no call to Exact recorded yet)"
    if budget.get("paused_until"):
        return (
            "spent for today: calls to Exact wait until "
            + local_time_display(budget["paused_until"], tenant)
        )
    limit = budget.get("daily_limit")
    remaining = budget["daily_remaining"]
    reset = budget.get("daily_reset")
    if reset is not None and reset <= now and limit is not None:
        remaining = limit  # a new day began at Exact since the last call
    left = f"{max(remaining, 0):,}"
    text = f"{left} of {limit:,} calls left today" if limit else f"{left} calls left today"
    if reset is not None and reset > now:
        text += f" (renews {local_time_display(reset, tenant)})"
    return text


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


__all__ = ["NOTHING", "Dashboard", "dashboard_build", "month_bounds"]
