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


class ScheduleKind(models.TextChoices):
    DAILY = "daily", "Every day"
    WEEKDAYS = "weekdays", "On chosen weekdays"
    MONTH_DAYS = "month_days", "On chosen days of the month"


# Monday is 0, as in ``datetime.date.weekday()``; Saturday and Sunday are never working days,
# so a run chosen on them would always move to Monday: they are not offered.
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
SCHEDULE_WEEKDAYS = range(0, 5)


def validate_schedule_weekdays(value) -> None:
    if not isinstance(value, list) or not all(isinstance(d, int) for d in value):
        raise ValidationError("Weekdays must be a list of day numbers (Monday is 0).")
    for day in value:
        if day in (5, 6):
            raise ValidationError(
                f"{WEEKDAY_NAMES[day]} is not a working day: a run chosen on it would always "
                "move to Monday. Choose Monday instead."
            )
        if day not in SCHEDULE_WEEKDAYS:
            raise ValidationError(f"{day} is not a weekday (Monday is 0, Friday is 4).")


def validate_schedule_month_days(value) -> None:
    if not isinstance(value, list) or not all(isinstance(d, int) for d in value):
        raise ValidationError("Days of the month must be a list of numbers such as [1, 15].")
    for day in value:
        if not 1 <= day <= 31:
            raise ValidationError(
                f"{day} is not a day of the month: choose days from 1 to 31 "
                "(29, 30 and 31 mean the month's last day in shorter months)."
            )


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
        help_text="Local hour (0-23) of the scheduled run.",
    )
    # When the scheduled run happens (reconciliation/collection/schedule_slots.py computes the
    # slots; docs/schedules.md): every day, or on chosen weekdays or days of the month, moved
    # to the next working day of the collected currencies' scheme calendars when a chosen day
    # is a weekend day or holiday.
    schedule_kind = models.CharField(
        "Collection days",
        max_length=10,
        choices=ScheduleKind.choices,
        default=ScheduleKind.DAILY,
    )
    schedule_weekdays = models.JSONField(
        "Weekdays",
        default=list,
        blank=True,
        validators=[validate_schedule_weekdays],
        help_text="For a weekly schedule: the weekdays of the run (Monday is 0).",
    )
    schedule_month_days = models.JSONField(
        "Days of the month",
        default=list,
        blank=True,
        validators=[validate_schedule_month_days],
        help_text="For a monthly schedule: the days of the run, e.g. [1, 15].",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    tenant_path = "pk"

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        super().clean()
        # The chosen days only matter for their kind; an empty choice would never run.
        if self.schedule_kind == ScheduleKind.WEEKDAYS and not self.schedule_weekdays:
            raise ValidationError(
                {"schedule_weekdays": "Choose at least one weekday for a weekly schedule."}
            )
        if self.schedule_kind == ScheduleKind.MONTH_DAYS and not self.schedule_month_days:
            raise ValidationError(
                {"schedule_month_days": "Choose at least one day of the month (from 1 to 31)."}
            )

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
