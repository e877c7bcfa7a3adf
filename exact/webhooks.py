"""Exact webhooks: signature check, event parsing, deduplication, and subscriptions.

Exact's signature is not a header: ``HashCode`` is the upper-case hex HMAC-SHA256 of the raw
``Content`` object *as sent* (the bytes between ``{"Content":`` and ``,"HashCode":"``), keyed
with the app's webhook secret (API-NOTES §7.4). We cut that substring out of the raw body
bytes — never re-serialise parsed JSON — and compare in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from exact.client import ExactClient
from exact.errors import ExactApiError, ExactNotFound
from exact.models import ExactConnection
from exact.topics import TOPICS

logger = logging.getLogger(__name__)

_ENVELOPE = re.compile(rb'^\s*\{"Content":(.*),"HashCode":"([0-9A-Fa-f]*)"\}\s*$', re.S)
REQUIRED = ("Topic", "Division", "Action", "Key")


class WebhookMalformed(ValueError):
    pass


@dataclass(frozen=True)
class WebhookEvent:
    topic: str
    division: int
    action: str
    key: str
    event_created_on: str
    endpoint: str

    @property
    def dedup_key(self) -> str:
        return f"{self.topic}|{self.key}|{self.action}|{self.event_created_on}"[:200]


def webhook_signature(content: bytes, *, secret: str) -> str:
    return hmac.new(secret.encode(), content, hashlib.sha256).hexdigest().upper()


def webhook_split(body: bytes) -> tuple[bytes, str]:
    """(raw Content bytes, HashCode) or WebhookMalformed."""
    match = _ENVELOPE.match(body)
    if match is None:
        raise WebhookMalformed('body is not {"Content":…,"HashCode":"…"}')
    return match.group(1), match.group(2).decode()


def webhook_signature_valid(content: bytes, hash_code: str, *, secret: str) -> bool:
    if not secret or not hash_code:
        return False
    return hmac.compare_digest(webhook_signature(content, secret=secret), hash_code.upper())


def webhook_event_parse(content: bytes) -> WebhookEvent:
    try:
        data = json.loads(content)
    except ValueError as exc:
        raise WebhookMalformed(f"Content is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WebhookMalformed("Content is not an object")
    missing = [name for name in REQUIRED if data.get(name) in (None, "")]
    if missing:
        raise WebhookMalformed(f"Content lacks {', '.join(missing)}")
    try:
        division = int(data["Division"])
    except (TypeError, ValueError):
        raise WebhookMalformed("Division is not a number") from None
    return WebhookEvent(
        topic=str(data["Topic"])[:64],
        division=division,
        action=str(data["Action"])[:32],
        key=str(data["Key"])[:64],
        event_created_on=str(data.get("EventCreatedOn") or "")[:40],
        endpoint=str(data.get("ExactOnlineEndpoint") or ""),
    )


# --- subscriptions ------------------------------------------------------------------------
def subscriptions_create(*, connection: ExactConnection, api: ExactClient | None = None) -> list:
    """Subscribe the tenant's webhook URL to our topics (idempotent: reuses existing ones)."""
    api = api or ExactClient(connection)
    callback = connection.tenant.webhook_url("exact")
    existing = {
        row.get("Topic"): row.get("ID")
        for row in api.iter_rows(
            "webhooks/WebhookSubscriptions", select=("ID", "CallbackURL", "Topic")
        )
        if row.get("CallbackURL") == callback
    }
    ids = []
    for topic in TOPICS:
        sub_id = existing.get(topic)
        if not sub_id:
            created = api.post(
                "webhooks/WebhookSubscriptions", {"CallbackURL": callback, "Topic": topic}
            )
            sub_id = created.get("ID")
        if sub_id:
            ids.append(str(sub_id))
    with transaction.atomic():
        ExactConnection.objects.filter(pk=connection.pk).update(webhook_subscription_ids=ids)
    connection.webhook_subscription_ids = ids
    return ids


def subscriptions_remove(
    *,
    connection: ExactConnection,
    api: ExactClient | None = None,
    division: int | None = None,
    token: str | None = None,
) -> list:
    """Delete our subscriptions; returns warnings for those Exact would not delete.

    ``division``/``token``: while switching administrations the connection is between
    states, so the caller names the old division and the new consent's token.
    """
    warnings = []
    try:
        api = api or ExactClient(connection)
        for sub_id in connection.webhook_subscription_ids or []:
            try:
                api.delete(
                    "webhooks/WebhookSubscriptions",
                    f"guid'{sub_id}'",
                    division=division,
                    token=token,
                )
            except ExactNotFound:
                continue
    except ExactApiError as exc:
        warnings.append(f"Webhook subscriptions could not all be removed: {exc}")
    except Exception as exc:  # disconnect must succeed even if Exact fails
        warnings.append(f"Webhook subscriptions could not be removed: {exc}")
    return warnings


def webhook_secret() -> str:
    return settings.EXACT_WEBHOOK_SECRET
