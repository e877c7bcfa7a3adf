"""GoCardless' codes in the words finance staff read (the admin pages, the payout page).

Payment statuses and failure causes live in ``core.display`` (other apps show them too);
everything else GoCardless sends as a code is here: the statuses of mandates, payouts,
refunds, billing requests and bank accounts, the Direct Debit schemes, the resource types
and actions of events, and the types of payout items. ``core.display.words`` turns a code
missing from a table into a sentence, so a code GoCardless adds later still reads as words.
"""

from __future__ import annotations

from core.display import PAYMENT_STATUS_WORDS, words

MANDATE_STATUS_WORDS: dict[str, str] = {
    "pending_customer_approval": "Waiting for the customer's approval",
    "pending_submission": "Waiting to be sent to the bank",
    "submitted": "Sent to the customer's bank",
    "active": "Active (ready to collect)",
    "suspended_by_payer": "Suspended by the customer",
    "failed": "Failed",
    "cancelled": "Cancelled",
    "expired": "Expired (not used for too long)",
    "consumed": "Used up (one payment only)",
    "blocked": "Blocked by GoCardless",
}

PAYOUT_STATUS_WORDS: dict[str, str] = {
    "pending": "On its way to the bank",
    "paid": "Paid to the bank",
    "bounced": "Bounced (the bank refused it)",
}

REFUND_STATUS_WORDS: dict[str, str] = {
    "created": "Created",
    "pending_submission": "Waiting to be sent to the bank",
    "submitted": "Sent to the customer's bank",
    "paid": "Paid to the customer",
    "cancelled": "Cancelled",
    "bounced": "Bounced (the customer's bank refused it)",
    "funds_returned": "Money returned to us",
}

BILLING_REQUEST_STATUS_WORDS: dict[str, str] = {
    "pending": "Waiting for the customer",
    "ready_to_fulfil": "Ready to complete",
    "fulfilling": "Being completed",
    "fulfilled": "Completed (mandate set up)",
    "cancelled": "Cancelled",
}

SUBSCRIPTION_STATUS_WORDS: dict[str, str] = {
    "pending_customer_approval": "Waiting for the customer's approval",
    "customer_approval_denied": "Refused by the customer",
    "active": "Active (GoCardless collects each period)",
    "finished": "Finished (all its payments taken)",
    "cancelled": "Cancelled",
    "paused": "Paused",
}

INSTALMENT_SCHEDULE_STATUS_WORDS: dict[str, str] = {
    "pending": "Being set up by GoCardless",
    "active": "Active (collecting its instalments)",
    "creation_failed": "Could not be set up",
    "completed": "Completed (every instalment collected)",
    "cancelled": "Cancelled",
    "errored": "An instalment failed",
}

INTERVAL_UNIT_WORDS: dict[str, tuple[str, str]] = {
    # unit: (one, several)
    "weekly": ("week", "weeks"),
    "monthly": ("month", "months"),
    "yearly": ("year", "years"),
}

BANK_ACCOUNT_STATUS_WORDS: dict[str, str] = {
    "enabled": "In use",
    "disabled": "Disabled",
}

SCHEME_WORDS: dict[str, str] = {
    "sepa_core": "SEPA Direct Debit",
    "sepa_cor1": "SEPA Direct Debit (COR1)",
    "bacs": "Bacs Direct Debit",
    "autogiro": "Autogiro (Sweden)",
    "becs": "BECS Direct Debit (Australia)",
    "becs_nz": "BECS Direct Debit (New Zealand)",
    "betalingsservice": "Betalingsservice (Denmark)",
    "pad": "Pre-authorised debit (Canada)",
    "ach": "ACH Debit (United States)",
    "faster_payments": "Faster Payments",
    "pay_to": "PayTo (Australia)",
    "sepa_credit_transfer": "SEPA Credit Transfer",
    "sepa_instant_credit_transfer": "SEPA Instant Credit Transfer",
}

RESOURCE_TYPE_WORDS: dict[str, str] = {
    "payments": "Payment",
    "mandates": "Mandate",
    "payouts": "Payout",
    "refunds": "Refund",
    "customers": "Customer",
    "customer_bank_accounts": "Customer's bank account",
    "billing_requests": "Mandate request",
    "subscriptions": "Subscription",
    "instalment_schedules": "Instalment plan",
    "creditors": "Our GoCardless account",
    "payer_authorisations": "Payer authorisation",
    "exports": "Export",
    "outbound_payments": "Outbound payment",
    "scheme_identifiers": "Scheme identifier",
    "blocks": "Block",
}

PAYOUT_ITEM_TYPE_WORDS: dict[str, str] = {
    "payment_paid_out": "Payment collected",
    "payment_failed": "Payment failed after payout (late failure)",
    "payment_charged_back": "Chargeback",
    "payment_refunded": "Refund to the customer",
    "refund": "Refund to the customer",
    "refund_funds_returned": "Refund returned to us",
    "gocardless_fee": "GoCardless fee",
    "app_fee": "App fee",
    "revenue_share": "Revenue share",
    "surcharge_fee": "Surcharge (failure or chargeback fee)",
}

# What happened, per resource type; an action missing here falls back to ACTION_WORDS.
EVENT_ACTION_WORDS: dict[str, dict[str, str]] = {
    "payments": {
        **PAYMENT_STATUS_WORDS,
        "created": "Payment created",
        "customer_approval_granted": "The customer approved it",
        "surcharge_fee_credited": "Surcharge fee refunded by GoCardless",
    },
    "mandates": {
        "created": "Mandate created",
        "customer_approval_granted": "The customer approved it",
        "customer_approval_skipped": "Customer approval not needed",
        "submitted": "Sent to the customer's bank",
        "active": "Active (ready to collect)",
        "reinstated": "Active again",
        "transferred": "Moved to the customer's new bank account",
        "resubmission_requested": "Sent to the bank again",
        "replaced": "Replaced by a new mandate",
        "suspended_by_payer": "Suspended by the customer",
        "consumed": "Used up (one payment only)",
        "failed": "Failed",
        "cancelled": "Cancelled",
        "expired": "Expired (not used for too long)",
        "blocked": "Blocked by GoCardless",
    },
    "payouts": {
        "paid": "Paid to the bank",
        "bounced": "Bounced (the bank refused it)",
        "fx_rate_confirmed": "Exchange rate confirmed",
        "tax_exchange_rates_confirmed": "VAT exchange rates confirmed",
    },
    "refunds": {
        "created": "Refund created",
        "paid": "Paid to the customer",
        "refund_settled": "Deducted from a payout",
        "funds_returned": "Money returned to us",
        "failed": "Failed (the customer's bank refused it)",
    },
    "billing_requests": {
        "created": "Mandate request created",
        "flow_created": "Link for the customer created",
        "flow_visited": "The customer opened the link",
        "payer_details_confirmed": "The customer confirmed their details",
        "collect_customer_details": "Customer details collected",
        "collect_bank_account": "Bank account collected",
        "collect_amount": "Amount collected",
        "bank_authorisation_authorised": "The customer's bank authorised it",
        "bank_authorisation_denied": "The customer's bank refused it",
        "bank_authorisation_expired": "The bank authorisation expired",
        "bank_authorisation_failed": "The bank authorisation failed",
        "bank_authorisation_visited": "The customer opened their bank's page",
        "fulfilled": "Completed (mandate set up)",
        "cancelled": "Cancelled",
        "failed": "Failed",
    },
    "creditors": {
        "updated": "Account details changed",
        "new_payout_currency_added": "New payout currency added",
        "account_auto_frozen": "Account frozen by GoCardless",
        "account_auto_frozen_reverted": "Account unfrozen",
        "bounced_payout": "A payout bounced",
    },
    "customers": {
        "removed": "Customer removed (personal data erased)",
    },
    "subscriptions": {
        "created": "Subscription created",
        "customer_approval_granted": "The customer approved it",
        "customer_approval_denied": "Refused by the customer",
        "payment_created": "Payment created by the subscription",
        "amended": "Amount changed",
        "paused": "Paused",
        "resumed": "Resumed",
        "scheduled_pause": "Pause planned",
        "scheduled_pause_cancelled": "Planned pause called off",
        "finished": "Finished (all its payments taken)",
        "cancelled": "Cancelled",
    },
    "instalment_schedules": {
        "created": "Instalment plan created",
        "creation_failed": "Could not be set up",
        "completed": "Completed (every instalment collected)",
        "errored": "An instalment failed",
        "resumed": "Collecting again",
        "cancelled": "Cancelled",
    },
}

ACTION_WORDS: dict[str, str] = {
    "created": "Created",
    "updated": "Changed",
    "cancelled": "Cancelled",
    "failed": "Failed",
    "paid": "Paid",
    "submitted": "Sent to the bank",
    "confirmed": "Confirmed",
    "active": "Active",
    "expired": "Expired",
}

# The keys of a payment's metadata (ours, written by the collection engine) and of an
# event's links and details.
METADATA_KEY_WORDS: dict[str, str] = {
    "mlc_attempt": "Collection attempt",
    "exact_invoice": "Exact invoice",
    "exact_account": "Exact account",
}

DETAIL_ORIGIN_WORDS: dict[str, str] = {
    "bank": "The bank",
    "api": "Through the API (us)",
    "gocardless": "GoCardless",
    "customer": "The customer",
    "payer": "The customer",
}

# The status words of each mirror, by model name (gocardless/models.py).
STATUS_WORDS: dict[str, dict[str, str]] = {
    "payment": PAYMENT_STATUS_WORDS,
    "mandate": MANDATE_STATUS_WORDS,
    "payout": PAYOUT_STATUS_WORDS,
    "refund": REFUND_STATUS_WORDS,
    "billingrequest": BILLING_REQUEST_STATUS_WORDS,
    "customerbankaccount": BANK_ACCOUNT_STATUS_WORDS,
    "customer": {},
    "subscription": SUBSCRIPTION_STATUS_WORDS,
    "instalmentschedule": INSTALMENT_SCHEDULE_STATUS_WORDS,
}


def event_action_words(resource_type: str, action: str) -> str:
    """``("payments", "paid_out")`` → ``"Collected and paid out"``."""
    table = {**ACTION_WORDS, **EVENT_ACTION_WORDS.get(resource_type, {})}
    return words(action, table)


def status_words(model_name: str, status: str) -> str:
    """A mirror's status in words (``("payout", "paid")`` → ``"Paid to the bank"``)."""
    return words(status, STATUS_WORDS.get(model_name, {}))


def ordinal(day: int) -> str:
    """1 → "1st", 22 → "22nd", 13 → "13th"."""
    if 10 <= day % 100 <= 20:
        return f"{day}th"
    return f"{day}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th')}"


def interval_words(unit: str, interval: int | None = 1, day_of_month: int | None = None
                   ) -> str:
    """How often a plan collects: ``("monthly", 1, 10)`` → "Every month, on the 10th";
    ``("weekly", 2)`` → "Every 2 weeks"; ``("monthly", 1, -1)`` → "Every month, on the last
    day". An unknown unit still reads as words."""
    if not unit:
        return ""
    one, several = INTERVAL_UNIT_WORDS.get(unit, (words(unit, {}).lower(),) * 2)
    interval = interval or 1
    text = f"Every {one}" if interval == 1 else f"Every {interval} {several}"
    if day_of_month == -1:
        text += ", on the last day"
    elif day_of_month:
        text += f", on the {ordinal(day_of_month)}"
    return text
