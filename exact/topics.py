"""Which Exact webhook topics we subscribe to, and what each one re-syncs.

An Exact event names only a topic, an action and a key (API notes §7.3), so reacting to it
means re-reading that one record: ``Accounts`` → ``account_resync`` (one GET by key; a 404
removes the account from the mirror), ``SalesInvoices`` → ``invoice_receivables_resync`` (the
invoice's number, then its open items; a deleted invoice runs the deletions pass). The
subscriptions (exact/webhooks.py) are made for exactly these topics.
"""

from __future__ import annotations

from exact.models import ExactConnection, SyncRun
from exact.sync import account_resync, invoice_receivables_resync

RESYNC_BY_TOPIC = {
    "Accounts": account_resync,
    "SalesInvoices": invoice_receivables_resync,
}
TOPICS = tuple(RESYNC_BY_TOPIC)


def topic_resync(
    *, connection: ExactConnection, topic: str, key: str, trigger: str
) -> SyncRun | None:
    """Re-sync what an event of ``topic`` about ``key`` changed; None for a topic we do not
    follow (nothing is called). Raises what the sync services raise (unusable connection,
    daily budget spent, API errors)."""
    resync = RESYNC_BY_TOPIC.get(topic)
    if resync is None:
        return None
    return resync(connection=connection, key=key, trigger=trigger)
