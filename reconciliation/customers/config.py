"""Per-tenant settings, and the provider clients for a tenant (built in one place)."""

from __future__ import annotations

from exact.client import ExactClient
from exact.models import ExactConnection
from gocardless.client import GoCardlessClient
from gocardless.models import ConnectionStatus, GoCardlessConnection
from reconciliation.customers.models import CustomerSettings


def customer_settings_for(*, tenant) -> CustomerSettings:
    """The tenant's settings; an unsaved row with the defaults when none exists yet."""
    found = CustomerSettings.objects.filter(tenant=tenant).first()
    return found if found is not None else CustomerSettings(tenant=tenant)


def gocardless_client_for(*, tenant):
    """A GoCardless client for the tenant's connection, or None when it is not connected."""
    connection = GoCardlessConnection.objects.filter(
        tenant=tenant, status=ConnectionStatus.CONNECTED
    ).first()
    if connection is None:
        return None
    return GoCardlessClient.for_connection(connection)


def exact_client_for(*, tenant):
    """An Exact client for the tenant's usable connection, or None."""
    connection = ExactConnection.objects.select_related("tenant").filter(tenant=tenant).first()
    if connection is None or not connection.is_usable:
        return None
    return ExactClient(connection)
