"""Signals the customers app sends about a customer's collectability.

``collection_stopped``: a customer may no longer be collected — its mandate was cancelled,
failed, expired or blocked, the link was removed, or the Exact account was blocked or
deleted. Sent with ``sender=CustomerLink`` and keyword arguments ``tenant``, ``link``,
``reason`` (a short machine key such as ``mandate_cancelled``) and ``message``. Sent inside
the transaction that records the stop: a receiver that must call a provider should queue its
work with on_commit.

``collection_resumed``: the customer is collectable again (a new or reinstated mandate).

Handlers are connected only in config/wiring.py. None is connected today: the collection
engine reads the link's state when it selects invoices, and flags in-flight attempts of a
stopped mandate through its own GoCardless mandate handler.
"""

from django.dispatch import Signal

collection_stopped = Signal()
collection_resumed = Signal()
