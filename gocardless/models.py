"""GoCardless: the tenant's connection (access token, organisation, webhook secret)."""

from django.db import models

from tenants.fields import EncryptedSecretField


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
        blank=True, help_text="Only for environment 'custom' (e.g. the local simulator)."
    )
    access_token = EncryptedSecretField()
    webhook_secret = EncryptedSecretField()
    organisation_id = models.CharField(max_length=40, blank=True, db_index=True)
    creditor_id = models.CharField(max_length=40, blank=True)
    status = models.CharField(
        max_length=20, choices=ConnectionStatus.choices, default=ConnectionStatus.DISCONNECTED
    )
    status_reason = models.TextField(blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "GoCardless connection"

    def __str__(self) -> str:
        return f"GoCardless for {self.tenant}"

    @property
    def base_url(self) -> str:
        if self.environment == Environment.CUSTOM:
            return self.custom_base_url.rstrip("/")
        return ENVIRONMENT_URLS[self.environment]
