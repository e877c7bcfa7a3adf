"""Tenants (connected companies) and who may work on them."""

import uuid
import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known IANA time zone.")


def validate_currency_list(value) -> None:
    if not isinstance(value, list) or not all(
        isinstance(c, str) and len(c) == 3 and c.isalpha() and c.isupper() for c in value
    ):
        raise ValidationError("Currencies must be a list of ISO 4217 codes such as ['EUR'].")


class CollectionMode(models.TextChoices):
    OFF = "off", "Off"
    REVIEW = "review", "Review (preview, then approve)"
    AUTO = "auto", "Automatic"


class ChargeDatePolicy(models.TextChoices):
    DUE_DATE = "due_date", "The invoice's due date (or the earliest possible after it)"
    EARLIEST = "earliest", "The earliest possible date"


class OverMaximumPolicy(models.TextChoices):
    SPLIT = "split", "Split into instalments within the scheme maximum"
    SKIP = "skip", "Skip (shown with that reason)"


class Tenant(models.Model):
    """A company whose Exact Online division is connected to its GoCardless account."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    # Public identifier in webhook URLs: unguessable and never the primary key.
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    time_zone = models.CharField(
        max_length=64, default="Europe/Amsterdam", validators=[validate_time_zone]
    )
    is_active = models.BooleanField(default=True)

    # Collection policy (the collection engine reads these).
    collection_mode = models.CharField(
        max_length=10, choices=CollectionMode.choices, default=CollectionMode.OFF
    )
    lead_days = models.PositiveSmallIntegerField(
        default=5, help_text="Collect invoices due within this many days."
    )
    minimum_amount = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Invoices with less outstanding than this are not collected.",
    )
    currencies = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_currency_list],
        help_text='Currencies to collect, e.g. ["EUR", "GBP"]. Empty: none.',
    )
    max_payments_per_run = models.PositiveIntegerField(
        default=1000,
        validators=[MinValueValidator(1)],
        help_text="At most this many payments are created by one run; the rest wait.",
    )
    charge_date_policy = models.CharField(
        max_length=10, choices=ChargeDatePolicy.choices, default=ChargeDatePolicy.DUE_DATE
    )
    over_maximum_policy = models.CharField(
        max_length=10,
        choices=OverMaximumPolicy.choices,
        default=OverMaximumPolicy.SKIP,
        help_text="What to do with an amount above the scheme's maximum for one payment.",
    )
    retry_count = models.PositiveSmallIntegerField(
        default=1, help_text="How often a failed payment is collected again before a person looks."
    )
    retry_spacing_days = models.PositiveSmallIntegerField(
        default=7, validators=[MinValueValidator(1)], help_text="Days between retries."
    )
    use_success_plus = models.BooleanField(
        default=False,
        help_text="Let GoCardless Success+ retry failures (retry_if_possible) instead of us.",
    )
    collect_new_invoices = models.BooleanField(
        default=False,
        help_text="Start a run when Exact reports a new invoice (webhook), not only on schedule.",
    )
    collection_hour = models.PositiveSmallIntegerField(
        default=6,
        validators=[MaxValueValidator(23)],
        help_text="Local hour (0-23) of the daily scheduled run.",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    tenant_path = "pk"

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def webhook_url(self, provider: str) -> str:
        return f"{settings.PUBLIC_BASE_URL}/webhooks/{provider}/{self.uuid}/"


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Administrator"


ROLE_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


class Membership(models.Model):
    """A user's role in one tenant: viewer reads, operator acts, admin configures."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="uniq_membership"),
        ]
        ordering = ["tenant__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"
