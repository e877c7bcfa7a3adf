"""Collection runs, what each run decided per receivable, and the payment attempts.

- ``CollectionRun``: one evaluation of a tenant's open receivables, either a *preview* (nothing
  is created at GoCardless; in review mode it waits for approval) or *live* (payments are
  created). Counts and per-currency totals are kept on the row for the admin's list.
- ``CollectionItem``: one line of a run: a receivable and the decision (collect, or the
  reason it is not collected). A preview's items are what approval submits, exactly.
- ``CollectionAttempt``: one payment we create (or created) for a receivable. Written *before*
  the API call; its key — receivable + attempt number (+ part for instalments) — is unique per
  tenant and is the source of the GoCardless ``Idempotency-Key``, so a rerun after a crash
  sends the same key and adopts the payment that already exists.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.display import FAILURE_CAUSE_WORDS


class RunKind(models.TextChoices):
    PREVIEW = "preview", "Preview"
    LIVE = "live", "Live"


class RunTrigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    USER = "user", "User (Collect now)"
    WEBHOOK = "webhook", "Exact webhook (new invoice)"
    APPROVAL = "approval", "Approval of a preview"
    RETRY = "retry", "Retry now"
    CHANGE = "change", "Invoice changed in Exact"
    RESEND = "resend", "Resending payments whose outcome was unknown"


class RunState(models.TextChoices):
    QUEUED = "queued", "Queued (waiting for the task workers)"
    RUNNING = "running", "Running"
    AWAITING_APPROVAL = "awaiting_approval", "Awaiting approval"
    APPROVED = "approved", "Approved (submitted by a live run)"
    SUPERSEDED = "superseded", "Superseded by a newer preview"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    ABANDONED = "abandoned", "Abandoned (process died; rerun resumes)"
    REFUSED = "refused", "Refused (another live run was active)"


class CollectionRun(models.Model):
    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="collection_runs"
    )
    kind = models.CharField(max_length=10, choices=RunKind.choices)
    trigger = models.CharField(max_length=10, choices=RunTrigger.choices)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    state = models.CharField(max_length=20, choices=RunState.choices, default=RunState.RUNNING)
    as_of = models.DateField(help_text="The tenant's local date the run evaluated.")
    # A scheduled run's slot (schedule_slots.py): the instant the tenant's schedule came due.
    # The unique constraint below makes "one run per slot" the database's decision, whatever
    # the timing of two clusters' sweeps.
    slot_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Scheduled runs: the schedule's slot this run is for (empty for other runs).",
    )
    # A live run that submits an approved preview points at it; only its items are collected.
    preview = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="live_runs"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    # Restricts a run to some receivables (Retry now, a webhook's new invoices); empty: all.
    only_receivables = models.JSONField(default=list, blank=True)
    evaluated = models.PositiveIntegerField(default=0)
    to_collect = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    submitted = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    # {"EUR": "1234.50"}: Decimal strings per currency (to collect / actually submitted).
    totals = models.JSONField(default=dict, blank=True)
    submitted_totals = models.JSONField(default=dict, blank=True)
    # Payments a live run sends (the pending attempts it resumes and every instalment of its
    # lines to collect); known once it has evaluated. The run page's progress is out of this.
    planned = models.PositiveIntegerField(default=0)
    # Liveness of a running live run (SQLite has no advisory locks; see locking.py); for a
    # queued run, when it was queued (or last handed to the task workers again).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # Only one live run per tenant at a time, across every cluster: a queued one (its
            # task not yet started) holds the place as much as a running one.
            models.UniqueConstraint(
                fields=["tenant"],
                condition=Q(kind="live", state__in=("queued", "running")),
                name="collection_one_live_run",
            ),
            # One preview of a tenant waiting for the task workers at a time (Collect now).
            models.UniqueConstraint(
                fields=["tenant"],
                condition=Q(kind="preview", state="queued"),
                name="collection_one_queued_preview",
            ),
            # One scheduled run per slot of a tenant's schedule, across every cluster. A run
            # refused (another live run was active), failed or abandoned (its process died;
            # the run resuming it counts while it lives) leaves the slot free, so the next
            # sweep tries it again, as the daily run always did.
            models.UniqueConstraint(
                fields=["tenant", "slot_at"],
                condition=Q(trigger="schedule", slot_at__isnull=False)
                & ~Q(state__in=("refused", "failed", "abandoned")),
                name="collection_one_run_per_slot",
            ),
        ]
        # A tenant's latest runs: the admin's list, "already ran today" and /metrics.
        indexes = [
            models.Index(fields=["tenant", "-started_at", "-id"], name="collection_run_latest"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} run #{self.pk} ({self.as_of})"


class Decision(models.TextChoices):
    COLLECT = "collect", "Collect"
    SKIP = "skip", "Skip"


class SkipReason(models.TextChoices):
    NO_CUSTOMER_LINK = "no_customer_link", "No customer link"
    LINK_NOT_CONFIRMED = "link_not_confirmed", "Customer match not confirmed"
    COLLECTION_STOPPED = "collection_stopped", "Collection stopped for this customer"
    ACCOUNT_BLOCKED = "account_blocked", "Exact account blocked or deleted"
    NO_MANDATE = "no_mandate", "No mandate"
    MANDATE_PENDING = "mandate_pending", "Mandate pending customer approval"
    MANDATE_CANCELLED = "mandate_cancelled", "Mandate cancelled, failed or expired"
    CURRENCY_NOT_COLLECTABLE = "currency_not_collectable", "Currency not collectable"
    NOT_DUE = "not_due", "Not due within the lead window"
    BELOW_MINIMUM = "below_minimum", "Below the minimum amount"
    ALREADY_IN_FLIGHT = "already_in_flight", "Already in flight"
    RETRY_NOT_DUE = "retry_not_due", "Retry scheduled later"
    NEEDS_ATTENTION = "needs_attention", "An earlier attempt needs attention"
    HANDLED_BY_PERSON = "handled_by_person", "Cancelled or resolved by a person"
    CREDITED = "credited", "Credited (credit notes cover it)"
    DISPUTED = "disputed", "Disputed"
    OVER_SCHEME_MAXIMUM = "over_scheme_maximum", "Over the scheme maximum"
    RUN_LIMIT = "run_limit", "Over the maximum payments per run"
    CHANGED_SINCE_PREVIEW = "changed_since_preview", "Changed since the preview"
    NOT_IN_PREVIEW = "not_in_preview", "Not in the approved preview"
    # A GoCardless subscription or instalment schedule of this customer will pay it.
    PLAN_COLLECTS = "plan_collects", "Collected by a GoCardless subscription or instalment plan"
    # The customer was e-mailed a payment link for it (the mandate is gone or retries ran out).
    PAY_LINK_SENT = "pay_link_sent", "A payment link was sent to the customer"


class CollectionItem(models.Model):
    run = models.ForeignKey(CollectionRun, on_delete=models.CASCADE, related_name="items")
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    receivable_exact_id = models.UUIDField()
    invoice_number = models.BigIntegerField(null=True, blank=True)
    account_exact_id = models.UUIDField(null=True, blank=True)
    account_label = models.CharField(max_length=300, blank=True)
    due_date = models.DateField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    outstanding = models.DecimalField(max_digits=14, decimal_places=2)
    amount = models.DecimalField(
        max_digits=14, decimal_places=2, help_text="What would be / was collected."
    )
    charge_date = models.DateField(null=True, blank=True)
    mandate_gocardless_id = models.CharField(max_length=40, blank=True)
    scheme = models.CharField(max_length=30, blank=True)
    parts = models.PositiveSmallIntegerField(default=1, help_text="Instalments (1: one payment).")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    reason = models.CharField(max_length=30, choices=SkipReason.choices, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["run", "decision", "due_date", "invoice_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "receivable_exact_id"], name="collection_item_once_per_run"
            ),
        ]

    def __str__(self) -> str:
        said = self.get_decision_display()
        if self.reason:
            said += f" ({self.get_reason_display().lower()})"
        return f"Invoice {self.invoice_number}: {said}"


class AttemptState(models.TextChoices):
    PENDING = "pending", "Pending (written, not yet confirmed by GoCardless)"
    SUBMITTED = "submitted", "Submitted (payment created)"
    CONFIRMED = "confirmed", "Confirmed (money collected)"
    PAID_OUT = "paid_out", "Paid out"
    RETRY_SCHEDULED = "retry_scheduled", "Failed; retry scheduled"
    RETRIED = "retried", "Failed; retried by a later attempt"
    NEEDS_ATTENTION = "needs_attention", "Needs attention"
    CANCELLED = "cancelled", "Cancelled"
    SUPERSEDED = "superseded", "Superseded (invoice changed or closed in Exact)"
    RESOLVED = "resolved", "Resolved by a person"
    # The failure rules e-mailed the customer a payment link (pay_links.py).
    PAY_LINK_SENT = "pay_link_sent", "Failed; payment link sent to the customer"
    PAID_BY_LINK = "paid_by_link", "Paid through the payment link"


# States in which the receivable must not get a new attempt from a run.
BLOCKING_STATES = (
    AttemptState.PENDING,
    AttemptState.SUBMITTED,
    AttemptState.CONFIRMED,
    AttemptState.PAID_OUT,
    AttemptState.RETRY_SCHEDULED,
    AttemptState.NEEDS_ATTENTION,
    AttemptState.CANCELLED,
    AttemptState.RESOLVED,
    AttemptState.PAY_LINK_SENT,
    AttemptState.PAID_BY_LINK,
)
# States in which money is (possibly) on its way at GoCardless.
IN_FLIGHT_STATES = (AttemptState.PENDING, AttemptState.SUBMITTED)


class CollectionAttempt(models.Model):
    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="collection_attempts"
    )
    run = models.ForeignKey(
        CollectionRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="attempts"
    )
    receivable_exact_id = models.UUIDField(db_index=True)
    invoice_number = models.BigIntegerField(null=True, blank=True, db_index=True)
    account_exact_id = models.UUIDField(null=True, blank=True)
    account_label = models.CharField(max_length=300, blank=True)
    attempt_number = models.PositiveSmallIntegerField()
    part = models.PositiveSmallIntegerField(default=0, help_text="Instalment (0: whole amount).")
    parts = models.PositiveSmallIntegerField(default=1)
    # Help texts are shown as HTML by the admin: no angle brackets in them.
    key = models.CharField(
        max_length=100,
        help_text="Receivable guid / attempt number, then .part for an instalment "
        "(e.g. 3f2a…/2, or 3f2a…/1.2 for part 2 of attempt 1).",
    )
    idempotency_key = models.CharField(max_length=120, unique=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    charge_date = models.DateField(null=True, blank=True)
    mandate_gocardless_id = models.CharField(max_length=40)
    payment_gocardless_id = models.CharField(max_length=40, blank=True, db_index=True)
    payment_status = models.CharField(max_length=40, blank=True)
    state = models.CharField(
        max_length=20, choices=AttemptState.choices, default=AttemptState.PENDING, db_index=True
    )
    next_retry_on = models.DateField(null=True, blank=True)
    failure_cause = models.CharField(max_length=100, blank=True)
    failure_description = models.TextField(blank=True)
    flag = models.CharField(max_length=300, blank=True, help_text="Why a person should look.")
    # The failure rule that decided what happened after the payment failed, in words.
    decided_by = models.CharField(max_length=300, blank=True)
    send_count = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    resolution = models.TextField(blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="collection_attempt_key"),
        ]
        indexes = [
            models.Index(fields=["tenant", "state"], name="collection_attempt_state"),
            # The attempts list's default order, for everyone and per company: without them
            # every page sorted the whole table (docs/admin-performance.md).
            models.Index(fields=["-created_at", "-id"], name="coll_attempt_latest"),
            models.Index(
                fields=["tenant", "-created_at", "-id"], name="coll_attempt_tenant_latest"
            ),
        ]

    def __str__(self) -> str:
        return f"Invoice {self.invoice_number} attempt {self.key.split('/', 1)[-1]}"

    @property
    def payment_metadata(self) -> dict[str, str]:
        """The three metadata keys every payment we create carries (docs/collections.md)."""
        return {
            "mlc_attempt": self.key,
            "exact_invoice": "" if self.invoice_number is None else str(self.invoice_number),
            "exact_account": "" if self.account_exact_id is None else str(self.account_exact_id),
        }


# --- failures handled by cause, and the pay-by-link fallback (docs/failures.md) ------------


class FailureAction(models.TextChoices):
    RETRY = "retry", "Collect again after some days"
    SUCCESS_PLUS = "success_plus", "Let GoCardless Success+ retry"
    NO_RETRY = "no_retry", "Do not retry (needs attention)"


class FailureRule(models.Model):
    """A tenant's own answer to one GoCardless failure cause; a cause without a row follows
    the defaults in ``failure_rules.DEFAULT_RULES`` (docs/failures.md)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    cause = models.CharField(
        max_length=100,
        help_text="The failure cause GoCardless gives (details.cause of the payment's event).",
    )
    action = models.CharField(max_length=20, choices=FailureAction.choices)
    retry_after_days = models.PositiveSmallIntegerField(
        default=5, help_text="Days between a failure and the next collection (Collect again)."
    )
    retry_times = models.PositiveSmallIntegerField(
        default=1, help_text="How many times the invoice is collected again (Collect again)."
    )
    pay_link = models.BooleanField(
        default=False,
        verbose_name="E-mail a payment link",
        help_text="When the retries are used up or the mandate is gone, e-mail the customer a "
        "link to pay the invoice by bank (only while payment links are switched on).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant", "cause"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "cause"], name="collection_failure_rule"),
        ]

    def __str__(self) -> str:
        cause = {
            "charged_back": "Charged back by the customer's bank",
            "unknown": "Any cause not listed here",
            **FAILURE_CAUSE_WORDS,
        }.get(self.cause, self.cause)
        return f"{cause}: {self.get_action_display().lower()}"


class FailureSettings(models.Model):
    """Per-tenant switch for payment links (off until the company turns it on: a new kind of
    e-mail to its customers), and how long a link stays open."""

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="collection_failure_settings"
    )
    pay_links_enabled = models.BooleanField(
        default=False,
        verbose_name="Send payment links",
        help_text="E-mail customers a link to pay by bank when the failure rules say so.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "failure settings"
        verbose_name_plural = "failure settings"

    def __str__(self) -> str:
        return f"Failure settings of {self.tenant}"


class PayLinkState(models.TextChoices):
    CREATING = "creating", "Being created"
    SENT = "sent", "Sent to the customer"
    PAID = "paid", "Paid"
    EXPIRED = "expired", "Expired unpaid"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Not sent (GoCardless or the e-mail refused)"
    PAYMENT_FAILED = "payment_failed", "Paid, but the payment failed"


# A link in these states keeps collection runs away from its invoice (pay_link_rules.py).
OPEN_PAY_LINK_STATES = (PayLinkState.CREATING, PayLinkState.SENT, PayLinkState.PAID)


class PayLink(models.Model):
    """A GoCardless billing request for a one-off payment of a failed attempt's invoice, its
    hosted page and the e-mail to the customer. Written (with its idempotency keys) before
    any call, so a crash and a rerun reuse the same keys."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    attempt = models.ForeignKey(
        CollectionAttempt, on_delete=models.PROTECT, related_name="pay_links"
    )
    receivable_exact_id = models.UUIDField(db_index=True)
    invoice_number = models.BigIntegerField(null=True, blank=True)
    account_exact_id = models.UUIDField(null=True, blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    # What the payment's metadata carries as mlc_attempt: the next attempt number of the
    # invoice, so bookings book the receipt like any other (rules.payment_owner).
    key = models.CharField(max_length=100)
    idempotency_key = models.CharField(max_length=120, unique=True)
    email = models.CharField(max_length=254, blank=True)
    rule = models.CharField(max_length=300, blank=True, help_text="The rule that sent it.")
    state = models.CharField(
        max_length=20, choices=PayLinkState.choices, default=PayLinkState.CREATING
    )
    billing_request_gocardless_id = models.CharField(max_length=40, blank=True, db_index=True)
    flow_gocardless_id = models.CharField(max_length=40, blank=True)
    authorisation_url = models.URLField(max_length=1000, blank=True)
    instant = models.BooleanField(
        default=False, help_text="Instant bank payment (else a mandate and a payment)."
    )
    expires_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    payment_gocardless_id = models.CharField(max_length=40, blank=True, db_index=True)
    payment_status = models.CharField(max_length=40, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "payment link"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="collection_pay_link_key"),
            # One open link per invoice: a second failure never e-mails the customer twice.
            models.UniqueConstraint(
                fields=["tenant", "receivable_exact_id"],
                condition=Q(state__in=("creating", "sent", "paid")),
                name="collection_one_open_pay_link",
            ),
        ]

    def __str__(self) -> str:
        return f"Payment link for invoice {self.invoice_number}"

    @property
    def payment_metadata(self) -> dict[str, str]:
        """The three keys every payment of ours carries (bookings' ``payment_owner``)."""
        return {
            "mlc_attempt": self.key,
            "exact_invoice": "" if self.invoice_number is None else str(self.invoice_number),
            "exact_account": "" if self.account_exact_id is None else str(self.account_exact_id),
        }
