"""GoCardless: the tenant's connection (access token, organisation, webhook secret)."""

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from core.fields import EncryptedSecretField


class Environment(models.TextChoices):
    LIVE = "live", "Live"
    SANDBOX = "sandbox", "Sandbox"
    CUSTOM = "custom", "Custom base URL"


ENVIRONMENT_URLS = {
    Environment.LIVE: "https://api.gocardless.com",
    Environment.SANDBOX: "https://api-sandbox.gocardless.com",
}


class ConnectionStatus(models.TextChoices):
    DISCONNECTED = "disconnected", "Disconnected"
    CONNECTED = "connected", "Connected"
    NEEDS_REAUTH = "needs_reauth", "Needs re-authorisation"


class GoCardlessConnection(models.Model):
    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="gocardless_connection"
    )
    environment = models.CharField(
        max_length=10, choices=Environment.choices, default=Environment.SANDBOX
    )
    custom_base_url = models.URLField(
        blank=True,
        help_text="Only for environment 'custom' (the local simulator): superusers only, and "
        "only where GOCARDLESS_ALLOW_CUSTOM_BASE_URL allows it.",
    )
    access_token = EncryptedSecretField()
    webhook_secret = EncryptedSecretField()
    # Routing identifiers come from GoCardless, never from a form: the organisation from the
    # OAuth token answer, the creditor from GET /creditors with the token (connect.py).
    organisation_id = models.CharField(max_length=40, blank=True, db_index=True, editable=False)
    creditor_id = models.CharField(max_length=40, blank=True, editable=False)
    status = models.CharField(
        max_length=20, choices=ConnectionStatus.choices, default=ConnectionStatus.DISCONNECTED
    )
    status_reason = models.TextField(blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # --- polling cursor (newest event seen by the catch-up job; lists are newest first) ----
    events_cursor_created_at = models.DateTimeField(null=True, blank=True, editable=False)
    events_cursor_id = models.CharField(max_length=40, blank=True, editable=False)
    last_polled_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        verbose_name = "GoCardless connection"
        constraints = [
            # One GoCardless organisation belongs to one tenant: the partner webhook routes
            # events by organisation, and bookings trust payment metadata (docs/decisions.md,
            # 2026-11-26). Empty means "not known" (a pasted token) and may repeat.
            models.UniqueConstraint(
                fields=["organisation_id"],
                condition=~Q(organisation_id=""),
                name="gocardless_one_tenant_per_organisation",
                violation_error_message=(
                    "This GoCardless organisation is already connected to another company."
                ),
            ),
            # A creditor belongs to exactly one organisation: the same for pasted tokens,
            # whose organisation GoCardless does not tell us (docs/decisions.md).
            models.UniqueConstraint(
                fields=["creditor_id"],
                condition=~Q(creditor_id=""),
                name="gocardless_one_tenant_per_creditor",
                violation_error_message=(
                    "This GoCardless account is already connected to another company."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"GoCardless for {self.tenant}"

    @property
    def base_url(self) -> str:
        if self.environment == Environment.CUSTOM:
            return self.custom_base_url.rstrip("/")
        return ENVIRONMENT_URLS[self.environment]


# --- inbound log ----------------------------------------------------------------------------


class WebhookEndpoint(models.TextChoices):
    TENANT = "tenant", "Per-tenant endpoint"
    PARTNER = "partner", "Partner app endpoint"


class WebhookDelivery(models.Model):
    """Every POST to a GoCardless webhook URL, valid or not (unless over its hourly budget).

    A delivery whose events were stored keeps its whole body; any other keeps metadata only
    (size, SHA-256, source address) and at most the first 4 KiB (webhooks.py). Deleted after
    GOCARDLESS_DELIVERY_RETENTION_DAYS (retention.py)."""

    tenant = models.ForeignKey(
        "tenants.Tenant",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="gocardless_deliveries",
        help_text="Empty for the partner endpoint (events are routed one by one).",
    )
    endpoint = models.CharField(
        max_length=10, choices=WebhookEndpoint.choices, default=WebhookEndpoint.TENANT
    )
    body = models.BinaryField(
        blank=True, default=b"", help_text="Whole for stored deliveries; else the first 4 KiB."
    )
    body_size = models.PositiveBigIntegerField(default=0, help_text="Bytes received (claimed, "
                                               "for a body refused before reading).")
    body_sha256 = models.CharField(max_length=64, blank=True)
    source_address = models.CharField(max_length=64, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    valid = models.BooleanField(default=False)
    response_status = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    event_count = models.PositiveIntegerField(default=0)
    unrouted_count = models.PositiveIntegerField(
        default=0, help_text="Partner endpoint: events for an organisation we do not know."
    )
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"delivery {self.pk} ({self.response_status})"


class EventSource(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    POLL = "poll", "Polling"


class EventOutcome(models.TextChoices):
    PENDING = "", "Pending"
    APPLIED = "applied", "Applied to the mirror"
    IGNORED = "ignored", "Ignored (type we do not mirror)"
    GONE = "gone", "Resource not found at GoCardless"
    CURRENT = "current", "Mirror already fetched after this event arrived"
    QUARANTINED = "quarantined", "Quarantined (unusable; never processed)"


class GoCardlessEvent(models.Model):
    """One GoCardless event, stored once per tenant however often it arrives.

    Few indexes on purpose: every webhook inserts rows here in the request path. The unique
    (tenant, event_id) also serves tenant lookups; low-cardinality columns (type, action) get
    none."""

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="gocardless_events",
        db_index=False,
    )
    delivery = models.ForeignKey(
        WebhookDelivery,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="events",
        db_index=False,
        help_text="The delivery that first brought it (empty when found by polling).",
    )
    event_id = models.CharField(max_length=40)
    resource_type = models.CharField(max_length=50)
    action = models.CharField(max_length=60)
    resource_id = models.CharField(max_length=40, blank=True, db_index=True)
    links = models.JSONField(default=dict, blank=True)
    details = models.JSONField(default=dict, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=10, choices=EventSource.choices)
    created_at = models.DateTimeField(null=True, blank=True, help_text="At GoCardless.")
    # The DATABASE clock (like Mirror.fetched_at), so "fetched after this event arrived" is
    # decided on one clock whatever node stored or processed it.
    received_at = models.DateTimeField(db_default=Now())
    processed_at = models.DateTimeField(null=True, blank=True)
    # A quarantined event has processed_at set (nothing picks it up) and its reason in error.
    outcome = models.CharField(max_length=20, choices=EventOutcome.choices, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "GoCardless event"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "event_id"], name="uniq_gc_event_per_tenant"),
        ]
        indexes = [
            models.Index(fields=["processed_at", "next_attempt_at"], name="gc_event_pending"),
            # The admin's list in its ordering, for all tenants and for one (admin-performance.md).
            models.Index(fields=["-created_at", "-id"], name="gc_event_latest"),
            models.Index(fields=["tenant", "-created_at", "-id"], name="gc_event_tenant_latest"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} {self.resource_type}.{self.action}"


class IntakeBudget(models.Model):
    """How much one intake key (e.g. the signed deliveries of one tenant) used in one clock
    hour, and how often it was refused for being over: the hourly caps of webhooks.py
    (intake_budget.py). Rows older than two days are pruned with the deliveries."""

    key = models.CharField(max_length=60)
    hour = models.BigIntegerField(help_text="Hours since 1970-01-01 UTC.")
    used = models.BigIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["key", "hour"], name="uniq_gc_intake_budget"),
        ]

    def __str__(self) -> str:
        return f"{self.key} @ {self.hour}: {self.used}"


# --- mirrors: GoCardless's current state, a few columns to filter on, the raw JSON ---------


class Mirror(models.Model):
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    gocardless_id = models.CharField(max_length=40)
    status = models.CharField(max_length=40, blank=True, db_index=True)
    metadata = models.JSONField(default=dict, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    gocardless_created_at = models.DateTimeField(null=True, blank=True)
    # Database time (transaction start) before the GET that produced ``raw``: any event
    # received earlier is already reflected in it.
    fetched_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["-gocardless_created_at", "-id"]

    def __str__(self) -> str:
        return self.gocardless_id


def _unique(name: str):
    return [models.UniqueConstraint(fields=["tenant", "gocardless_id"], name=f"uniq_gc_{name}")]


class Customer(Mirror):
    email = models.CharField(max_length=254, blank=True, db_index=True)
    name = models.CharField(max_length=300, blank=True)

    class Meta(Mirror.Meta):
        verbose_name = "GoCardless customer"
        constraints = _unique("customer")


class CustomerBankAccount(Mirror):
    customer_id = models.CharField(max_length=40, blank=True, db_index=True)
    currency = models.CharField(max_length=3, blank=True)
    account_holder_name = models.CharField(max_length=300, blank=True)
    enabled = models.BooleanField(default=True)

    class Meta(Mirror.Meta):
        constraints = _unique("customer_bank_account")


class Mandate(Mirror):
    scheme = models.CharField(max_length=30, blank=True, db_index=True)
    reference = models.CharField(max_length=140, blank=True)
    customer_id = models.CharField(max_length=40, blank=True, db_index=True)
    customer_bank_account_id = models.CharField(max_length=40, blank=True)
    next_possible_charge_date = models.DateField(null=True, blank=True)

    class Meta(Mirror.Meta):
        constraints = _unique("mandate")


class Payment(Mirror):
    amount = models.BigIntegerField(default=0, help_text="Minor units.")
    amount_refunded = models.BigIntegerField(default=0, help_text="Minor units.")
    currency = models.CharField(max_length=3, blank=True, db_index=True)
    charge_date = models.DateField(null=True, blank=True, db_index=True)
    reference = models.CharField(max_length=140, blank=True)
    mandate_id = models.CharField(max_length=40, blank=True, db_index=True)
    payout_id = models.CharField(max_length=40, blank=True, db_index=True)
    # Set for payments a GoCardless plan created (links.subscription /
    # links.instalment_schedule): they carry none of our metadata, and the plan, not the
    # collection engine, decides when they are taken (docs/gocardless.md, plans).
    subscription_id = models.CharField(max_length=40, blank=True, db_index=True)
    instalment_schedule_id = models.CharField(max_length=40, blank=True, db_index=True)

    class Meta(Mirror.Meta):
        constraints = _unique("payment")
        # The admin's list in its ordering, for all tenants and for one (admin-performance.md).
        indexes = [
            models.Index(fields=["-gocardless_created_at", "-id"], name="gc_payment_latest"),
            models.Index(
                fields=["tenant", "-gocardless_created_at", "-id"], name="gc_payment_tenant_latest"
            ),
        ]


class PayoutItemsState(models.TextChoices):
    NOT_FETCHED = "", "Not fetched yet"
    FETCHED = "fetched", "Fetched"
    # GET /payout_items answers 410 Gone for payouts created more than six months ago: the
    # lines are gone for good, only the payout's own amount and deducted fees remain.
    UNAVAILABLE = "unavailable", "No longer available at GoCardless (payout older than six months)"


class Payout(Mirror):
    amount = models.BigIntegerField(default=0, help_text="Minor units.")
    deducted_fees = models.BigIntegerField(default=0, help_text="Minor units; may be negative.")
    currency = models.CharField(max_length=3, blank=True, db_index=True)
    arrival_date = models.DateField(null=True, blank=True, db_index=True)
    reference = models.CharField(max_length=140, blank=True)
    items_state = models.CharField(
        max_length=20, choices=PayoutItemsState.choices, blank=True,
        default=PayoutItemsState.NOT_FETCHED,
    )
    items_checked_at = models.DateTimeField(
        null=True, blank=True, help_text="When its items were last fetched (or refused)."
    )

    class Meta(Mirror.Meta):
        constraints = _unique("payout")


class PayoutItem(models.Model):
    """One line of a payout (GET /payout_items?payout=…): the source for booking fees."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    payout = models.ForeignKey(Payout, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    item_type = models.CharField(max_length=40, db_index=True)
    # The API sends minor units as a string with one decimal place ("45.0"); kept exact.
    amount = models.DecimalField(max_digits=16, decimal_places=1)
    payment_id = models.CharField(max_length=40, blank=True, db_index=True)
    mandate_id = models.CharField(max_length=40, blank=True)
    refund_id = models.CharField(max_length=40, blank=True)
    taxes = models.JSONField(default=list, blank=True)
    raw = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["payout", "position"]
        constraints = [
            models.UniqueConstraint(fields=["payout", "position"], name="uniq_gc_payout_item"),
        ]

    def __str__(self) -> str:
        return f"{self.item_type} {self.amount}"


class Refund(Mirror):
    amount = models.BigIntegerField(default=0, help_text="Minor units.")
    currency = models.CharField(max_length=3, blank=True)
    reference = models.CharField(max_length=140, blank=True)
    payment_id = models.CharField(max_length=40, blank=True, db_index=True)
    mandate_id = models.CharField(max_length=40, blank=True)

    class Meta(Mirror.Meta):
        constraints = _unique("refund")


class Subscription(Mirror):
    """A GoCardless subscription: GoCardless itself creates a payment each interval."""

    mandate_id = models.CharField(max_length=40, blank=True, db_index=True)
    amount = models.BigIntegerField(default=0, help_text="Minor units, per payment.")
    currency = models.CharField(max_length=3, blank=True)
    name = models.CharField(max_length=300, blank=True)
    interval_unit = models.CharField(max_length=20, blank=True,
                                     help_text="weekly, monthly or yearly.")
    interval = models.PositiveSmallIntegerField(default=1)
    day_of_month = models.SmallIntegerField(null=True, blank=True, help_text="-1: last day.")
    start_date = models.DateField(null=True, blank=True)
    end_date = models.DateField(null=True, blank=True)
    upcoming_payments = models.JSONField(
        default=list, blank=True,
        help_text='[{"charge_date": "YYYY-MM-DD", "amount": minor units}], as GoCardless '
        "forecasts them.",
    )

    class Meta(Mirror.Meta):
        verbose_name = "GoCardless subscription"
        constraints = _unique("subscription")


class InstalmentSchedule(Mirror):
    """A GoCardless instalment schedule: a fixed set of payments GoCardless creates at once."""

    mandate_id = models.CharField(max_length=40, blank=True, db_index=True)
    currency = models.CharField(max_length=3, blank=True)
    total_amount = models.BigIntegerField(default=0, help_text="Minor units.")
    name = models.CharField(max_length=300, blank=True)
    payment_ids = models.JSONField(default=list, blank=True)
    upcoming_payments = models.JSONField(
        default=list, blank=True,
        help_text='[{"charge_date": "YYYY-MM-DD", "amount": minor units}]: its payments not '
        "yet collected.",
    )

    class Meta(Mirror.Meta):
        verbose_name = "GoCardless instalment plan"
        constraints = _unique("instalment_schedule")


class BillingRequest(Mirror):
    customer_id = models.CharField(max_length=40, blank=True, db_index=True)
    mandate_id = models.CharField(
        max_length=40, blank=True, help_text="links.mandate_request_mandate once fulfilled."
    )
    authorisation_url = models.URLField(max_length=1000, blank=True)

    class Meta(Mirror.Meta):
        constraints = _unique("billing_request")
