"""Bookings: what must be written to Exact for each money event, posted exactly once, and
the per-tenant ledger configuration they are posted with (docs/bookings.md)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from core.display import FAILURE_CAUSE_WORDS


class ReceiptOn(models.TextChoices):
    CONFIRMED = "confirmed", "Payment confirmed (money collected)"
    PAID_OUT = "paid_out", "Payment paid out (money in a payout)"


class BookingSettings(models.Model):
    """How one tenant's money events are booked in Exact.

    Codes are what a person types and recognises; the guids Exact's lines need are resolved
    from financial/Journals and financial/GLAccounts when the settings are validated (admin
    save) and kept in ``resolved``. Posting uses only ``resolved``: a code renamed in Exact
    later is caught by the next validation, not by a half-posted entry.
    """

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="booking_settings"
    )
    enabled = models.BooleanField(
        default=True,
        help_text="Off: new money events create no bookings (history is never booked later).",
    )
    receipt_on = models.CharField(
        max_length=10, choices=ReceiptOn.choices, default=ReceiptOn.CONFIRMED
    )
    clearing_journal_code = models.CharField(
        max_length=20, help_text="Bank-type journal that stands for the GoCardless balance."
    )
    bank_journal_code = models.CharField(
        max_length=20,
        blank=True,
        help_text="Bank-type journal of the real bank account. Set it to also post the bank "
        "side of each payout; leave empty when the bank statement import books it.",
    )
    receivables_gl_code = models.CharField(
        max_length=20, help_text="Debtors (receivables) G/L account, type 20."
    )
    fees_gl_code = models.CharField(max_length=20, help_text="GoCardless transaction fees.")
    app_fees_gl_code = models.CharField(
        max_length=20, blank=True, help_text="Partner app fees; empty = the fees account."
    )
    surcharges_gl_code = models.CharField(
        max_length=20, blank=True, help_text="Failure/chargeback surcharges; empty = fees."
    )
    fees_vat_code = models.CharField(
        max_length=20, blank=True, help_text="VAT code on fee lines (VAT is in the fee amount)."
    )
    transfer_gl_code = models.CharField(
        max_length=20,
        help_text="In-transit (kruisposten) G/L account: the payout leaves the clearing "
        "journal to it and the bank statement line takes it from there.",
    )
    unmatched_gl_code = models.CharField(
        max_length=20,
        blank=True,
        help_text="Suspense G/L for payments in a payout that ml-connector did not create; "
        "empty = such a payout is not booked until this is set.",
    )
    resolved = models.JSONField(
        default=dict, blank=True, help_text="Guids resolved from Exact at validation."
    )
    validated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "booking settings"
        verbose_name_plural = "booking settings"

    def __str__(self) -> str:
        return f"Booking settings of {self.tenant}"

    GL_FIELDS = (
        "receivables_gl_code",
        "fees_gl_code",
        "app_fees_gl_code",
        "surcharges_gl_code",
        "transfer_gl_code",
        "unmatched_gl_code",
    )


class Rule(models.TextChoices):
    RECEIPT = "receipt", "Receipt (invoice closed)"
    REVERSAL = "reversal", "Reversal (invoice reopened)"
    PAYOUT = "payout", "Payout: fees, VAT and transfer"
    PAYOUT_BANK = "payout_bank", "Payout arrives in the bank"
    PAYOUT_BOUNCED = "payout_bounced", "Payout bounced"
    REFUND = "refund", "Refund paid"
    REFUND_RETURNED = "refund_returned", "Refund failed, funds returned"


class BookingState(models.TextChoices):
    PENDING = "pending", "Pending"
    # Claimed by a worker; the POST may be in flight. Its outcome is unknown until the
    # worker records it, so a booking found here later is looked up in Exact first.
    SENT = "sent", "Sent (outcome not yet known)"
    CONFIRMED = "confirmed", "Confirmed in Exact"
    FAILED = "failed", "Failed (retrying)"
    GAVE_UP = "gave_up", "Failed (needs attention)"


class Booking(models.Model):
    """One entry that must exist in Exact exactly once.

    ``key`` = rule + GoCardless id (+ a sequence number for receipts/reversals, because a
    payment can be collected again after a late failure); unique per tenant, so a replayed
    event or a second worker can never create a second booking. ``reference`` goes into the
    Notes of every line of the entry: the handle to find the entry in Exact when a post's
    outcome is unknown.
    """

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=120)
    rule = models.CharField(max_length=20, choices=Rule.choices)
    gocardless_id = models.CharField(max_length=40, db_index=True)
    sequence = models.PositiveSmallIntegerField(default=1)
    reference = models.CharField(max_length=40, unique=True, editable=False)
    state = models.CharField(
        max_length=10, choices=BookingState.choices, default=BookingState.PENDING
    )
    # What happened, captured from the mirrors when the event was processed (amounts in
    # minor units, ids, invoice, account). The Exact body is built from it when posting, with
    # the settings of that moment.
    facts = models.JSONField(default=dict)
    currency = models.CharField(max_length=3)
    amount_minor = models.BigIntegerField(help_text="Main amount, minor units.")
    booking_date = models.DateField()
    after = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="followers",
        help_text="Posted only once this booking is confirmed (a reversal after its receipt).",
    )
    exact_entry_id = models.UUIDField(null=True, blank=True)
    exact_entry_number = models.PositiveIntegerField(null=True, blank=True)
    request_body = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # True from just before a POST until its answer is saved: a crash, timeout or reset in
    # between leaves it set, and the next attempt looks the entry up before sending.
    outcome_unknown = models.BooleanField(default=False)
    found_by_lookup = models.BooleanField(default=False)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="uniq_booking_key"),
        ]
        indexes = [
            models.Index(fields=["state", "next_retry_at"], name="booking_due"),
            models.Index(fields=["tenant", "rule", "gocardless_id"], name="booking_rule_gc"),
            # The admin's list in its ordering (Meta.ordering), for all tenants and for one
            # (docs/admin-performance.md): without them every page sorts the whole table.
            models.Index(fields=["-created_at", "-id"], name="booking_latest"),
            models.Index(fields=["tenant", "-created_at", "-id"], name="booking_tenant_latest"),
        ]

    def __str__(self) -> str:
        return self.sentence()

    def subject(self) -> tuple[str, str]:
        """(kind, GoCardless id) of what the booking is about: ("payout", "PO…"),
        ("refund", …) or ("payment", …)."""
        facts = self.facts or {}
        if self.rule in (Rule.PAYOUT, Rule.PAYOUT_BANK, Rule.PAYOUT_BOUNCED):
            return "payout", facts.get("payout") or self.gocardless_id
        if self.rule in (Rule.REFUND, Rule.REFUND_RETURNED):
            return "refund", facts.get("refund") or self.gocardless_id
        return "payment", facts.get("payment") or self.gocardless_id

    def sentence(self) -> str:
        """``Payout PO0000… to the bank``: what the entry in Exact stands for, in words."""
        facts = self.facts or {}
        ident = self.subject()[1]
        invoice = facts.get("invoice")
        if self.rule == Rule.RECEIPT:
            plan = str(facts.get("plan") or "")
            kind = "instalment schedule" if plan.startswith("IS") else "subscription"
            return (
                f"Payment {ident} collected"
                + (f" by {kind} {plan}" if plan else "")
                + (f" for invoice {invoice}" if invoice else "")
                + (" (out of suspense)" if facts.get("from_suspense") else "")
            )
        if self.rule == Rule.REVERSAL:
            cause = facts.get("cause")
            why = f" ({FAILURE_CAUSE_WORDS[cause]})" if cause in FAILURE_CAUSE_WORDS else ""
            again = f": invoice {invoice} open again" if invoice else ""
            return f"Payment {ident} reversed{why}{again}"
        if self.rule == Rule.PAYOUT:
            return f"Payout {ident}: fees, VAT and transfer"
        if self.rule == Rule.PAYOUT_BANK:
            return f"Payout {ident} to the bank"
        if self.rule == Rule.PAYOUT_BOUNCED:
            if facts.get("side") == "bank":
                return f"Payout {ident} bounced: out of the bank again"
            return f"Payout {ident} bounced: back in the GoCardless balance"
        payment = facts.get("payment")
        of_payment = f" of payment {payment}" if payment else ""
        if self.rule == Rule.REFUND:
            return f"Refund {ident}{of_payment} paid to the customer"
        if self.rule == Rule.REFUND_RETURNED:
            return f"Refund {ident}{of_payment} returned"
        return f"Booking {self.gocardless_id}"

    @staticmethod
    def new_reference() -> str:
        return f"MLC-{uuid.uuid4().hex[:20].upper()}"


class RepostState(models.TextChoices):
    WAITING = "waiting", "Waiting for a worker"
    RUNNING = "running", "Re-posting"
    FINISHED = "finished", "Finished"


class RepostBatch(models.Model):
    """A person's *Re-post* of selected bookings, done by one background task (never inside
    the request). The task writes its progress here, so the batch's admin page shows how far
    it is, and a batch whose task was lost (no worker, a crash) shows as such and can be run
    again: bookings already handled are not touched twice (exactly-once itself is
    ``posting.booking_post``'s)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    requested_by_name = models.CharField(max_length=150, blank=True)
    booking_ids = models.JSONField(default=list)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0, help_text="Bookings handled so far.")
    failed = models.PositiveIntegerField(default=0, help_text="Handled but not posted.")
    state = models.CharField(
        max_length=10, choices=RepostState.choices, default=RepostState.WAITING
    )
    # One entry per booking handled: {"booking": pk, "what": words, "outcome": code,
    # "words": why in words, "posted": bool}. Bookings listed here are skipped on a re-run.
    results = models.JSONField(default=list, blank=True)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Written after every booking: a running batch whose heartbeat is old lost its worker.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    runs = models.PositiveSmallIntegerField(default=1, help_text="Times the task was queued.")

    class Meta:
        ordering = ["-queued_at", "-id"]
        verbose_name = "re-post batch"
        verbose_name_plural = "re-post batches"

    def __str__(self) -> str:
        return f"Re-post of {self.total} booking(s)"


class PlanMatchState(models.TextChoices):
    WAITING = "waiting", "Waiting for a person: no single open invoice fits"
    MATCHED = "matched", "Pays an invoice"
    NOT_INVOICE = "not_invoice", "Not an invoice payment (decided by a person)"


class PlanMatchedBy(models.TextChoices):
    NOBODY = "", "Not decided"
    AUTOMATIC = "automatic", "Automatically: exactly one open invoice fits"
    PERSON = "person", "A person"


class PlanPaymentMatch(models.Model):
    """Which Exact invoice a payment of a GoCardless subscription or instalment schedule pays
    (docs/subscriptions.md). Such payments carry none of our metadata: without this row the
    receipt would go to the suspense account and the collection engine would not know the
    invoice is being paid.

    One row per plan payment (the payment's reverse relation ``plan_match``: the collection
    engine reads it through the payment without importing this app, which imports it).
    A matched row, or one a person decided, is never re-matched automatically.
    """

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    payment = models.OneToOneField(
        "gocardless.Payment", on_delete=models.CASCADE, related_name="plan_match"
    )
    plan = models.CharField(max_length=40, help_text="The subscription (SB…) or schedule (IS…).")
    state = models.CharField(
        max_length=12, choices=PlanMatchState.choices, default=PlanMatchState.WAITING
    )
    matched_by = models.CharField(
        max_length=10, choices=PlanMatchedBy.choices, blank=True, default=PlanMatchedBy.NOBODY
    )
    # The invoice it pays (kept when Exact closes the open item and the mirror row goes).
    receivable_exact_id = models.UUIDField(null=True, blank=True, db_index=True)
    invoice_number = models.BigIntegerField(null=True, blank=True)
    account_exact_id = models.UUIDField(null=True, blank=True)
    # Open invoices a person may choose from when waiting: [{"receivable", "invoice",
    # "due_date", "outstanding", "account"}], as found by the last matching.
    candidates = models.JSONField(default=list, blank=True)
    note = models.CharField(max_length=300, blank=True, help_text="Why it waits, in words.")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # Its latest receipt: the collection engine reads its state and time (through
    # ``plan_match__receipt``) to tell whether Exact's open amount already reflects it.
    receipt = models.ForeignKey(
        Booking, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "subscription or instalment payment"
        verbose_name_plural = "subscription and instalment payments"
        indexes = [models.Index(fields=["tenant", "state"], name="plan_match_state")]

    def __str__(self) -> str:
        if self.state == PlanMatchState.MATCHED and self.invoice_number:
            return f"Payment {self.payment.gocardless_id} pays invoice {self.invoice_number}"
        return f"Payment {self.payment.gocardless_id} of {self.plan}"


class CompanyTurnQueued(models.Model):
    """A company's posting turn is queued and has not started yet (company_posting.py).

    Receipts come in bursts (a payout's confirmations, the morning's collection): one queued
    turn posts them all, so the receivers queue a turn only when this row is missing or
    older than ``company_posting.QUEUED_FRESH`` (a turn lost with a killed worker or a
    restarted broker: the next receipt or the minute's sweep queues another). The turn
    deletes the row as it starts, before it looks for due bookings, so a receipt that comes
    in after that look queues the next turn. Never a lock: two turns of one company are
    safe (each booking's claim decides who posts it), only wasted work."""

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    queued_at = models.DateTimeField()

    class Meta:
        verbose_name = "queued posting turn"

    def __str__(self) -> str:
        return f"posting turn of tenant {self.tenant_id}, queued {self.queued_at:%Y-%m-%d %H:%M:%S}"
