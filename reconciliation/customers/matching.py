"""Matching Exact accounts to existing GoCardless customers (first connect and on demand).

Order: our metadata (the Exact account id in the customer's metadata), then e-mail
(case-insensitive), then company name + postcode (normalised). At each level a pair is
accepted only when it is one-to-one: the account has exactly one candidate AND that
customer is the candidate of no other account still waiting. Anything else at that level is
*ambiguous* and stops there — it is listed for a person to confirm, never guessed, and never
tried at a weaker level. Links a person made (matched manually, confirmed, unlinked) are
never touched.

Import: every GoCardless customer and mandate is listed (pages of 500) and mirrored through
the GoCardless app's ``mirror_upsert``, so the customer's existing mandates are known before
the link picks the one to collect with.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass, field

from django.db import transaction
from django.db.models import Q

from core.audit import Actor, audit_record
from exact.models import ExactAccount
from gocardless.mirrors import mirror_upsert
from gocardless.models import Customer
from gocardless.onboarding import customers_all, mandates_all
from reconciliation.customers.config import gocardless_client_for
from reconciliation.customers.links import link_mark_ambiguous, link_set_customer
from reconciliation.customers.models import CustomerLink, LinkState, MatchedBy
from reconciliation.customers.normalise import company_key, email_key, postcode_key
from reconciliation.customers.selectors import METADATA_KEY

logger = logging.getLogger(__name__)

LEVELS = (MatchedBy.METADATA, MatchedBy.EMAIL, MatchedBy.NAME_POSTCODE)


@dataclass
class MatchReport:
    imported_customers: int = 0
    imported_mandates: int = 0
    matched: dict = field(default_factory=lambda: {level.value: 0 for level in LEVELS})
    ambiguous: int = 0
    unmatched: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def customer_accounts(*, tenant):
    """Exact accounts that are customers: status C, or with receivables."""
    return (
        ExactAccount.objects.filter(tenant=tenant)
        .filter(Q(status="C") | Q(receivables__isnull=False))
        .distinct()
    )


def customers_import(*, tenant, client) -> tuple[int, int]:
    """Mirror every GoCardless customer and mandate of the tenant (idempotent)."""
    customers = mandates = 0
    for data in customers_all(client=client):
        with transaction.atomic():
            mirror_upsert(tenant=tenant, resource_type="customers", data=data)
        customers += 1
    for data in mandates_all(client=client):
        with transaction.atomic():
            mirror_upsert(tenant=tenant, resource_type="mandates", data=data)
        mandates += 1
    return customers, mandates


def _account_key(level: str, account: ExactAccount) -> str:
    if level == MatchedBy.METADATA:
        return str(account.exact_id)
    if level == MatchedBy.EMAIL:
        return email_key(account.email)
    name, postcode = company_key(account.name), postcode_key(account.postcode)
    return f"{name}|{postcode}" if name and postcode else ""


def _customer_key(level: str, customer: Customer) -> str:
    if level == MatchedBy.METADATA:
        return str((customer.metadata or {}).get(METADATA_KEY) or "").lower()
    if level == MatchedBy.EMAIL:
        return email_key(customer.email)
    raw = customer.raw or {}
    name = company_key(raw.get("company_name") or customer.name)
    postcode = postcode_key(raw.get("postal_code"))
    return f"{name}|{postcode}" if name and postcode else ""


def customers_match(
    *, tenant, actor: Actor, client=None, import_remote: bool = True
) -> MatchReport:
    report = MatchReport()
    if import_remote:
        client = client or gocardless_client_for(tenant=tenant)
        if client is not None:
            report.imported_customers, report.imported_mandates = customers_import(
                tenant=tenant, client=client
            )

    links = {
        link.exact_account_guid: link
        for link in CustomerLink.objects.filter(tenant=tenant).select_related(
            "gocardless_customer", "mandate"
        )
    }
    # A person's decision stands; an automatic match stays until a person changes it.
    settled = {
        guid
        for guid, link in links.items()
        if link.state in (LinkState.MATCHED, LinkState.UNLINKED)
    }
    taken = {
        link.gocardless_customer_id
        for link in links.values()
        if link.gocardless_customer_id and link.state == LinkState.MATCHED
    }
    waiting = [a for a in customer_accounts(tenant=tenant) if a.exact_id not in settled]
    available = [
        c for c in Customer.objects.filter(tenant=tenant).exclude(raw={}) if c.pk not in taken
    ]
    for level in LEVELS:
        decided, used = _level_match(
            level, waiting, available, links=links, tenant=tenant, actor=actor, report=report
        )
        waiting = [a for a in waiting if a.exact_id not in decided]
        available = [c for c in available if c.pk not in used]
    _unmatched_record(waiting, links=links, tenant=tenant)
    report.unmatched = len(waiting)
    audit_record(
        actor=actor,
        action="customers.matched",
        tenant=tenant,
        object_type="tenants.tenant",
        object_id=tenant.pk,
        after=report.as_dict(),
        message="matching Exact accounts to GoCardless customers",
    )
    return report


def _level_match(
    level, waiting, available, *, links, tenant, actor, report
) -> tuple[set, set[int]]:
    """One level: link the one-to-one pairs, mark the rest of the proposals ambiguous.
    Returns the accounts decided at this level and the customers used."""
    index: dict[str, list[Customer]] = defaultdict(list)
    for customer in available:
        key = _customer_key(level, customer)
        if key:
            index[key].append(customer)
    proposals = {}
    wanted_by: dict[int, int] = defaultdict(int)
    for account in waiting:
        key = _account_key(level, account)
        candidates = index.get(key.lower() if level == MatchedBy.METADATA else key, [])
        if candidates:
            proposals[account.exact_id] = (account, candidates)
            for customer in candidates:
                wanted_by[customer.pk] += 1
    decided: set = set()
    used: set[int] = set()
    for guid, (account, candidates) in proposals.items():
        link = links.get(guid)
        with transaction.atomic():
            if link is None:
                link = CustomerLink.objects.create(
                    tenant=tenant,
                    exact_account=account,
                    exact_account_guid=account.exact_id,
                    exact_code=account.code,
                    exact_name=account.name,
                )
                links[guid] = link
            if len(candidates) == 1 and wanted_by[candidates[0].pk] == 1:
                link_set_customer(link=link, customer=candidates[0], matched_by=level, actor=actor)
                used.add(candidates[0].pk)
                report.matched[level] += 1
            else:
                link_mark_ambiguous(
                    link=link,
                    candidates=[c.gocardless_id for c in candidates],
                    level=level,
                    actor=actor,
                )
                report.ambiguous += 1
        decided.add(guid)
    return decided, used


def _unmatched_record(waiting, *, links, tenant) -> None:
    """Everything left is unmatched: a row per account so the admin can invite it."""
    new_rows = [
        CustomerLink(
            tenant=tenant,
            exact_account=account,
            exact_account_guid=account.exact_id,
            exact_code=account.code,
            exact_name=account.name,
        )
        for account in waiting
        if account.exact_id not in links
    ]
    CustomerLink.objects.bulk_create(new_rows, ignore_conflicts=True)
    for account in waiting:
        link = links.get(account.exact_id)
        if link is not None and link.state == LinkState.AMBIGUOUS:
            # Candidates vanished (linked elsewhere or removed at GoCardless).
            link.state, link.candidates = LinkState.UNMATCHED, []
            link.save(update_fields=["state", "candidates", "updated_at"])
