"""*Needs a person today*: what waits for a decision in one company, in words, each with the
admin page or filtered list where the person acts. One query per kind of thing.

- collection previews awaiting approval (``CollectionRun``);
- collections that need attention, one line per reason: ``collection.selectors.
  attempts_needing_attention``, the definition the admin's filter and the daily e-mail
  share; the reason is the attempt's flag (already words) with GoCardless' cause in words;
- bookings that gave up posting to Exact, and those failing (retried automatically);
- ambiguous customer matches (``CustomerLink`` state *ambiguous*);
- Exact Online and GoCardless connections that must be connected again, or never were.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Sum

from core.display import FAILURE_CAUSE_WORDS, money_display, sentence, words
from exact.models import ConnectionStatus as ExactStatus
from gocardless.models import ConnectionStatus as GoCardlessStatus
from reconciliation.bookings.models import Booking, BookingState
from reconciliation.collection.models import AttemptState, CollectionRun, RunKind, RunState
from reconciliation.collection.selectors import attempts_needing_attention
from reconciliation.customers.models import CustomerLink, LinkState
from reconciliation.workspace.links import change, changelist

# At most this many reasons are listed; the rest are counted together (the whole list is
# one click away).
REASON_LINES = 6


def plural(count: int, one: str, many: str) -> str:
    return one if count == 1 else many


@dataclass
class Attention:
    """One line of *Needs a person today*: a count (linked) and what it means in words."""

    count: int
    text: str
    url: str
    detail: str = ""
    link_text: str = ""  # instead of the count, for a thing that is not counted


def attention_build(*, tenant, exact, gocardless) -> list[Attention]:
    """Everything but the collections that need attention (``needs_attention_groups``)."""
    return (
        _previews(tenant)
        + _bookings(tenant)
        + _ambiguous_links(tenant)
        + _connections(tenant, exact, gocardless)
    )


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


def needs_attention_groups(tenant) -> list[Attention]:
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
    if len(lines) > REASON_LINES:
        rest = lines[REASON_LINES - 1 :]
        lines = lines[: REASON_LINES - 1]
        lines.append(
            Attention(
                sum(line.count for line in rest),
                f"for {len(rest)} other reasons",
                changelist(
                    "collection.collectionattempt",
                    state=AttemptState.NEEDS_ATTENTION,
                    tenant=tenant.pk,
                ),
            )
        )
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
                else "gocardless.gocardlessconnection",
                tenant__id__exact=tenant.pk,
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
