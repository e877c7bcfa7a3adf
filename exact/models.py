"""Exact Online: grants (an Exact user's token chain), connections (a company's division),
the shared API budget, mirrors, sync runs and the webhook log."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from core.fields import EncryptedSecretField
from exact.errors import ExactHostNotAllowed


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


def custom_base_url_allowed() -> bool:
    """Region "custom" (any base URL: the local simulators) only where the installation allows
    it: ``EXACT_ALLOW_CUSTOM_BASE_URL``, by default on exactly when DEBUG is (system check
    mlc.E011 refuses it with DEBUG off). Read at every use, so a row saved while it was allowed
    sends nothing once it is not."""
    allowed = getattr(settings, "EXACT_ALLOW_CUSTOM_BASE_URL", None)
    return bool(settings.DEBUG if allowed is None else allowed)


def region_base_url(*, region: str, custom_base_url: str) -> str:
    """Where Exact lives for ``region``: the region table, or the custom base URL when the
    installation allows custom hosts. This decides where tokens and the app's client secret
    are sent, so a custom host that is not allowed (any more) raises instead of answering."""
    if region != Region.CUSTOM:
        return REGION_HOSTS[region]
    if not custom_base_url_allowed():
        raise ExactHostNotAllowed(
            "This Exact Online connection uses a custom base URL, which this installation does "
            "not allow (EXACT_ALLOW_CUSTOM_BASE_URL). Choose the company's Exact region and "
            "connect again."
        )
    return (custom_base_url or "").rstrip("/")


def custom_base_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a custom base URL (None: it can)."""
    parts = urlsplit(url or "")
    if not parts.scheme or not parts.netloc:
        return "Region 'custom' needs a base URL."
    if parts.scheme != "https" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return "Use https (plain http only for a local simulator)."
    return None


class ConnectionStatus(models.TextChoices):
    DISCONNECTED = "disconnected", "Disconnected"
    CONNECTED = "connected", "Connected"
    NEEDS_REAUTH = "needs_reauth", "Needs re-authorisation"


class GrantStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    BROKEN = "broken", "Broken: needs a new consent"


class ExactGrant(models.Model):
    """One refresh-token chain at Exact: per (app, Exact host, Exact user).

    Exact keeps one chain per user and app: when the same user consents again (for another
    company, or a reconnect) the older chain is obsolete as soon as the new one is used
    (API-NOTES addendum 2026-12). So the chain is stored once, here, and every connection of
    that user uses it and refreshes it under this row's lock (exact/tokens.py). Not
    tenant-owned: an accountant's grant serves several companies, and no company admin sees
    or edits it (no admin screen; the connection page shows its health).
    """

    client_id = models.CharField(max_length=200)
    region = models.CharField(max_length=10, choices=Region.choices, default=Region.NL)
    custom_base_url = models.URLField(blank=True)
    # current/Me UserID of the consenting user; blank for chains migrated from the time each
    # connection held its own tokens (one grant per connection until it is reconnected).
    exact_user_id = models.CharField(max_length=64, blank=True)
    exact_user_name = models.CharField(max_length=200, blank=True)

    access_token = EncryptedSecretField()
    refresh_token = EncryptedSecretField()
    token_issued_at = models.DateTimeField(null=True, blank=True)
    access_expires_at = models.DateTimeField(null=True, blank=True)
    last_refresh_at = models.DateTimeField(null=True, blank=True)

    status = models.CharField(
        max_length=10, choices=GrantStatus.choices, default=GrantStatus.ACTIVE
    )
    status_reason = models.TextField(blank=True)
    # The divisions of the latest consent ([{"code", "name"}]): what may be attached to a
    # company without asking the user again.
    consented_divisions = models.JSONField(default=list, blank=True)
    consented_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Exact Online grant"
        constraints = [
            models.UniqueConstraint(
                fields=["client_id", "region", "custom_base_url", "exact_user_id"],
                condition=~models.Q(exact_user_id=""),
                name="exact_grant_one_per_user",
            ),
        ]

    def __str__(self) -> str:
        who = self.exact_user_name or self.exact_user_id or f"grant {self.pk}"
        return f"Exact Online consent of {who}"

    @property
    def base_url(self) -> str:
        return region_base_url(region=self.region, custom_base_url=self.custom_base_url)

    @property
    def division_codes(self) -> set[int]:
        return {int(d["code"]) for d in self.consented_divisions or [] if "code" in d}


# The tokens used to live on the connection. Reading them through it still works (templates,
# alerts, older callers); assigning them to a *new* connection gives it a grant of its own
# when it is saved (tests/factories.py and bench/_support.py build connections that way).
# Product code works on the grant (exact/grants.py, exact/tokens.py).
LEGACY_TOKEN_FIELDS = (
    "access_token",
    "refresh_token",
    "token_issued_at",
    "access_expires_at",
    "last_refresh_at",
)


def _legacy_token_property(name: str) -> property:
    def read(self):
        pending = self.__dict__.get("_pending_grant_fields")
        if pending is not None and name in pending:
            return pending[name]
        grant = self.grant if self.grant_id else None
        return getattr(grant, name) if grant is not None else None

    def write(self, value):
        if self.grant_id:
            raise AttributeError(
                f"ExactConnection.{name} belongs to its ExactGrant now: change the grant"
            )
        self.__dict__.setdefault("_pending_grant_fields", {})[name] = value

    return property(read, write, doc=f"The grant's {name} (read-only on a saved connection).")


class ExactConnection(models.Model):
    """One company's use of Exact Online: the region, the division it chose, and the grant
    (an Exact user's token chain) it calls Exact with.

    The division is stored, never re-read from current/Me: Exact's CurrentDivision follows
    whatever administration the user last opened in the web UI. A division (per region)
    belongs to one company at most.
    """

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="exact_connection"
    )
    region = models.CharField(max_length=10, choices=Region.choices, default=Region.NL)
    custom_base_url = models.URLField(
        blank=True,
        help_text="Only for region 'custom' (the local simulators), where the installation "
        "allows it; superusers only.",
    )
    division = models.PositiveIntegerField(null=True, blank=True)
    division_name = models.CharField(max_length=200, blank=True)
    grant = models.ForeignKey(
        ExactGrant,
        on_delete=models.PROTECT,  # released by exact/grants.py once no connection uses it
        null=True,
        blank=True,
        related_name="connections",
        editable=False,
    )

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
    # sha256 of the nonce of the one consent URL an operator may hand out (exact/oauth.py);
    # cleared when that URL is used, replaced when another one is made.
    operator_consent_nonce = models.CharField(max_length=64, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    access_token = _legacy_token_property("access_token")
    refresh_token = _legacy_token_property("refresh_token")
    token_issued_at = _legacy_token_property("token_issued_at")
    access_expires_at = _legacy_token_property("access_expires_at")
    last_refresh_at = _legacy_token_property("last_refresh_at")

    class Meta:
        verbose_name = "Exact Online connection"
        constraints = [
            # One company per division: two companies on one administration would collect
            # and book the same invoices twice. A disconnected connection holds nothing.
            models.UniqueConstraint(
                fields=["region", "division"],
                condition=models.Q(division__isnull=False)
                & ~models.Q(status=ConnectionStatus.DISCONNECTED),
                name="exact_one_tenant_per_division",
                violation_error_message=(
                    "This Exact division is already connected to another company."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"Exact Online for {self.tenant}"

    def save(self, *args, **kwargs):
        pending = self.__dict__.pop("_pending_grant_fields", None)
        if pending and not self.grant_id and any(pending.values()):
            self.grant = ExactGrant.objects.create(
                client_id=settings.EXACT_CLIENT_ID,
                region=self.region,
                custom_base_url=self.custom_base_url,
                **pending,
            )
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if self.region == Region.CUSTOM:
            if not custom_base_url_allowed():
                raise ValidationError(
                    {"region": "Region 'custom' is not available on this installation."}
                )
            problem = custom_base_url_problem(self.custom_base_url)
            if problem:
                raise ValidationError({"custom_base_url": problem})

    @property
    def base_url(self) -> str:
        """Where a consent for this connection starts (its region; ExactHostNotAllowed for a
        custom host the installation does not allow)."""
        return region_base_url(region=self.region, custom_base_url=self.custom_base_url)

    @property
    def api_base_url(self) -> str:
        """Where calls with the grant's tokens go: the host that issued them."""
        return self.grant.base_url if self.grant_id else self.base_url

    @property
    def is_usable(self) -> bool:
        """Connected, with a division, and not paused by an exhausted daily API budget."""
        from django.utils import timezone

        if self.status != ConnectionStatus.CONNECTED or not self.division:
            return False
        return self.paused_until is None or self.paused_until <= timezone.now()


class ExactRateBudget(models.Model):
    """Exact's API budget per (app, host, division), as last reported by its X-RateLimit-*
    headers.

    One row per budget, shared by every process: the client reserves a call under a row lock
    before sending it, so web, workers and webhooks together stay inside 60/min (see
    exact/ratelimit.py). Not tenant-owned: the budget belongs to the app and the division.
    The host is part of the key so that only answers of the Exact host that holds the
    division count for it (a custom host's headers could otherwise pause another company).
    """

    client_id = models.CharField(max_length=200)
    host = models.CharField(max_length=200, default="")
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
            models.UniqueConstraint(
                fields=["client_id", "host", "division"], name="exact_budget_host_uniq"
            ),
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
    """Every POST to /webhooks/exact/<tenant uuid>/ and /webhooks/exact/, valid or not (the
    inbound log). A valid (signed) delivery keeps its body; anything else keeps metadata only:
    size, sha256 and at most the first 4 KiB (exact/webhooks.py), so junk cannot fill the
    database. Pruned after EXACT_DELIVERY_RETENTION_DAYS."""

    tenant = models.ForeignKey(
        "tenants.Tenant",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="exact_webhook_deliveries",
    )
    received_at = models.DateTimeField(db_index=True)
    body = models.BinaryField()
    # The body as received: its length, sha256, and whether ``body`` holds only its start.
    size = models.PositiveIntegerField(default=0)
    body_sha256 = models.CharField(max_length=64, blank=True)
    body_truncated = models.BooleanField(default=False)
    # core.http.client_address(): the sender as our outermost proxy saw it.
    source_address = models.CharField(max_length=64, blank=True)
    # What this row costs in storage (body kept, headers, error); summed for the hourly cap.
    stored_bytes = models.PositiveIntegerField(default=0)
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
        indexes = [
            models.Index(fields=["tenant", "received_at"], name="exact_delivery_tenant_time"),
        ]

    def __str__(self) -> str:
        what = f"{self.topic} {self.action} {self.key}".strip() or "delivery"
        return f"{what} ({self.response_status})"
