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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from exact import queue
from exact.client import ExactClient
from exact.errors import ExactApiError, ExactNotFound
from exact.models import REGION_HOSTS, ConnectionStatus, ExactConnection, ExactWebhookDelivery
from exact.topics import TOPICS
from tenants.models import Tenant

logger = logging.getLogger(__name__)

ENVELOPE_START = b'{"Content":'
ENVELOPE_HASH = b',"HashCode":"'
ENVELOPE_END = b'"}'
REQUIRED = ("Topic", "Division", "Action", "Key")
MAX_DIVISION = 2**31 - 1  # the division column (and every Exact division code) fits
KEPT_BODY_BYTES = 4096  # what an invalid delivery keeps of its body
ROW_OVERHEAD_BYTES = 256  # a row's own cost, so empty refusals count towards the cap too
DEFAULT_RETENTION_DAYS = 30
DEFAULT_MAX_BYTES_PER_HOUR = 4 * 1024 * 1024
PRUNE_BATCH = 1000
MAX_STORED_SIZE = 2**31 - 1  # what the size column holds; a declared length may claim more


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
    """(raw Content bytes, HashCode) or WebhookMalformed. Linear in the body's length: the
    Content is everything between ``{"Content":`` and the *last* ``,"HashCode":"``."""
    body = body.strip()
    if not body.startswith(ENVELOPE_START) or not body.endswith(ENVELOPE_END):
        raise WebhookMalformed('body is not {"Content":…,"HashCode":"…"}')
    cut = body.rfind(ENVELOPE_HASH)
    if cut < len(ENVELOPE_START):
        raise WebhookMalformed('body is not {"Content":…,"HashCode":"…"}')
    hash_code = body[cut + len(ENVELOPE_HASH) : -len(ENVELOPE_END)]
    if len(hash_code) != 64 or not all(c in b"0123456789abcdefABCDEF" for c in hash_code):
        raise WebhookMalformed("HashCode is not 64 hex digits")
    return body[len(ENVELOPE_START) : cut], hash_code.decode("ascii")


def webhook_signature_valid(content: bytes, hash_code: str, *, secret: str) -> bool:
    if not secret or not hash_code:
        return False
    return hmac.compare_digest(webhook_signature(content, secret=secret), hash_code.upper())


def _text(data: dict, name: str, limit: int, *, required: bool) -> str:
    """A string field we can store anywhere (no NUL, no lone surrogate, within ``limit``)."""
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise WebhookMalformed(f"Content lacks {name}")
        return ""
    if not isinstance(value, str):
        raise WebhookMalformed(f"{name} is not a string")
    if len(value) > limit:
        raise WebhookMalformed(f"{name} is longer than {limit} characters")
    if "\x00" in value:
        raise WebhookMalformed(f"{name} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise WebhookMalformed(f"{name} is not valid text") from None
    return value


def _division(value: Any) -> int:
    # bool is an int in Python, 1e999 is a float (inf): Exact sends a plain integer.
    if value is None or value == "":
        raise WebhookMalformed("Content lacks Division")
    if isinstance(value, bool) or not isinstance(value, int):
        raise WebhookMalformed("Division is not an integer")
    if not 0 < value <= MAX_DIVISION:
        raise WebhookMalformed("Division is out of range")
    return value


def webhook_event_parse(content: bytes) -> WebhookEvent:
    """The event in a signed Content, or WebhookMalformed for anything we could not store or
    act on safely (wrong types, out-of-range numbers, NUL, unpaired surrogates, nesting too
    deep for the parser)."""
    try:
        data = json.loads(content)
    except (ValueError, RecursionError) as exc:
        raise WebhookMalformed(f"Content is not JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise WebhookMalformed("Content is not an object")
    return WebhookEvent(
        topic=_text(data, "Topic", 64, required=True),
        division=_division(data.get("Division")),
        action=_text(data, "Action", 32, required=True),
        key=_text(data, "Key", 64, required=True),
        event_created_on=_text(data, "EventCreatedOn", 40, required=False),
        endpoint=_text(data, "ExactOnlineEndpoint", 2000, required=False),
    )


# --- receiving ----------------------------------------------------------------------------
KEPT_HEADERS = ("Content-Type", "Content-Length", "User-Agent", "X-Forwarded-For")
HEADER_VALUE_MAX = 256
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _storable(value: Any, limit: int) -> str:
    """Text for a log column: control characters dropped, surrogates replaced, cut short."""
    text = _UNSTORABLE.sub("", str(value))[:limit]
    return text.encode("utf-8", errors="replace").decode("utf-8")


@dataclass(frozen=True)
class Outcome:
    """The answer to one delivery: HTTP status and JSON body (None: an empty 200)."""

    status: int
    payload: dict | None = None


@dataclass(frozen=True)
class Received:
    """What we know about a delivery before reading its meaning."""

    headers: dict
    source_address: str
    size: int = 0
    body: bytes = b""

    def metadata(self, *, whole_body: bool) -> dict:
        """The columns a delivery row stores about its body: all of it only for a signed
        event, otherwise its size, sha256 and at most the first KEPT_BODY_BYTES."""
        kept = self.body if whole_body else self.body[:KEPT_BODY_BYTES]
        return {
            "body": kept,
            "size": self.size,
            "body_sha256": hashlib.sha256(self.body).hexdigest() if self.body else "",
            "body_truncated": len(kept) < self.size,
            "source_address": self.source_address,
            "headers": self.headers,
        }


def _stored_bytes(fields: dict) -> int:
    return (
        len(fields["body"])
        + len(json.dumps(fields["headers"]))
        + len(fields.get("error", "").encode())
        + ROW_OVERHEAD_BYTES
    )


def delivery_receive(
    *,
    tenant_uuid: uuid.UUID | None,
    body_stream: Any,
    content_length: str | None,
    headers: Mapping[str, str],
    source_address: str = "",
) -> Outcome:
    """One POST to ``/webhooks/exact/<tenant uuid>/`` or, with ``tenant_uuid=None``, to the
    app-wide ``/webhooks/exact/``. Call outside a transaction: every stored row must survive.

    Order of checks: declared or actual body over WEBHOOK_MAX_BODY_BYTES → 413 (never more
    than the limit + 1 bytes are read from ``body_stream``); empty body → 200 and nothing else
    (Exact's validation POST); unknown/inactive tenant → 404; not ``{"Content":…,"HashCode":…}``
    → 400; wrong HashCode → 401; Content not a storable event → 400; division not the
    tenant's → 403. The app-wide endpoint routes a signed event to the one company holding
    its division (404 none, 409 ambiguous). A valid event is deduplicated per tenant and
    queues ``exact.tasks.exact_webhook_resync_task`` after commit.

    Every delivery but the validation POST is logged and stored — a signed, new event whole;
    anything else as metadata (size, sha256, the first 4 KiB). Beyond
    EXACT_DELIVERY_MAX_BYTES_PER_HOUR stored for one company (or for no company) within the
    last hour, anything but a new signed event is answered 429 and not stored."""
    received = Received(
        headers={
            name: _storable(headers[name], HEADER_VALUE_MAX)
            for name in KEPT_HEADERS
            if name in headers
        },
        source_address=_storable(source_address or "", 64),
    )
    app_wide = tenant_uuid is None
    tenant = None if app_wide else Tenant.objects.filter(uuid=tenant_uuid, is_active=True).first()
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(content_length or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        received = replace(received, size=min(declared, MAX_STORED_SIZE))  # a 32-bit column
        return _refuse(tenant, received, 413, f"body of {declared} bytes refused", keep=False)
    body = body_stream.read(limit + 1)  # never more than the limit into memory
    received = replace(received, size=len(body), body=body)
    if len(body) > limit:
        return _refuse(tenant, received, 413, "body over the limit refused", keep=False)
    if not body.strip():
        return Outcome(200)  # Exact's validation POST: answer, do nothing else
    if tenant is None and not app_wide:
        return _refuse(None, received, 404, "unknown tenant")
    try:
        content, hash_code = webhook_split(body)
    except WebhookMalformed as exc:
        return _refuse(tenant, received, 400, str(exc))
    if not webhook_signature_valid(content, hash_code, secret=webhook_secret()):
        return _refuse(tenant, received, 401, "invalid HashCode")
    try:
        event = webhook_event_parse(content)
    except WebhookMalformed as exc:
        return _refuse(tenant, received, 400, str(exc), valid=True)
    if app_wide:
        return _route_by_division(received, event)
    connection = ExactConnection.objects.filter(tenant=tenant).first()
    if connection is None or connection.division != event.division:
        return _refuse(
            tenant, received, 403, "division is not this tenant's", valid=True, event=event
        )
    return _accept(tenant, received, event)


def _event_region(event: WebhookEvent) -> str | None:
    """The region whose host the (signed) event names, if it is one of the region table's."""
    host = urlsplit(event.endpoint).netloc.lower() if event.endpoint else ""
    for region, base in REGION_HOSTS.items():
        if urlsplit(base).netloc == host:
            return region
    return None


def _route_by_division(received: Received, event: WebhookEvent) -> Outcome:
    """The one company whose connection holds the event's division (one per region, by the
    database constraint; the endpoint's host picks the region when several regions use the
    same division number)."""
    holders = (
        ExactConnection.objects.select_related("tenant")
        .filter(division=event.division)
        .exclude(status=ConnectionStatus.DISCONNECTED)
    )
    region = _event_region(event)
    if region is not None and holders.filter(region=region).exists():
        holders = holders.filter(region=region)
    found = list(holders.order_by("tenant_id")[:2])
    if not found or not found[0].tenant.is_active:
        return _refuse(
            None,
            received,
            404,
            f"no company is connected to division {event.division}",
            valid=True,
            event=event,
        )
    if len(found) > 1:
        return _refuse(
            None,
            received,
            409,
            f"division {event.division} is connected in several regions and the event names "
            "none of them",
            valid=True,
            event=event,
        )
    return _accept(found[0].tenant, received, event)


def _over_hourly_cap(tenant: Tenant | None, extra: int) -> bool:
    cap = getattr(settings, "EXACT_DELIVERY_MAX_BYTES_PER_HOUR", DEFAULT_MAX_BYTES_PER_HOUR)
    since = timezone.now() - timedelta(hours=1)
    stored = (
        ExactWebhookDelivery.objects.filter(tenant=tenant, received_at__gte=since).aggregate(
            total=Sum("stored_bytes")
        )["total"]
        or 0
    )
    return stored + extra > cap


def _store(tenant: Tenant | None, fields: dict, *, capped: bool) -> ExactWebhookDelivery | None:
    """Insert one row; None (and a log line) when ``capped`` and over the hourly cap."""
    fields["stored_bytes"] = _stored_bytes(fields)
    if capped and _over_hourly_cap(tenant, fields["stored_bytes"]):
        logger.warning(
            "exact webhook: hourly storage cap reached for %s; delivery from %s refused (%s)",
            f"tenant {tenant.pk}" if tenant else "deliveries without a tenant",
            fields.get("source_address") or "?",
            fields.get("error") or fields.get("response_status"),
        )
        return None
    return ExactWebhookDelivery.objects.create(tenant=tenant, **fields)


TOO_MANY = Outcome(429, {"error": "too many deliveries stored for this endpoint; try later"})


def _accept(tenant: Tenant, received: Received, event: WebhookEvent) -> Outcome:
    """Store a valid event for ``tenant``; the first copy of it queues the re-sync. A new
    signed event is never refused by the cap (only Exact can make one); a redelivery is
    kept as metadata and counts towards it."""
    fields = dict(
        received_at=timezone.now(),
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
            delivery = _store(
                tenant,
                {**fields, **received.metadata(whole_body=True), "event_key": event.dedup_key},
                capped=False,
            )
    except IntegrityError:  # unique (tenant, event_key): Exact delivered this event before
        stored = _store(
            tenant,
            {**fields, **received.metadata(whole_body=False), "duplicate": True},
            capped=True,
        )
        return Outcome(200, {"status": "duplicate"}) if stored else TOO_MANY

    def send() -> None:
        task_id = queue.enqueue("exact.tasks.exact_webhook_resync_task", delivery.pk)
        ExactWebhookDelivery.objects.filter(pk=delivery.pk).update(
            queued_task=str(task_id or "")[:64]
        )

    transaction.on_commit(send)
    return Outcome(200, {"status": "queued"})


def _refuse(
    tenant: Tenant | None,
    received: Received,
    status: int,
    error: str,
    *,
    valid: bool = False,
    event: WebhookEvent | None = None,
    keep: bool = True,
) -> Outcome:
    logger.info(
        "exact webhook refused (%s) from %s: %s", status, received.source_address or "?", error
    )
    metadata = received.metadata(whole_body=False)
    if not keep:  # refused unread (too large): nothing of the body is kept
        metadata["body"] = b""
        metadata["body_truncated"] = received.size > 0
    stored = _store(
        tenant,
        dict(
            received_at=timezone.now(),
            valid=valid,
            response_status=status,
            error=_storable(error, 500),
            topic=event.topic if event else "",
            action=event.action if event else "",
            key=event.key if event else "",
            division=event.division if event else None,
            event_created_on=event.event_created_on if event else "",
            **metadata,
        ),
        capped=True,
    )
    if stored is None:
        return TOO_MANY
    return Outcome(status, {"error": error})


def deliveries_prune(*, now: datetime | None = None) -> int:
    """Delete deliveries older than EXACT_DELIVERY_RETENTION_DAYS (in batches, so no long
    lock); returns how many. Once pruned, a redelivery of such an old event would be queued
    again: harmless, a re-sync only re-reads one record."""
    days = getattr(settings, "EXACT_DELIVERY_RETENTION_DAYS", DEFAULT_RETENTION_DAYS)
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted = 0
    while True:
        ids = list(
            ExactWebhookDelivery.objects.filter(received_at__lt=cutoff)
            .order_by("pk")
            .values_list("pk", flat=True)[:PRUNE_BATCH]
        )
        if not ids:
            return deleted
        deleted += ExactWebhookDelivery.objects.filter(pk__in=ids).delete()[0]


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
