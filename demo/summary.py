"""What the demo did, in the words of a finance team: the facts (``summary_build``, read-only
queries) and their text (``summary_text``)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from demo.run import DemoResult

SYMBOLS = {"EUR": "€", "GBP": "£"}


def money(currency: str, amount) -> str:
    value = Decimal(amount).quantize(Decimal("0.01"))
    sign = "-" if value < 0 else ""
    return f"{sign}{SYMBOLS.get(currency, currency + ' ')}{abs(value):,.2f}"


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else (words or word + 's')}"


def first_sentence(text: str) -> str:
    return text.split(". ")[0].rstrip(".")


def totals_text(totals: dict) -> str:
    parts = [money(c, a) for c, a in sorted(totals.items()) if Decimal(a)]
    return " + ".join(parts) or "nothing"


@dataclass
class PayoutLine:
    reference: str
    currency: str
    payments: int
    collected: Decimal  # the payments in it
    fees: Decimal  # GoCardless fees incl. VAT (deducted)
    amount: Decimal  # what reaches the bank
    arrival_date: str
    status: str


@dataclass
class DemoSummary:
    tenant: str
    admin_url: str
    login: tuple[str, str]
    customers: int = 0
    invoices: int = 0
    credit_notes: int = 0
    overdue: int = 0
    open_totals: dict = field(default_factory=dict)
    matched_existing: int = 0
    invited: int = 0
    completed: int = 0
    waiting: list[str] = field(default_factory=list)
    not_invited: list[str] = field(default_factory=list)
    with_mandate: int = 0
    mandates_active: int = 0
    preview_id: int | None = None
    preview_collect: int = 0
    preview_totals: dict = field(default_factory=dict)
    preview_skips: dict = field(default_factory=dict)
    approved_by: str = ""
    payments_created: int = 0
    invoices_collected: int = 0
    created_totals: dict = field(default_factory=dict)
    attempt_states: dict = field(default_factory=dict)
    paid_out_totals: dict = field(default_factory=dict)
    payouts: list[PayoutLine] = field(default_factory=list)
    # Subscriptions GoCardless collects by itself, one line each (summary_plans), and what
    # their payments paid: one line per plan payment (summary_plan_payments).
    plans: list[str] = field(default_factory=list)
    plan_payments: list[str] = field(default_factory=list)
    # Payment links after a failure the rules do not retry, one line each (summary_pay_links).
    pay_links: list[str] = field(default_factory=list)
    # The scheduled collection run: the schedule in words and the dashboard's next run.
    schedule: str = ""
    next_run: str = ""
    bookings_available: bool = False
    bookings_note: str = ""
    bookings_by_rule: dict = field(default_factory=dict)
    bookings_by_state: dict = field(default_factory=dict)
    exact_closed: int = 0
    exact_conditions_dd: int = 0
    exact_mandate_records: int = 0  # open DirectDebitMandates records we wrote
    # Collections that need a person: the admin's *Needs attention* filter, the same rows.
    attention: list[str] = field(default_factory=list)
    retries: list[str] = field(default_factory=list)  # failed, collected again on a date
    follow_up: list[str] = field(default_factory=list)  # bookings, invitations, not invited
    days_advanced: int = 0
    gocardless_today: str = ""
    story_start: str = ""  # the story's first day; it ends today
    today: str = ""

    @property
    def fees_total(self) -> dict:
        out: dict[str, Decimal] = defaultdict(Decimal)
        for p in self.payouts:
            out[p.currency] += p.fees
        return dict(out)


def summary_build(*, tenant, result: DemoResult, admin_url: str, login) -> DemoSummary:
    from exact.models import ExactAccount, ExactReceivable, ReceivableKind
    from gocardless.models import Mandate, Payout
    from reconciliation.collection.models import (
        AttemptState,
        CollectionAttempt,
        CollectionItem,
        CollectionRun,
        Decision,
    )
    from reconciliation.collection.selectors import (
        attempts_needing_attention,
        attempts_retry_scheduled,
    )
    from reconciliation.customers.models import (
        CustomerLink,
        InvitationState,
        LinkState,
        MandateInvitation,
    )

    s = DemoSummary(tenant=tenant.name, admin_url=admin_url, login=tuple(login))
    s.days_advanced, s.gocardless_today = result.days_advanced, result.gocardless_today
    s.story_start = result.story_start.isoformat() if result.story_start else ""
    s.today = result.today.isoformat() if result.today else s.gocardless_today
    s.open_totals, s.overdue = result.exact_open_totals, result.exact_overdue

    # Exact: what the books held before anything was collected (from the first sync's rows).
    receivables = ExactReceivable.objects.filter(tenant=tenant)
    s.customers = ExactAccount.objects.filter(tenant=tenant).count()
    s.invoices = receivables.filter(kind=ReceivableKind.INVOICE).count()
    s.credit_notes = receivables.filter(kind=ReceivableKind.CREDIT_NOTE).count()
    s.exact_closed = receivables.filter(kind=ReceivableKind.INVOICE, is_fully_paid=True).count()
    s.exact_conditions_dd = ExactAccount.objects.filter(
        tenant=tenant, payment_condition="DD"
    ).count()

    # Customers and mandates.
    links = CustomerLink.objects.filter(tenant=tenant).select_related("mandate")
    s.matched_existing = links.filter(
        state=LinkState.MATCHED, matched_by__in=["metadata", "email", "name_postcode"]
    ).count()
    invitations = MandateInvitation.objects.filter(tenant=tenant).select_related("link")
    s.invited = invitations.count()
    s.exact_mandate_records = sum(
        1
        for link in links
        for record in ((link.reflected or {}).get("mandates") or {}).values()
        if not record.get("cancelled")
    )
    s.completed = invitations.filter(state=InvitationState.COMPLETED).count()
    s.waiting = sorted(
        i.link.exact_name
        for i in invitations.filter(state__in=[InvitationState.PENDING, InvitationState.SENT])
    )
    s.not_invited = sorted(
        f"{link.exact_name}: {link.registration_note}"
        for link in links.exclude(registration_note="").filter(mandate__isnull=True)
    )
    s.with_mandate = links.filter(mandate__isnull=False).count()
    s.mandates_active = Mandate.objects.filter(
        tenant=tenant, status="active", pk__in=links.values("mandate")
    ).count()

    # The collection: the preview and the approved run.
    preview = CollectionRun.objects.filter(pk=result.preview_id).first()
    if preview is not None:
        s.preview_id = preview.pk
        s.preview_collect = preview.to_collect
        s.preview_totals = preview.totals
        s.approved_by = preview.approved_by.username if preview.approved_by else ""
        skipped = CollectionItem.objects.filter(run=preview).exclude(decision=Decision.COLLECT)
        reasons = Counter(skipped.values_list("reason", flat=True))
        labels = dict(CollectionItem._meta.get_field("reason").choices)
        for reason, n in reasons.most_common():
            who = sorted(set(skipped.filter(reason=reason).values_list("account_label", flat=True)))
            words_ = labels.get(reason, reason)
            # Lower only the first letter: "collected by a GoCardless subscription …".
            label = f"{n} {words_[:1].lower()}{words_[1:]}"
            if len(who) <= 3:  # short enough to name the customers
                label += f" ({', '.join(name.split(' ', 1)[-1] for name in who)})"
            s.preview_skips[reason] = label
    live = CollectionRun.objects.filter(pk=result.live_run_id).first()
    attempts = CollectionAttempt.objects.filter(tenant=tenant)
    if live is not None:
        s.payments_created = live.submitted
        s.created_totals = live.submitted_totals
        s.invoices_collected = (
            attempts.filter(run=live).values("receivable_exact_id").distinct().count()
        )
    s.attempt_states = dict(Counter(attempts.values_list("state", flat=True)))
    paid_out: dict[str, Decimal] = defaultdict(Decimal)
    for attempt in attempts.filter(state=AttemptState.PAID_OUT):
        paid_out[attempt.currency] += attempt.amount
    s.paid_out_totals = dict(paid_out)

    # Payouts, with their fees (payout items: payments in, fees out).
    for payout in Payout.objects.filter(tenant=tenant).order_by("arrival_date", "currency"):
        items = list(payout.items.all())
        collected = sum((i.amount for i in items if i.item_type == "payment_paid_out"), Decimal(0))
        s.payouts.append(
            PayoutLine(
                reference=payout.reference or payout.gocardless_id,
                currency=payout.currency,
                payments=sum(1 for i in items if i.item_type == "payment_paid_out"),
                collected=collected / 100,
                fees=Decimal(payout.deducted_fees) / 100,
                amount=Decimal(payout.amount) / 100,
                arrival_date=payout.arrival_date.isoformat() if payout.arrival_date else "",
                status=payout.status,
            )
        )

    s.plans = summary_plans(tenant=tenant)
    s.plan_payments = summary_plan_payments(tenant=tenant)
    s.pay_links = summary_pay_links(tenant=tenant)
    s.schedule, s.next_run = summary_schedule(tenant=tenant)

    # Bookings in Exact.
    s.bookings_available, s.bookings_note = result.bookings_available, result.bookings_note
    if result.bookings_available:
        from reconciliation.bookings.models import Booking

        bookings = Booking.objects.filter(tenant=tenant)
        rules = dict(Booking._meta.get_field("rule").choices)
        s.bookings_by_rule = dict(
            Counter(rules.get(r, r) for r in bookings.values_list("rule", flat=True)).most_common()
        )
        s.bookings_by_state = dict(Counter(bookings.values_list("state", flat=True)))
        for booking in bookings.exclude(state="confirmed"):
            s.follow_up.append(
                f"Booking {booking.reference} ({booking.get_rule_display()}) is "
                f"{booking.get_state_display().lower()}: {booking.last_error or 'not posted'}"
            )

    # What a person should look at: needs attention is the product's one definition
    # (reconciliation.collection.selectors), exactly what the admin's filter lists.
    def what(attempt) -> str:
        return f"{attempt.account_label}, invoice {attempt.invoice_number}, " + money(
            attempt.currency, attempt.amount
        )

    for attempt in attempts_needing_attention(tenant=tenant).order_by("invoice_number", "pk"):
        why = attempt.flag or first_sentence(attempt.failure_description or attempt.failure_cause)
        s.attention.append(f"{what(attempt)}: {why or 'see the attempt'}")
    for attempt in attempts_retry_scheduled(tenant=tenant).order_by("next_retry_on", "pk"):
        cause = first_sentence(attempt.failure_description or attempt.failure_cause)
        s.retries.append(
            f"{what(attempt)}: {cause or 'refused by the bank'}; "
            f"retry scheduled for {attempt.next_retry_on}"
            + retry_run_words(tenant=tenant, day=attempt.next_retry_on)
        )
    for name in s.waiting:
        s.follow_up.append(f"{name} has not completed the mandate invitation yet")
    s.follow_up += [f"Not invited — {line}" for line in s.not_invited]
    return s


def retry_run_words(*, tenant, day: date) -> str:
    """The scheduled run that collects a retry due on ``day``: the first slot of the
    company's schedule on or after that day (a run collects every retry that has come due,
    selection_rules.py), and not before now."""
    import datetime as dt

    from django.utils import timezone

    from core.display import local_time_display
    from reconciliation.collection.schedule_slots import local_hour_instant, schedule_next_slot

    start = local_hour_instant(day, 0, tenant.zone) - dt.timedelta(microseconds=1)
    slot = schedule_next_slot(tenant=tenant, after=max(start, timezone.now()))
    return f", collected by the scheduled run of {local_time_display(slot.at, tenant)}"


def summary_plans(*, tenant) -> list[str]:
    """Each subscription: whose, what, how often, its payments so far and the next one."""
    from core.display import local_date_display, words
    from core.money import from_minor_units
    from gocardless.models import Mandate, Payment, Subscription
    from gocardless.words import SUBSCRIPTION_STATUS_WORDS, interval_words
    from reconciliation.customers.models import CustomerLink

    lines = []
    for plan in Subscription.objects.filter(tenant=tenant).order_by("gocardless_created_at"):
        customer_id = (Mandate.objects.filter(tenant=tenant, gocardless_id=plan.mandate_id)
                       .values_list("customer_id", flat=True).first())
        who = (CustomerLink.objects.filter(tenant=tenant,
                                           gocardless_customer__gocardless_id=customer_id)
               .values_list("exact_name", flat=True).first()) or plan.mandate_id
        payments = Payment.objects.filter(tenant=tenant, subscription_id=plan.gocardless_id)
        paid_out = payments.filter(status="paid_out").count()
        upcoming = sorted(plan.upcoming_payments, key=lambda e: e.get("charge_date") or "")
        ahead = ""
        if upcoming:
            ahead = "; next on " + local_date_display(
                date.fromisoformat(upcoming[0]["charge_date"]))
        lines.append(
            f"{who}: '{plan.name}', "
            f"{money(plan.currency, from_minor_units(plan.amount, plan.currency))} "
            f"{interval_words(plan.interval_unit, plan.interval, plan.day_of_month).lower()}"
            f" — {words(plan.status, SUBSCRIPTION_STATUS_WORDS)}; "
            f"{plural(payments.count(), 'payment')} so far, {paid_out} paid out{ahead}"
        )
    return lines


def _receipt_words(receipt) -> str:
    if receipt is None:
        return "its receipt not booked yet"
    if receipt.state == "confirmed":
        return "its receipt booked in Exact against the invoice, which Exact closed"
    return f"its receipt: {receipt.get_state_display().lower()}"


def summary_plan_payments(*, tenant) -> list[str]:
    """Each plan payment: which invoice it pays (reconciliation/bookings/plan_matching.py),
    matched how, and its receipt in Exact; or why it waits for a person."""
    from core.display import local_date_display
    from core.money import from_minor_units
    from reconciliation.bookings.models import PlanMatchedBy, PlanMatchState, PlanPaymentMatch

    lines = []
    matches = PlanPaymentMatch.objects.filter(tenant=tenant).select_related("payment", "receipt")
    for match in matches.order_by("payment__charge_date", "pk"):
        payment = match.payment
        amount = from_minor_units(payment.amount, payment.currency)
        what = (
            f"payment of {money(payment.currency, amount)} charged "
            f"{local_date_display(payment.charge_date)}"
        )
        if match.state == PlanMatchState.MATCHED:
            how = (
                "matched automatically (the one open invoice of that amount due around its "
                "charge date)"
                if match.matched_by == PlanMatchedBy.AUTOMATIC
                else "matched by a person"
            )
            receipt = match.receipt
            booked = _receipt_words(receipt)
            lines.append(f"{what} pays invoice {match.invoice_number}: {how}; {booked}")
        else:
            lines.append(f"{what}: {match.get_state_display().lower()}. {match.note}".strip())
    return lines


def summary_pay_links(*, tenant) -> list[str]:
    """Each payment link: the failure that sent it, to whom, and what became of it."""
    from core.display import FAILURE_CAUSE_WORDS, local_time_display, words
    from reconciliation.bookings.models import Booking, Rule
    from reconciliation.collection.models import PayLink, PayLinkState

    lines = []
    for link in PayLink.objects.filter(tenant=tenant).select_related("attempt").order_by("pk"):
        attempt = link.attempt
        cause = words(attempt.failure_cause, FAILURE_CAUSE_WORDS) or "Refused by the bank"
        cause = cause[:1].lower() + cause[1:]
        line = (
            f"{attempt.account_label}, invoice {link.invoice_number}, "
            f"{money(link.currency, link.amount)}: the bank refused the payment "
            f"({cause.rstrip('.')}); not collected again by direct debit: a payment link was "
            f"e-mailed to {link.email or 'nobody'} on {local_time_display(link.sent_at, tenant)}"
        )
        if link.state == PayLinkState.PAID:
            how = "by instant bank transfer" if link.instant else "by a new direct debit mandate"
            receipt = Booking.objects.filter(
                tenant=tenant, rule=Rule.RECEIPT, gocardless_id=link.payment_gocardless_id
            ).first()
            line += f"; the customer paid it {how}, {_receipt_words(receipt)}"
        else:
            line += f"; {link.get_state_display().lower()}"
        lines.append(line)
    return lines


def summary_schedule(*, tenant) -> tuple[str, str]:
    """The company's schedule in words and the dashboard's *Next collection run* (the same
    function the dashboard uses), at this moment."""
    from django.utils import timezone

    from core.calendars import tenant_today
    from reconciliation.workspace.schedule import next_run
    from tenants.models import ScheduleKind

    hour = f"{tenant.collection_hour:02d}:00 ({tenant.time_zone})"
    if tenant.schedule_kind == ScheduleKind.MONTH_DAYS:
        days = " and ".join(str(d) for d in tenant.schedule_month_days)
        what = f"on days {days} of the month at {hour}, moved to the next working day"
    elif tenant.schedule_kind == ScheduleKind.WEEKDAYS:
        names = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
        what = f"on {', '.join(names[d] for d in tenant.schedule_weekdays)} at {hour}"
    else:
        what = f"every day at {hour}"
    when, detail = next_run(tenant, timezone.now(), tenant_today(tenant))
    return what, f"{when} — {detail[:1].lower()}{detail[1:]}"


def summary_text(s: DemoSummary) -> str:
    lines = [
        "",
        "=" * 78,
        f"  ml-connector demo — {s.tenant}",
        "=" * 78,
        "",
        f"The story starts {s.days_advanced} days ago, on {s.story_start or '?'}, and ends "
        f"today, {s.today or '?'}",
        "  (ml-connector's, Exact's and GoCardless' clocks moved together, day by day)",
        "",
        f"Exact Online (the books, on {s.story_start or 'the first day'})",
        f"  {s.customers} customers; {plural(s.invoices, 'open invoice')} "
        f"({s.overdue} overdue) and {plural(s.credit_notes, 'credit note')}: "
        f"{totals_text(s.open_totals)} receivable",
        "",
        "Customers and mandates",
        f"  {s.matched_existing} already paid by direct debit at GoCardless: matched automatically",
        f"  {s.invited} invited to a mandate by e-mail; {s.completed} completed GoCardless' page",
        f"  {s.with_mandate} of {s.customers} customers now have a mandate "
        f"({s.mandates_active} active); {s.exact_conditions_dd} carry payment condition DD "
        f"in Exact, {s.exact_mandate_records} a direct debit mandate record",
        "",
        f"Collection (preview #{s.preview_id}, approved by {s.approved_by or 'nobody'})",
        f"  to collect: {plural(s.preview_collect, 'invoice')}, {totals_text(s.preview_totals)}",
    ]
    if s.preview_skips:
        lines.append(f"  not collected now: {'; '.join(s.preview_skips.values())}")
    lines += [
        f"  payments created at GoCardless: {s.payments_created} for "
        f"{plural(s.invoices_collected, 'invoice')}, {totals_text(s.created_totals)}",
        "",
        f"Money (GoCardless, {s.days_advanced} days later: today, {s.today})",
        f"  paid out: {plural(s.attempt_states.get('paid_out', 0), 'payment')}, "
        f"{totals_text(s.paid_out_totals)}",
    ]
    for p in s.payouts:
        lines.append(
            f"  payout {p.reference} ({p.status}, arrives {p.arrival_date}): "
            f"{plural(p.payments, 'payment')} {money(p.currency, p.collected)} less fees "
            f"{money(p.currency, p.fees)} = {money(p.currency, p.amount)} to the bank"
        )
    if s.payouts:
        lines.append(f"  GoCardless fees (incl. VAT): {totals_text(s.fees_total)}")
    else:
        lines.append("  no payouts yet")
    if s.plans:
        lines += ["", "Subscriptions GoCardless collects by itself"]
        lines += [f"  {line}" for line in s.plans]
        lines += [f"  - its {line}" for line in s.plan_payments]
    if s.pay_links:
        lines += ["", "Payment links (failures direct debit cannot fix: the customer pays by bank)"]
        lines += [f"  - {line}" for line in s.pay_links]
    lines += ["", "Booked in Exact"]
    if s.bookings_available:
        confirmed = s.bookings_by_state.get("confirmed", 0)
        total = sum(s.bookings_by_state.values())
        lines.append(f"  {confirmed} of {total} entries posted:")
        lines += [f"  {n:>5}  {rule}" for rule, n in s.bookings_by_rule.items()]
        lines.append(f"  {plural(s.exact_closed, 'invoice')} now closed in Exact by those receipts")
    else:
        lines.append(f"  skipped: {s.bookings_note or 'bookings are not available'}")
    lines += [
        "",
        f"Needs attention: {len(s.attention)} "
        f"(admin: Collection attempts, state filter Needs attention)",
    ]
    lines += [f"  - {line}" for line in s.attention] or ["  nothing"]
    if s.retries:
        lines += [
            "",
            "Retry scheduled (collected again by the first scheduled run from that day, in "
            "review mode in that run's preview; nothing to do now)",
        ]
        lines += [f"  - {line}" for line in s.retries]
    if s.follow_up:
        lines += ["", "To follow up"]
        lines += [f"  - {line}" for line in s.follow_up]
    if s.schedule:
        lines += [
            "",
            f"Scheduled collection: {s.schedule}",
            f"  next collection run: {s.next_run}",
        ]
    lines += [
        "",
        f"Admin: {s.admin_url}   login: {s.login[0]} / {s.login[1]}",
        "=" * 78,
    ]
    return "\n".join(lines)
