"""What a failed payment's cause decides: collect again, let Success+ retry, or stop; and
whether the customer gets a payment link when nothing more will be collected by Direct Debit.

A tenant's own ``FailureRule`` rows win; a cause without a row follows ``DEFAULT_RULES``
(sources in docs/failures.md), whose retry parameters are the tenant's existing policy fields
(``retry_count``, ``retry_spacing_days``, ``use_success_plus``), so a tenant that never
touches the table collects as before. A cause nobody documented (or a new one) gets
``UNKNOWN_CAUSE``: no automatic retry, a person decides. Chargebacks and disputed
authorisations are never retried, whatever a row says (``NEVER_RETRIED``): collecting again
what a customer disputed is how a merchant loses its Direct Debit facility.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.display import FAILURE_CAUSE_WORDS, words
from reconciliation.collection.models import FailureAction, FailureRule, FailureSettings

# The status GoCardless gives a payment the customer's bank reclaimed: a "cause" of its own
# in the table (its event's cause says why, but every chargeback is handled the same way).
CHARGED_BACK = "charged_back"
UNKNOWN = "unknown"
NEVER_RETRIED = frozenset({CHARGED_BACK, "authorisation_disputed", "refund_requested"})

# Failures the scheme can fix by itself on another day: insufficient funds (GoCardless
# Success+ retries exactly these) and refer to payer (Bacs' ARUDD 0, "almost always due to
# insufficient funds"). Everything that says the mandate or the account is gone is not.
RETRYABLE = frozenset({"insufficient_funds", "refer_to_payer"})


@dataclass(frozen=True)
class Default:
    retry: bool  # retried by the tenant's retry policy (days/times or Success+)
    pay_link: bool  # a payment link once retries are used up or the mandate is gone


DEFAULT_RULES: dict[str, Default] = {
    "insufficient_funds": Default(retry=True, pay_link=True),
    "refer_to_payer": Default(retry=True, pay_link=True),
    "mandate_cancelled": Default(retry=False, pay_link=True),
    "mandate_expired": Default(retry=False, pay_link=True),
    "bank_account_closed": Default(retry=False, pay_link=True),
    "bank_account_transferred": Default(retry=False, pay_link=True),
    "invalid_bank_details": Default(retry=False, pay_link=True),
    "direct_debit_not_enabled": Default(retry=False, pay_link=True),
    "authorisation_disputed": Default(retry=False, pay_link=False),
    "refund_requested": Default(retry=False, pay_link=False),
    CHARGED_BACK: Default(retry=False, pay_link=False),
}
UNKNOWN_CAUSE = Default(retry=False, pay_link=False)

# Causes the table offers (the documented ones first, then "any other cause").
CAUSE_CHOICES = [
    *(
        (cause, words(cause, FAILURE_CAUSE_WORDS) or cause)
        for cause in DEFAULT_RULES
        if cause != CHARGED_BACK
    ),
    (CHARGED_BACK, "Charged back by the customer's bank"),
    *(
        (cause, text)
        for cause, text in FAILURE_CAUSE_WORDS.items()
        if cause not in DEFAULT_RULES and cause != "test_failure"
    ),
    (UNKNOWN, "Any cause not listed here"),
]
CAUSE_WORDS = dict(CAUSE_CHOICES)


@dataclass(frozen=True)
class Decision:
    """What to do with one failure, and the words naming the rule that decided it."""

    action: str  # FailureAction
    retry_after_days: int
    retry_times: int
    pay_link: bool  # the rule asks for a link (the tenant's switch is checked separately)
    rule: str  # "Company rule: …" / "Default rule: …"


def cause_of(*, cause: str, status: str) -> str:
    """The table's key for a failure: every chargeback is one row, whatever its cause."""
    return CHARGED_BACK if status == CHARGED_BACK else (cause or UNKNOWN)


def _said(cause: str, action: str, days: int, times: int, pay_link: bool) -> str:
    often = "once" if times == 1 else f"{times} times"
    what = {
        FailureAction.RETRY: f"collect again after {days} days, at most {often}",
        FailureAction.SUCCESS_PLUS: "let GoCardless Success+ retry",
        FailureAction.NO_RETRY: "no retry",
    }[action]
    link = ", then a payment link" if pay_link else ""
    return f"{CAUSE_WORDS.get(cause, words(cause, FAILURE_CAUSE_WORDS) or cause)}: {what}{link}"


def failure_decide(*, tenant, cause: str, status: str = "failed") -> Decision:
    """The rule for ``cause`` (a payment failure's ``details.cause``) at ``tenant``."""
    key = cause_of(cause=cause, status=status)
    own = {
        row.cause: row
        for row in FailureRule.objects.filter(tenant=tenant, cause__in=(key, UNKNOWN))
    }
    return _decide(tenant, key, own)


def _decide(tenant, key: str, own: dict) -> Decision:
    """``own``: the tenant's rows by cause (at least ``key``'s and the catch-all's)."""
    row = own.get(key) or (own.get(UNKNOWN) if key not in DEFAULT_RULES else None)
    if row is not None:
        action = row.action
        if key in NEVER_RETRIED:
            action = FailureAction.NO_RETRY
        return Decision(
            action=action,
            retry_after_days=row.retry_after_days,
            retry_times=row.retry_times,
            pay_link=row.pay_link and key not in NEVER_RETRIED,
            rule="Company rule: "
            + _said(row.cause, action, row.retry_after_days, row.retry_times, row.pay_link),
        )
    default = DEFAULT_RULES.get(key, UNKNOWN_CAUSE)
    if not default.retry:
        action = FailureAction.NO_RETRY
    elif tenant.use_success_plus:
        action = FailureAction.SUCCESS_PLUS
    else:
        action = FailureAction.RETRY
    shown = key if key in DEFAULT_RULES else UNKNOWN
    return Decision(
        action=action,
        retry_after_days=tenant.retry_spacing_days,
        retry_times=tenant.retry_count,
        pay_link=default.pay_link,
        rule="Default rule: "
        + _said(shown, action, tenant.retry_spacing_days, tenant.retry_count, default.pay_link),
    )


def pay_links_enabled(*, tenant) -> bool:
    """Whether the company switched payment links on (off by default: a new e-mail to its
    customers is the company's decision)."""
    return FailureSettings.objects.filter(tenant=tenant, pay_links_enabled=True).exists()


def failure_table(*, tenant, rules=None) -> list[tuple[str, str, Decision]]:
    """Every cause the table offers with the rule that applies now: (cause, words, decision),
    for the admin's overview. ``rules``: the tenant's rows when already loaded (one query
    for every tenant on the page)."""
    if rules is None:
        rules = list(FailureRule.objects.filter(tenant=tenant))
    own = {row.cause: row for row in rules}
    return [(cause, text, _decide(tenant, cause, own)) for cause, text in CAUSE_CHOICES]
