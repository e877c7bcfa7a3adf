"""How a booking names the collection attempt its payment belongs to: the key's instalment
part and a payment link's part 0 in words, never "attempt 1.0" (which the demo's pages-in-
words check reads as a float amount)."""

from __future__ import annotations

import pytest

from reconciliation.bookings.display import attempt_words


@pytest.mark.parametrize(
    ("key", "invoice", "words"),
    [
        ("3f0c/1", 26010, "Invoice 26010, attempt 1"),
        ("3f0c/2.3", 26010, "Invoice 26010, attempt 2, instalment 3"),
        ("3f0c/1.0", 26014, "Invoice 26014, attempt 1, paid through the payment link"),
        ("3f0c/1.0", None, "Attempt 1, paid through the payment link"),
        ("", 26010, "Invoice 26010"),
    ],
)
def test_attempt_words(key, invoice, words):
    assert attempt_words(key, invoice) == words
