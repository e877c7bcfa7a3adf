"""After a hosted page was completed: the new GoCardless customer's details into our mirror,
and our Exact account id into its metadata, so the next matching run finds it by metadata.

Run as ``link_customer_refresh_task`` (queued by mandate_sync.billing_request_fulfilled):
a provider call never runs inside GoCardless event processing.
"""

from __future__ import annotations

import logging

from django.db import transaction

from gocardless import errors
from gocardless.mirrors import mirror_upsert
from gocardless.onboarding import customer_get, customer_metadata_set
from reconciliation.customers.config import gocardless_client_for
from reconciliation.customers.models import CustomerLink
from reconciliation.customers.selectors import METADATA_KEY
from tenants.activity import tenant_skip

logger = logging.getLogger(__name__)


def link_customer_refresh(*, link: CustomerLink, client=None) -> str:
    """Fill the customer mirror from GoCardless and put our Exact id in its metadata."""
    if link.gocardless_customer_id is None:
        return "no customer"
    if tenant_skip(link.tenant, job="customer refresh", what=f"link {link.pk}"):
        return "tenant inactive"
    client = client or gocardless_client_for(tenant=link.tenant)
    if client is None:
        return "gocardless not connected"
    customer_id = link.gocardless_customer.gocardless_id
    try:
        data = customer_get(client=client, customer_id=customer_id)
        metadata = dict(data.get("metadata") or {})
        wanted = str(link.exact_account_guid)
        # GoCardless keeps at most 3 metadata keys: never push out someone else's.
        if metadata.get(METADATA_KEY) != wanted and (METADATA_KEY in metadata or len(metadata) < 3):
            metadata[METADATA_KEY] = wanted
            data = customer_metadata_set(client=client, customer_id=customer_id, metadata=metadata)
    except errors.GoCardlessError as exc:
        logger.warning("customer refresh for link %s failed: %s", link.pk, exc)
        return f"failed: {exc}"
    with transaction.atomic():
        mirror_upsert(tenant=link.tenant, resource_type="customers", data=data)
    return "refreshed"
