"""The final state of a month, in terms two runs can be compared by.

What is compared, per company:
- at GoCardless: every payment, refund, payout (with its items), mandate and subscription,
  and the events (what happened, not when);
- in Exact: every entry of the ledger (journal, date, lines) and what is open on every invoice;
- in ml-connector: the bookings (rule, state, amount, date, facts, whether Exact has it), the
  collection attempts and runs, the mirrors (payments, payouts, refunds, mandates, plans),
  the events received (each exactly once), the plan-payment matches, the receivables mirror
  and the month-end report's totals for February.

What is not: ids the simulators hand out (a counter at GoCardless, random GUIDs in Exact for
what the product creates), which depend on the order in which concurrent work happened;
they are replaced by labels made of what the thing is (``payment 27003/1``: invoice 27003's
first attempt). Timestamps of our own rows (when a worker got to it) are left out; business
dates (charge dates, booking dates, payout dates) are compared.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime
from decimal import Decimal

GC_ID = re.compile(r"\b(?:BRQ|BRF|MRQ|PRQ|CBD|CR|CU|BA|MD|PM|RF|PO|SB|IS|EV|WB)"
                   r"[0-9A-HJKMNP-TV-Z]{12}\b")
UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                  r"[0-9a-fA-F]{12}\b")
# Our booking references (Exact's Notes: MLC- and 20 hex digits, random per booking) and the
# simulator's payout references (a counter): which one a row got depends on timing.
REFERENCE = re.compile(r"\b(MLC|SIMCR)-[0-9A-Z]{6,}\b")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?$")
# Keys whose values say when or in which order our processes did something.
DROP_KEYS = {
    "created_at", "updated_at", "received_at", "processed_at", "claimed_at", "sent_at",
    "confirmed_at", "fetched_at", "finished_at", "started_at", "next_retry_at", "failed_at",
    "next_attempt_at", "queued_at", "Created", "Modified", "Timestamp", "EntryNumber",
    "EntryID", "ID", "id", "reference", "attempts", "last_error", "error", "lease_until",
    "decided_at", "delivery", "Reference",
}


class Labels:
    """GoCardless id -> what it is."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.known_uuids: set[str] = set()

    def add(self, gc_id: str, label: str) -> None:
        taken = set(self.names.values())
        unique, n = label, 2
        while unique in taken and self.names.get(gc_id) != unique:
            unique, n = f"{label} #{n}", n + 1
        self.names[gc_id] = unique

    def text(self, value: str) -> str:
        value = REFERENCE.sub(lambda m: f"{m.group(1)}-<reference>", value)
        value = GC_ID.sub(lambda m: f"<{self.names.get(m.group(0), 'unlabelled')}>", value)
        return UUID.sub(lambda m: m.group(0) if m.group(0).lower() in self.known_uuids
                        else "<guid>", value)

    def clean(self, value):
        if isinstance(value, dict):
            return {k: self.clean(v) for k, v in sorted(value.items()) if k not in DROP_KEYS}
        if isinstance(value, list | tuple):
            return [self.clean(v) for v in value]
        if isinstance(value, Decimal):
            return str(value)
        if isinstance(value, datetime):
            return "<time>"
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, str):
            if TIMESTAMP.match(value) and not value[11:19] == "00:00:00":
                return "<time>"
            return self.text(value)
        return value


def _sorted(rows: list) -> list:
    return sorted(rows, key=lambda r: repr(r))


def _gocardless_labels(sim, labels: Labels) -> None:
    customers = {c["id"]: c.get("company_name") or c.get("email")
                 for c in sim.resource("customers")}
    for account in sim.resource("customer_bank_accounts"):
        labels.add(account["id"], f"bank account {customers.get(account['links']['customer'])}")
    for customer_id, name in customers.items():
        labels.add(customer_id, f"customer {name}")
    for mandate in sim.resource("mandates"):
        labels.add(mandate["id"], f"mandate {customers.get(mandate['links']['customer'])}")
    for plan in sim.resource("subscriptions"):
        labels.add(plan["id"], f"subscription {plan.get('name')}")
    for creditor in sim.resource("creditors"):
        labels.add(creditor["id"], "creditor")
    plan_names = {p["id"]: p.get("name") for p in sim.resource("subscriptions")}
    for payment in sorted(sim.resource("payments"), key=lambda p: (p["charge_date"], p["amount"])):
        metadata = payment.get("metadata") or {}
        attempt = metadata.get("mlc_attempt", "")
        if attempt:
            label = f"payment {metadata.get('exact_invoice')}/{attempt.rsplit('/', 1)[-1]}"
        elif payment["links"].get("subscription"):
            label = (f"payment of {plan_names.get(payment['links']['subscription'])} "
                     f"on {payment['charge_date']}")
        else:
            label = f"payment {payment['amount']} on {payment['charge_date']}"
        labels.add(payment["id"], label)
    for refund in sim.resource("refunds"):
        labels.add(refund["id"], f"refund {refund['amount']} of "
                                 f"{labels.names.get(refund['links']['payment'])}")
    for payout in sorted(sim.resource("payouts"),
                         key=lambda p: (p.get("arrival_date") or "", p["amount"])):
        labels.add(payout["id"], f"payout {payout['amount']} {payout['currency']} "
                                 f"arriving {payout.get('arrival_date')}")


def _gocardless_state(sim, labels: Labels) -> dict:
    state = {}
    for kind in ("payments", "refunds", "mandates", "subscriptions", "customers"):
        state[kind] = _sorted([labels.clean({**r, "label": labels.names.get(r["id"])})
                               for r in sim.resource(kind)])
    state["payouts"] = _sorted([
        labels.clean({**p, "label": labels.names.get(p["id"]),
                      "items": _sorted(labels.clean(sim.resource("payout_items", p["id"])))})
        for p in sim.resource("payouts")])
    state["events"] = sorted(Counter(
        f"{e['resource_type']} {e['action']} "
        f"{labels.text(next(iter(e.get('links', {}).values()), ''))} "
        f"{(e.get('details') or {}).get('cause', '')}"
        for e in sim.events()).items())
    return state


def _exact_state(company, labels: Labels) -> dict:
    sim, division = company.exact_sim, company.division
    entries = []
    for entry in sim.ledger(division=division):
        entries.append(labels.clean(entry))
    invoices = {}
    for customer in company.customers:
        for invoice in customer.invoices:
            found = sim.invoice(division=division, number=invoice.number)
            invoices[str(invoice.number)] = labels.clean(
                {k: found.get(k) for k in ("AmountDC", "AmountFC", "Status", "Open",
                                            "OutstandingAmountFC", "AmountOpenFC")
                 if k in found})
    return {"ledger": _sorted(entries), "invoices": invoices}


def _product_state(company, labels: Labels) -> dict:
    from exact.models import ExactReceivable
    from gocardless.models import GoCardlessEvent, Mandate, Payment, Payout, Refund
    from reconciliation.bookings.models import Booking
    from reconciliation.bookings.report import report_build
    from reconciliation.collection.models import CollectionAttempt, CollectionRun

    tenant = company.tenant
    state: dict = {}
    state["bookings"] = _sorted([labels.clean({
        **{k: v for k, v in row.items() if k != "exact_entry_id"},
        "in_exact": bool(row["exact_entry_id"])})
        for row in Booking.objects.filter(tenant=tenant).values(
            "key", "rule", "state", "amount_minor", "currency", "booking_date", "facts",
            "gocardless_id", "exact_entry_id")])
    state["attempts"] = _sorted([labels.clean(row) for row in (
        CollectionAttempt.objects.filter(tenant=tenant).values(
            "invoice_number", "amount", "currency", "state", "charge_date",
            "payment_gocardless_id", "flag"))])
    # A failed or refused run leaves its slot free and the next sweep runs it again; a run
    # whose process died is abandoned and a new run resumes it; a payment sent without an
    # answer is resent by a run of its own: the runs compared are those that did the day's
    # scheduled work (the report lists the others, each run's decisions in its JSON).
    state["runs"] = sorted(Counter(
        f"{r['trigger']} {r['kind']} {r['state']} {r['as_of']}"
        for r in CollectionRun.objects.filter(tenant=tenant).exclude(
            state__in=("failed", "refused", "abandoned")).exclude(trigger="resend").values(
            "trigger", "kind", "state", "as_of")).items())
    mirrors = {"payments": (Payment, ("gocardless_id", "status", "amount", "currency",
                                      "charge_date")),
               "payouts": (Payout, ("gocardless_id", "status", "amount", "currency")),
               "refunds": (Refund, ("gocardless_id", "status", "amount")),
               "mandates": (Mandate, ("gocardless_id", "status"))}
    for name, (model, fields) in mirrors.items():
        state[f"mirror {name}"] = _sorted([labels.clean(r) for r in
                                           model.objects.filter(tenant=tenant).values(*fields)])
    events = Counter(GoCardlessEvent.objects.filter(tenant=tenant)
                     .values_list("event_id", flat=True))
    state["events received twice"] = sorted(e for e, n in events.items() if n > 1)
    state["events received"] = len(events)
    state["events at GoCardless"] = len(company.gc_sim.events())
    state["receivables"] = _sorted([labels.clean(r) for r in ExactReceivable.objects.filter(
        tenant=tenant).values("invoice_number", "outstanding", "is_fully_paid")])
    report = report_build(tenant=tenant, start=date(2027, 2, 1), end=date(2027, 2, 28))
    state["report totals"] = labels.clean(dict(report.totals))
    state["report payouts balanced"] = [bool(row.balanced) for row in report.payouts]
    return state


def snapshot(month) -> dict:
    result = {}
    for company in month.companies:
        labels = Labels()
        from tests.chaos.story import fixed_id

        labels.known_uuids = {str(v).lower() for v in company.accounts.values()} | {
            fixed_id(company.slug, "invoice", i.number)
            for c in company.customers for i in c.invoices}
        _gocardless_labels(company.gc_sim, labels)
        result[company.slug] = {
            "gocardless": _gocardless_state(company.gc_sim, labels),
            "exact": _exact_state(company, labels),
            "ml-connector": _product_state(company, labels),
        }
    return result


def differences(calm: dict, chaos: dict, path: str = "") -> list[str]:
    """Where two snapshots differ, as readable lines (empty: equal)."""
    if isinstance(calm, dict) and isinstance(chaos, dict):
        said = []
        for key in sorted(set(calm) | set(chaos), key=str):
            if key not in chaos:
                said.append(f"{path}/{key}: only in the fault-free run: {calm[key]!r:.300}")
            elif key not in calm:
                said.append(f"{path}/{key}: only in the chaos run: {chaos[key]!r:.300}")
            else:
                said += differences(calm[key], chaos[key], f"{path}/{key}")
        return said
    if isinstance(calm, list) and isinstance(chaos, list):
        if calm == chaos:
            return []
        missing = [r for r in calm if r not in chaos]
        extra = [r for r in chaos if r not in calm]
        if not missing and not extra:
            return [f"{path}: same rows, counted differently ({len(calm)} / {len(chaos)})"]
        return ([f"{path}: missing in the chaos run: {r!r:.400}" for r in missing]
                + [f"{path}: extra in the chaos run: {r!r:.400}" for r in extra])
    if calm != chaos:
        return [f"{path}: {calm!r:.200} (fault-free) != {chaos!r:.200} (chaos)"]
    return []
