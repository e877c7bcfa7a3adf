"""Signals the collection engine (issue 6) subscribes to.

``collection_stopped``: a customer may no longer be collected — its mandate was cancelled,
failed, expired or blocked, the link was removed, or the Exact account was blocked or
deleted. Sent with ``sender=CustomerLink`` and keyword arguments ``tenant``, ``link``,
``reason`` (a short machine key such as ``mandate_cancelled``) and ``message``. The engine
should flag the customer's in-flight collection attempts (cancel what is still cancellable
at GoCardless, mark the rest as needing attention). Sent inside the transaction that records
the stop: a receiver that must call a provider should queue its work with on_commit.

``collection_resumed``: the customer is collectable again (a new or reinstated mandate).
"""

from django.dispatch import Signal

collection_stopped = Signal()
collection_resumed = Signal()
