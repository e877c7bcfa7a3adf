"""Onboarding calls for mandate invitations and customer alignment (issue 5).

Thin functions over ``GoCardlessClient``. Where the client has no method yet (customer
details update, billing request cancel), the call goes through the client's SDK object and
its ``_call`` wrapper, so error mapping and 429 handling still apply; no HTTP here.
"""

from __future__ import annotations

from collections.abc import Iterator

from gocardless.client import GoCardlessClient

# Customer fields GoCardless lets us update (API notes §5.1).
CUSTOMER_UPDATABLE = (
    "email",
    "given_name",
    "family_name",
    "company_name",
    "address_line1",
    "address_line2",
    "address_line3",
    "city",
    "region",
    "postal_code",
    "country_code",
    "language",
    "phone_number",
)


def creditor_currencies(*, client: GoCardlessClient) -> set[str]:
    """Currencies the creditor can collect: its active scheme identifiers."""
    currencies: set[str] = set()
    for creditor in client.creditors_list():
        for identifier in creditor.get("scheme_identifiers") or []:
            if identifier.get("status", "active") == "active" and identifier.get("currency"):
                currencies.add(identifier["currency"])
    return currencies


def customers_all(*, client: GoCardlessClient) -> Iterator[dict]:
    return client.customers_iter({"limit": 500})


def mandates_all(*, client: GoCardlessClient) -> Iterator[dict]:
    return client.mandates_iter({"limit": 500})


def customer_get(*, client: GoCardlessClient, customer_id: str) -> dict:
    return client.customer_get(customer_id)


def customer_update(*, client: GoCardlessClient, customer_id: str, fields: dict) -> dict:
    """PUT /customers/{id} with the given customer fields (metadata has its own call)."""
    params = {k: v for k, v in fields.items() if k in CUSTOMER_UPDATABLE}
    if not params:
        return client.customer_get(customer_id)
    return client.customer_update(customer_id, params)


def customer_metadata_set(*, client: GoCardlessClient, customer_id: str, metadata: dict) -> dict:
    return client.customer_update_metadata(customer_id, metadata)


def billing_request_create(*, client: GoCardlessClient, params: dict, idempotency_key: str) -> dict:
    return client.billing_request_create(params=params, idempotency_key=idempotency_key)


def billing_request_get(*, client: GoCardlessClient, billing_request_id: str) -> dict:
    return client.billing_request_get(billing_request_id)


def billing_request_flow_create(
    *, client: GoCardlessClient, params: dict, idempotency_key: str
) -> dict:
    return client.billing_request_flow_create(params=params, idempotency_key=idempotency_key)


def billing_request_cancel(*, client: GoCardlessClient, billing_request_id: str) -> dict:
    return client.billing_request_cancel(billing_request_id)


def mandate_get(*, client: GoCardlessClient, mandate_id: str) -> dict:
    return client.mandate_get(mandate_id)
