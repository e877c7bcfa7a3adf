"""Exact Online: the tenant's connection (tokens, division, ledger configuration)."""

from django.db import models

from core.fields import EncryptedSecretField


class Region(models.TextChoices):
    NL = "nl", "Netherlands"
    BE = "be", "Belgium"
    UK = "uk", "United Kingdom"
    DE = "de", "Germany"
    FR = "fr", "France"
    ES = "es", "Spain"
    US = "us", "United States"
    CUSTOM = "custom", "Custom base URL"


REGION_HOSTS = {
    Region.NL: "https://start.exactonline.nl",
    Region.BE: "https://start.exactonline.be",
    Region.UK: "https://start.exactonline.co.uk",
    Region.DE: "https://start.exactonline.de",
    Region.FR: "https://start.exactonline.fr",
    Region.ES: "https://start.exactonline.es",
    Region.US: "https://start.exactonline.com",
}


class ConnectionStatus(models.TextChoices):
    DISCONNECTED = "disconnected", "Disconnected"
    CONNECTED = "connected", "Connected"
    NEEDS_REAUTH = "needs_reauth", "Needs re-authorisation"


class ExactConnection(models.Model):
    """One Exact Online consent for one tenant, bound to the division the user chose.

    The division is stored, never re-read from current/Me: Exact's CurrentDivision follows
    whatever administration the user last opened in the web UI.
    """

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="exact_connection"
    )
    region = models.CharField(max_length=10, choices=Region.choices, default=Region.NL)
    custom_base_url = models.URLField(
        blank=True, help_text="Only for region 'custom' (e.g. the local simulator)."
    )
    division = models.PositiveIntegerField(null=True, blank=True)
    division_name = models.CharField(max_length=200, blank=True)

    access_token = EncryptedSecretField()
    refresh_token = EncryptedSecretField()
    token_issued_at = models.DateTimeField(null=True, blank=True)
    access_expires_at = models.DateTimeField(null=True, blank=True)
    last_refresh_at = models.DateTimeField(null=True, blank=True)

    status = models.CharField(
        max_length=20, choices=ConnectionStatus.choices, default=ConnectionStatus.DISCONNECTED
    )
    status_reason = models.TextField(blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)

    # The ledger configuration for bookings is reconciliation.bookings.BookingSettings.
    webhook_subscription_ids = models.JSONField(default=list, blank=True)
    # Set when Exact's daily API budget for the division is spent: jobs wait until then.
    paused_until = models.DateTimeField(null=True, blank=True)
    # When the sync sweep last queued this tenant's sync (exact/schedules.py): a sync still
    # waiting in the queue is not queued again, and two sweeps cannot both queue it.
    sync_queued_at = models.DateTimeField(null=True, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Exact Online connection"

    def __str__(self) -> str:
        return f"Exact Online for {self.tenant}"

    def clean(self) -> None:
        from urllib.parse import urlsplit

        from django.core.exceptions import ValidationError

        if self.region == Region.CUSTOM:
            parts = urlsplit(self.custom_base_url or "")
            if not parts.scheme or not parts.netloc:
                raise ValidationError({"custom_base_url": "Region 'custom' needs a base URL."})
            if parts.scheme != "https" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
                raise ValidationError(
                    {"custom_base_url": "Use https (plain http only for a local simulator)."}
                )

    @property
    def base_url(self) -> str:
        if self.region == Region.CUSTOM:
            return self.custom_base_url.rstrip("/")
        return REGION_HOSTS[self.region]

    @property
    def is_usable(self) -> bool:
        """Connected, with a division, and not paused by an exhausted daily API budget."""
        from django.utils import timezone

        if self.status != ConnectionStatus.CONNECTED or not self.division:
            return False
        return self.paused_until is None or self.paused_until <= timezone.now()


class ExactRateBudget(models.Model):
    """Exact's API budget per (app, division), as last reported by its X-RateLimit-* headers.

    One row per budget, shared by every process: the client reserves a call under a row lock
    before sending it, so web, workers and webhooks together stay inside 60/min (see
    exact/ratelimit.py). Not tenant-owned: the budget belongs to the app and the division.
    """

    client_id = models.CharField(max_length=200)
    division = models.PositiveIntegerField()
    minutely_limit = models.PositiveIntegerField(null=True, blank=True)
    minutely_remaining = models.IntegerField(null=True, blank=True)
    minutely_reset_at = models.DateTimeField(null=True, blank=True)
    daily_limit = models.PositiveIntegerField(null=True, blank=True)
    daily_remaining = models.IntegerField(null=True, blank=True)
    daily_reset_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client_id", "division"], name="exact_budget_uniq"),
        ]

    def __str__(self) -> str:
        return f"Exact budget {self.division}"


class SyncEntity(models.TextChoices):
    ACCOUNTS = "accounts", "Accounts"
    RECEIVABLES = "receivables", "Receivables"
    DELETED = "deleted", "Deletions"


class ExactSyncCursor(models.Model):
    """The highest Exact ``Timestamp`` (rowversion) seen per entity, for incremental sync."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    division = models.PositiveIntegerField()
    entity = models.CharField(max_length=20, choices=SyncEntity.choices)
    timestamp = models.BigIntegerField(default=0)
    full_sync_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "division", "entity"], name="exact_cursor_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.entity} @ {self.timestamp}"


class ExactAccount(models.Model):
    """Mirror of an Exact ``crm/Accounts`` row (the columns we filter on, plus raw JSON)."""

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="exact_accounts"
    )
    exact_id = models.UUIDField()
    code = models.CharField(max_length=32, blank=True, db_index=True)
    name = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=255, blank=True)
    address_line1 = models.CharField(max_length=255, blank=True)
    postcode = models.CharField(max_length=32, blank=True)
    city = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=8, blank=True)
    language = models.CharField(max_length=16, blank=True)
    status = models.CharField(max_length=4, blank=True)
    blocked = models.BooleanField(default=False)
    payment_condition = models.CharField(max_length=20, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    modified = models.DateTimeField(null=True, blank=True)
    timestamp = models.BigIntegerField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    synced_at = models.DateTimeField()

    class Meta:
        verbose_name = "Exact account"
        ordering = ["tenant", "code"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "exact_id"], name="exact_account_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}".strip()


class ReceivableKind(models.TextChoices):
    INVOICE = "invoice", "Invoice"
    CREDIT_NOTE = "credit_note", "Credit note"


class ExactReceivable(models.Model):
    """One open item (payment term) of a sales invoice or credit note in Exact."""

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="exact_receivables"
    )
    exact_id = models.UUIDField()
    account = models.ForeignKey(
        ExactAccount,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="receivables",
        db_constraint=False,  # rows arrive in any order; the guid below is authoritative
    )
    account_exact_id = models.UUIDField(null=True, blank=True)
    invoice_number = models.BigIntegerField(null=True, blank=True, db_index=True)
    invoice_date = models.DateField(null=True, blank=True)
    due_date = models.DateField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    outstanding = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    is_fully_paid = models.BooleanField(default=False)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    kind = models.CharField(
        max_length=12, choices=ReceivableKind.choices, default=ReceivableKind.INVOICE
    )
    timestamp = models.BigIntegerField(null=True, blank=True)
    raw = models.JSONField(default=dict, blank=True)
    synced_at = models.DateTimeField()

    class Meta:
        verbose_name = "Exact receivable"
        ordering = ["tenant", "due_date", "invoice_number"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "exact_id"], name="exact_receivable_uniq"),
        ]
        indexes = [
            models.Index(fields=["tenant", "is_fully_paid", "due_date"], name="exact_recv_open"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.invoice_number}"


class SyncMode(models.TextChoices):
    FULL = "full", "Full (bulk)"
    INCREMENTAL = "incremental", "Incremental (sync)"
    TARGETED = "targeted", "Targeted (one key)"


class SyncRun(models.Model):
    """What one sync run did: for the admin, for support, and for the benchmark."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    entity = models.CharField(max_length=20, choices=SyncEntity.choices)
    mode = models.CharField(max_length=12, choices=SyncMode.choices)
    trigger = models.CharField(max_length=100, blank=True)
    pages = models.PositiveIntegerField(default=0)
    calls = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-started_at"], name="exact_syncrun_time")]

    def __str__(self) -> str:
        return f"{self.entity} {self.mode} {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def ok(self) -> bool:
        return self.finished_at is not None and not self.error


class ExactWebhookDelivery(models.Model):
    """Every POST to /webhooks/exact/<tenant uuid>/, valid or not (the inbound log)."""

    tenant = models.ForeignKey(
        "tenants.Tenant",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="exact_webhook_deliveries",
    )
    received_at = models.DateTimeField(db_index=True)
    body = models.BinaryField()
    headers = models.JSONField(default=dict, blank=True)
    valid = models.BooleanField(default=False)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    topic = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=32, blank=True)
    key = models.CharField(max_length=64, blank=True)
    division = models.PositiveIntegerField(null=True, blank=True)
    event_created_on = models.CharField(max_length=40, blank=True)
    # Set on the first valid delivery of an event; NULL on duplicates and invalid ones, so
    # the unique constraint catches a redelivery even when two arrive at the same moment.
    event_key = models.CharField(max_length=200, null=True, blank=True)
    duplicate = models.BooleanField(default=False)
    queued_task = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name = "Exact webhook delivery"
        verbose_name_plural = "Exact webhook deliveries"
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "event_key"], name="exact_webhook_dedup"),
        ]

    def __str__(self) -> str:
        what = f"{self.topic} {self.action} {self.key}".strip() or "delivery"
        return f"{what} ({self.response_status})"
