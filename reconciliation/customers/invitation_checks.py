"""Can this customer be invited, and in which currency and language?

Every check that can fail on our side (removed or ambiguous link, blocked or deleted
account, a usable mandate already, no valid e-mail, a currency or country GoCardless cannot
collect) runs before any call to GoCardless; a failure is ``InvitationSkipped`` with a
reason a person can act on.
"""

from __future__ import annotations

from collections import Counter

from exact.models import ExactReceivable, ReceivableKind
from gocardless.onboarding import creditor_currencies
from reconciliation.customers.models import CustomerLink, LinkState
from reconciliation.customers.normalise import (
    COUNTRIES_FOR_SCHEME,
    SCHEME_FOR_CURRENCY,
    country_code,
    email_valid,
    gocardless_language,
)
from reconciliation.customers.selectors import USABLE_MANDATE_STATUSES


class InvitationSkipped(Exception):
    """A reason on our side not to invite (shown to the person, stored on the link)."""


def collectable_currencies_for(*, client) -> set[str]:
    """The currencies the creditor can collect (its active scheme identifiers, at GoCardless)."""
    return creditor_currencies(client=client)


def invitation_currency(*, link: CustomerLink) -> str:
    """The account's sales currency; else that of its largest open receivables; else the
    tenant's only collected currency."""
    account = link.exact_account
    if account is not None and account.currency:
        return account.currency.upper()
    if account is not None:
        totals: Counter = Counter()
        for currency, outstanding in ExactReceivable.objects.filter(
            account=account, is_fully_paid=False, kind=ReceivableKind.INVOICE
        ).values_list("currency", "outstanding"):
            if currency:
                totals[currency.upper()] += outstanding
        if totals:
            return totals.most_common(1)[0][0]
    currencies = link.tenant.currencies or []
    return currencies[0] if len(currencies) == 1 else ""


def invitation_check(
    *, link: CustomerLink, collectable_currencies: set[str]
) -> tuple[str, str, str]:
    """(currency, scheme, language) or InvitationSkipped with the reason."""
    account = link.exact_account
    if link.state == LinkState.UNLINKED:
        raise InvitationSkipped("the link was removed by a person; re-link it first")
    if link.state == LinkState.AMBIGUOUS:
        raise InvitationSkipped("several GoCardless customers match; confirm the match first")
    if account is None:
        raise InvitationSkipped("the Exact account no longer exists")
    if account.blocked:
        raise InvitationSkipped("the account is blocked in Exact")
    if link.mandate_id and link.mandate.status in USABLE_MANDATE_STATUSES and not link.stop_reason:
        raise InvitationSkipped(
            f"the customer already has a {link.mandate.status} mandate "
            f"({link.mandate.gocardless_id})"
        )
    if not (account.email or "").strip():
        raise InvitationSkipped("no e-mail address in Exact: add one to the account")
    if not email_valid(account.email):
        raise InvitationSkipped(f"the e-mail address in Exact ({account.email!r}) is not valid")
    currency = invitation_currency(link=link)
    if not currency:
        raise InvitationSkipped("no currency: the account has no sales currency or open items")
    tenant_currencies = link.tenant.currencies or []
    if tenant_currencies and currency not in tenant_currencies:
        raise InvitationSkipped(
            f"{currency} is not a currency this company collects ({', '.join(tenant_currencies)})"
        )
    if currency not in collectable_currencies:
        raise InvitationSkipped(
            f"the GoCardless account cannot collect {currency} (it collects "
            f"{', '.join(sorted(collectable_currencies)) or 'nothing'})"
        )
    scheme = SCHEME_FOR_CURRENCY.get(currency, "")
    country = country_code(account.country)
    if country and scheme and country not in COUNTRIES_FOR_SCHEME.get(scheme, set()):
        raise InvitationSkipped(
            f"GoCardless cannot collect {currency} ({scheme}) from a payer in {country}"
        )
    return currency, scheme, gocardless_language(account.language)
