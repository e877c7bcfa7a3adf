"""Customers and mandates: the link between an Exact account and a GoCardless customer, the
tenant's registration and invitation settings, and mandate invitations
(docs/customers-and-mandates.md).

The tables keep the names they had while these models lived in the ``reconciliation`` app:
moving them into an app of their own changed no data.
"""

from django.conf import settings
from django.db import models


class RegistrationPolicy(models.TextChoices):
    OPEN_RECEIVABLES = "open_receivables", "Sales customers with open receivables"
    PAYMENT_CONDITION = "payment_condition", "Customers whose payment condition is direct debit"
    MANUAL = "manual", "Manual selection in the admin"


def _default_languages() -> dict:
    return {}


class CustomerSettings(models.Model):
    """Per-tenant configuration of registration, invitations and reflection into Exact.

    A customers-owned 1:1 row (rather than columns on Tenant) so tenants/ stays free of
    product rules. A tenant without a row uses the defaults below (see
    ``reconciliation.customers.config.customer_settings_for``).
    """

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="customer_settings"
    )
    registration_policy = models.CharField(
        max_length=20, choices=RegistrationPolicy.choices, default=RegistrationPolicy.MANUAL
    )
    auto_invite = models.BooleanField(
        default=False,
        help_text="Invite qualifying customers on the schedule. Off: only the admin action "
        "sends invitations.",
    )
    direct_debit_condition = models.CharField(
        max_length=20,
        blank=True,
        help_text="Exact payment condition code that means 'direct debit' (qualifies customers "
        "under that policy, and is written to Exact while a mandate is active).",
    )
    default_payment_condition = models.CharField(
        max_length=20,
        blank=True,
        help_text="Exact payment condition restored when a mandate stops.",
    )
    reflect_payment_condition = models.BooleanField(
        default=False, help_text="Write the mandate state into the account's payment condition."
    )
    reflect_mandate_record = models.BooleanField(
        default=False,
        help_text="Keep a cashflow/DirectDebitMandates record with the GoCardless mandate "
        "reference in Exact.",
    )
    invitation_sender = models.CharField(
        max_length=254,
        blank=True,
        help_text="From address of invitation e-mails; empty: the installation's default.",
    )
    invitation_subjects = models.JSONField(
        default=_default_languages,
        blank=True,
        help_text='Per language, e.g. {"nl": "..."}; empty: the built-in template.',
    )
    invitation_bodies = models.JSONField(
        default=_default_languages,
        blank=True,
        help_text="Per language, Django template text with {{ customer_name }}, {{ company }}, "
        "{{ url }}, {{ expires_at }}; empty: the built-in template.",
    )
    reminder_count = models.PositiveSmallIntegerField(default=2)
    reminder_spacing_days = models.PositiveSmallIntegerField(default=3)
    reissue_limit = models.PositiveSmallIntegerField(
        default=2, help_text="How often an expired invitation link is re-issued."
    )
    redirect_uri = models.URLField(
        blank=True, help_text="Where the payer lands after the hosted page (optional)."
    )
    exit_uri = models.URLField(blank=True, help_text="Where 'exit' on the hosted page leads.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "reconciliation_customersettings"
        verbose_name = "customer and mandate settings"
        verbose_name_plural = "customer and mandate settings"

    def __str__(self) -> str:
        return f"Customer settings of {self.tenant}"


class LinkState(models.TextChoices):
    MATCHED = "matched", "Matched"
    AMBIGUOUS = "ambiguous", "Ambiguous (needs a person)"
    UNMATCHED = "unmatched", "Unmatched"
    UNLINKED = "unlinked", "Unlinked by a person"


class MatchedBy(models.TextChoices):
    METADATA = "metadata", "Our metadata"
    EMAIL = "email", "E-mail"
    NAME_POSTCODE = "name_postcode", "Name and postcode"
    INVITATION = "invitation", "Mandate invitation"
    MANUAL = "manual", "A person"


class ReflectionState(models.TextChoices):
    NONE = "", "Nothing to write"
    PENDING = "pending", "Pending"
    DONE = "done", "Written"
    FAILED = "failed", "Failed (will retry)"


class CustomerLink(models.Model):
    """One Exact account and (when known) its GoCardless customer and current mandate.

    One row per Exact account. The row survives the Exact account's deletion (the FK is set
    to NULL, the guid/code/name stay) so history and the stop of collection remain visible.
    """

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="customer_links"
    )
    exact_account = models.ForeignKey(
        "exact.ExactAccount",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="customer_links",
    )
    exact_account_guid = models.UUIDField(help_text="Exact's account ID (kept after deletion).")
    exact_code = models.CharField(max_length=32, blank=True)
    exact_name = models.CharField(max_length=255, blank=True)
    gocardless_customer = models.ForeignKey(
        "gocardless.Customer",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="customer_links",
    )
    mandate = models.ForeignKey(
        "gocardless.Mandate",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="customer_links",
        help_text="The mandate we collect with (newest usable one).",
    )
    state = models.CharField(
        max_length=12, choices=LinkState.choices, default=LinkState.UNMATCHED, db_index=True
    )
    matched_by = models.CharField(max_length=16, choices=MatchedBy.choices, blank=True)
    candidates = models.JSONField(
        default=list, blank=True, help_text="GoCardless customer ids when ambiguous."
    )
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.CharField(
        max_length=300, blank=True, help_text="Why collection stopped (empty: not stopped)."
    )
    stopped_at = models.DateTimeField(null=True, blank=True)
    selected_for_invitation = models.BooleanField(default=False)
    registration_note = models.CharField(
        max_length=500, blank=True, help_text="Why the last invitation attempt was skipped."
    )
    # What we last pushed to GoCardless from Exact (to detect Exact-side changes).
    pushed_snapshot = models.JSONField(default=dict, blank=True)
    # Reflection into Exact: desired state is recomputed from the link; this is bookkeeping.
    reflection_state = models.CharField(
        max_length=10, choices=ReflectionState.choices, blank=True, default=""
    )
    reflection_error = models.TextField(blank=True)
    reflection_attempts = models.PositiveIntegerField(default=0)
    reflection_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    reflected = models.JSONField(
        default=dict,
        blank=True,
        help_text="What Exact holds from us: payment condition, mandate records by reference.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "reconciliation_customerlink"
        verbose_name = "customer link"
        ordering = ["tenant", "exact_code"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "exact_account_guid"],
                condition=~models.Q(state="unlinked"),
                name="customer_link_account_uniq",
            ),
            models.UniqueConstraint(
                fields=["tenant", "gocardless_customer"],
                condition=~models.Q(state="unlinked"),
                name="customer_link_customer_uniq",
            ),
        ]

    def __str__(self) -> str:
        label = f"{self.exact_code.strip()} {self.exact_name}".strip()
        return label or str(self.exact_account_guid)


class InvitationState(models.TextChoices):
    PENDING = "pending", "Pending (not sent yet)"
    SENT = "sent", "Sent"
    COMPLETED = "completed", "Completed"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


OPEN_INVITATION_STATES = (InvitationState.PENDING, InvitationState.SENT)


class MandateInvitation(models.Model):
    """One hosted-page link (billing request + flow) offered to a customer."""

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="mandate_invitations"
    )
    link = models.ForeignKey(CustomerLink, on_delete=models.CASCADE, related_name="invitations")
    attempt = models.PositiveIntegerField(help_text="Per link; part of the idempotency keys.")
    currency = models.CharField(max_length=3)
    language = models.CharField(max_length=5, blank=True)
    email = models.CharField(max_length=254, blank=True)
    billing_request_id = models.CharField(max_length=40, blank=True, db_index=True)
    flow_id = models.CharField(max_length=40, blank=True)
    authorisation_url = models.URLField(max_length=1000, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(
        max_length=10,
        choices=InvitationState.choices,
        default=InvitationState.PENDING,
        db_index=True,
    )
    reminders_sent = models.PositiveSmallIntegerField(default=0)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    reissued_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    error = models.TextField(blank=True)
    field_errors = models.JSONField(default=list, blank=True)
    mandate_gocardless_id = models.CharField(max_length=40, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "reconciliation_mandateinvitation"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["link", "attempt"], name="invitation_attempt_uniq"),
            models.UniqueConstraint(
                fields=["link"],
                condition=models.Q(state__in=["pending", "sent"]),
                name="invitation_one_open_per_link",
            ),
        ]

    def __str__(self) -> str:
        return f"invitation {self.attempt} for {self.link} ({self.state})"
