"""Exact webhooks: receiving a delivery (verify, store, deduplicate, route, queue) and our
subscriptions.

Exact's signature is not a header: ``HashCode`` is the upper-case hex HMAC-SHA256 of the raw
``Content`` object *as sent* (the bytes between ``{"Content":`` and ``,"HashCode":"``), keyed
with the app's webhook secret (API-NOTES §7.4). We cut that substring out of the raw body
bytes — never re-serialise parsed JSON — and compare in constant time.

``delivery_receive`` is everything the endpoints do; exact/views.py only hands it the request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from exact import queue
from exact.client import ExactClient
from exact.errors import ExactApiError, ExactNotFound
from exact.models import ConnectionStatus, ExactConnection, ExactWebhookDelivery
from exact.topics import TOPICS
from tenants.models import Tenant

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


def webhook_secret() -> str:
    return settings.EXACT_WEBHOOK_SECRET


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


# --- receiving ----------------------------------------------------------------------------
KEPT_HEADERS = ("Content-Type", "Content-Length", "User-Agent", "X-Forwarded-For")


@dataclass(frozen=True)
class Outcome:
    """The answer to one delivery: HTTP status and JSON body (None: an empty 200)."""

    status: int
    payload: dict | None = None


def delivery_receive(
    *,
    tenant_uuid: uuid.UUID | None,
    body_stream: Any,
    content_length: str | None,
    headers: Mapping[str, str],
) -> Outcome:
    """One POST to ``/webhooks/exact/<tenant uuid>/`` or, with ``tenant_uuid=None``, to the
    app-wide ``/webhooks/exact/``. Call outside a transaction: every stored row must survive.

    Order of checks: declared or actual body over WEBHOOK_MAX_BODY_BYTES → 413 (never more
    than the limit + 1 bytes are read from ``body_stream``); empty body → 200 and nothing else
    (Exact's validation POST); unknown/inactive tenant → 404; not ``{"Content":…,"HashCode":…}``
    → 400; wrong HashCode → 401; Content not an event → 400; division not the tenant's → 403.
    Every delivery but the validation POST is stored. A valid event is deduplicated per tenant
    and queues ``exact.tasks.exact_webhook_resync_task`` after commit.

    The app-wide endpoint (subscriptions made outside the connector, one callback per app)
    routes by the event's ``Division``: every active tenant connected to it gets the event. It
    only makes each tenant re-read one record, so a division two tenants connected (a test and
    a live tenant) costs each one idempotent re-sync."""
    kept = {name: headers[name] for name in KEPT_HEADERS if name in headers}
    app_wide = tenant_uuid is None
    tenant = None if app_wide else Tenant.objects.filter(uuid=tenant_uuid, is_active=True).first()
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(content_length or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return _refuse(tenant, b"", kept, 413, f"body of {declared} bytes refused")
    body = body_stream.read(limit + 1)  # never more than the limit into memory
    if len(body) > limit:
        return _refuse(tenant, b"", kept, 413, "body over the limit refused")
    if not body.strip():
        return Outcome(200)  # Exact's validation POST: answer, do nothing else
    if tenant is None and not app_wide:
        return _refuse(None, body, kept, 404, "unknown tenant")
    try:
        content, hash_code = webhook_split(body)
    except WebhookMalformed as exc:
        return _refuse(tenant, body, kept, 400, str(exc))
    if not webhook_signature_valid(content, hash_code, secret=webhook_secret()):
        logger.warning("exact webhook: invalid HashCode (tenant %s)", tenant and tenant.pk)
        return _refuse(tenant, body, kept, 401, "invalid HashCode")
    try:
        event = webhook_event_parse(content)
    except WebhookMalformed as exc:
        return _refuse(tenant, body, kept, 400, str(exc), valid=True)
    if app_wide:
        return _route_by_division(body, kept, event)
    connection = ExactConnection.objects.filter(tenant=tenant).first()
    if connection is None or connection.division != event.division:
        return _refuse(
            tenant, body, kept, 403, "division is not this tenant's", valid=True, event=event
        )
    return _accept(tenant, body, kept, event)


def _route_by_division(body: bytes, headers: dict, event: WebhookEvent) -> Outcome:
    connections = (
        ExactConnection.objects.select_related("tenant")
        .filter(division=event.division, tenant__is_active=True)
        .exclude(status=ConnectionStatus.DISCONNECTED)
        .order_by("tenant_id")
    )
    tenants = [c.tenant for c in connections]
    if not tenants:
        return _refuse(
            None, body, headers, 404, f"no tenant is connected to division {event.division}",
            valid=True, event=event,
        )
    for tenant in tenants:
        _accept(tenant, body, headers, event)
    return Outcome(200, {"status": "queued", "tenants": len(tenants)})


def _accept(tenant: Tenant, body: bytes, headers: dict, event: WebhookEvent) -> Outcome:
    """Store a valid event for ``tenant``; the first copy of it queues the re-sync."""
    fields = dict(
        tenant=tenant,
        received_at=timezone.now(),
        body=body,
        headers=headers,
        valid=True,
        response_status=200,
        topic=event.topic,
        action=event.action,
        key=event.key,
        division=event.division,
        event_created_on=event.event_created_on,
    )
    try:
        with transaction.atomic():
            delivery = ExactWebhookDelivery.objects.create(event_key=event.dedup_key, **fields)
    except IntegrityError:  # unique (tenant, event_key): Exact delivered this event before
        ExactWebhookDelivery.objects.create(duplicate=True, **fields)
        return Outcome(200, {"status": "duplicate"})

    def send() -> None:
        task_id = queue.enqueue("exact.tasks.exact_webhook_resync_task", delivery.pk)
        ExactWebhookDelivery.objects.filter(pk=delivery.pk).update(
            queued_task=str(task_id or "")[:64]
        )

    transaction.on_commit(send)
    return Outcome(200, {"status": "queued"})


def _refuse(
    tenant: Tenant | None,
    body: bytes,
    headers: dict,
    status: int,
    error: str,
    *,
    valid: bool = False,
    event: WebhookEvent | None = None,
) -> Outcome:
    logger.info("exact webhook refused (%s): %s", status, error)
    ExactWebhookDelivery.objects.create(
        tenant=tenant,
        received_at=timezone.now(),
        body=body,
        headers=headers,
        valid=valid,
        response_status=status,
        error=error,
        topic=event.topic if event else "",
        action=event.action if event else "",
        key=event.key if event else "",
        division=event.division if event else None,
        event_created_on=event.event_created_on if event else "",
    )
    return Outcome(status, {"error": error})


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
