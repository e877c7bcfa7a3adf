"""Exact Online: the tenant's connection (tokens, division, ledger configuration)."""

from django.db import models

from tenants.fields import EncryptedSecretField


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

    # Ledger configuration for bookings (validated against Exact when saved, later issue).
    clearing_journal_code = models.CharField(
        max_length=20,
        blank=True,
        help_text="Bank-type journal that stands for the GoCardless balance.",
    )
    bank_journal_code = models.CharField(max_length=20, blank=True)
    receivables_gl_account = models.CharField(max_length=64, blank=True)
    fees_gl_account = models.CharField(max_length=64, blank=True)
    fees_vat_code = models.CharField(max_length=20, blank=True)
    webhook_subscription_ids = models.JSONField(default=list, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Exact Online connection"

    def __str__(self) -> str:
        return f"Exact Online for {self.tenant}"

    @property
    def base_url(self) -> str:
        if self.region == Region.CUSTOM:
            return self.custom_base_url.rstrip("/")
        return REGION_HOSTS[self.region]
