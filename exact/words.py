"""Exact Online's codes in words, for the admin pages and the customer page (issue 15).

Exact sends short codes (an account's status ``C``, a receivable's status ``20``, a language
``NL``, a payment condition ``DD``); finance staff read them as words. A code a table does
not know is shown as Exact wrote it (upper-case codes are how Exact's own screens show them).
"""

from __future__ import annotations

import re

from core.display import sentence

# Accounts.Status (Exact's REST reference, CRM/Accounts).
ACCOUNT_STATUS_WORDS = {
    "C": "Customer",
    "P": "Prospect",
    "S": "Suspect",
    "A": "Not a customer yet",
}

# ReceivablesList / SalesInvoices status (Exact's REST reference).
RECEIVABLE_STATUS_WORDS = {
    10: "Draft",
    20: "Open",
    50: "Processed (paid or settled)",
}

# Languages by the two letters Exact and the mandate invitations use.
LANGUAGE_WORDS = {
    "nl": "Dutch",
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "it": "Italian",
    "da": "Danish",
    "sv": "Swedish",
    "nb": "Norwegian",
    "fi": "Finnish",
    "pt": "Portuguese",
}

# Payment conditions the demo and most Dutch administrations use; others show their code and
# Exact's description is kept in the account's raw record.
PAYMENT_CONDITION_WORDS = {
    "DD": "Direct debit",
    "00": "Pay at once",
    "14": "Within 14 days",
    "30": "Within 30 days",
}


def language_words(code: str | None) -> str:
    """``nl`` / ``NL`` / ``nl-NL`` → ``Dutch``; unknown: the code in capitals."""
    if not code:
        return ""
    base = code.strip().lower().replace("_", "-").split("-")[0]
    return LANGUAGE_WORDS.get(base) or code.upper()


def account_status_words(code: str | None) -> str:
    if not code:
        return ""
    return ACCOUNT_STATUS_WORDS.get(code.strip().upper(), code)


def receivable_status_words(code: int | None) -> str:
    if code is None:
        return ""
    return RECEIVABLE_STATUS_WORDS.get(int(code), f"Status {code}")


def payment_condition_words(code: str | None, description: str = "") -> str:
    """``DD`` → ``Direct debit (DD)``; Exact's own description when the account has one."""
    if not code:
        return ""
    shown = description or PAYMENT_CONDITION_WORDS.get(code.strip().upper())
    return f"{shown} ({code})" if shown else code


_CLASS_PREFIX = re.compile(r"^[A-Z][A-Za-z]+(?:Error|Exception|Unavailable|Paused|Reauth)?: ")


def error_sentence(error: str | None) -> str:
    """A stored error as a sentence: no exception class name in front, a capital at the start,
    a full stop at the end, codes in words."""
    if not error:
        return ""
    text = _CLASS_PREFIX.sub("", error.strip().splitlines()[0]).strip()
    text = re.sub(r"(?<![\w@/.:-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w@/:-])",
                  lambda match: sentence(match[0]).lower(), text)
    if not text:
        return ""
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
