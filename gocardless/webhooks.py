"""Webhook intake: verify, store the delivery, store each event once, queue processing.

Order matters (API notes §2.2, §2.3, §2.5):
1. The HMAC-SHA256 of the raw body bytes is checked against ``Webhook-Signature`` BEFORE
   anything parses the body. Lower-case hex only, ``hmac.compare_digest``, and any exception
   during verification counts as invalid. Invalid → 498, the delivery is stored (valid=False)
   and nothing else happens: a 2xx would tell GoCardless a forged/mis-keyed webhook was
   delivered and it would never retry the genuine one.
2. Valid but not the documented JSON shape → 400, stored.
3. Valid: the delivery, its events (deduplicated per tenant by event id) and the queueing of
   processing are one transaction; processing runs after commit, so the answer (204) comes in
   milliseconds. Unknown event types are stored and answered 204 like any other.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from gocardless.events_store import MalformedEvent, event_fields, events_queue, events_store
from gocardless.models import EventSource, GoCardlessConnection, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "HTTP_WEBHOOK_SIGNATURE"
# Request headers we never keep (not sent by GoCardless; would only ever hold secrets).
DROPPED_HEADERS = {"HTTP_COOKIE", "HTTP_AUTHORIZATION", "HTTP_PROXY_AUTHORIZATION"}

TOKEN_INVALID = 498


@dataclass
class Outcome:
    status: int
    delivery: WebhookDelivery
    queued: int = 0


def signature_valid(*, body: bytes, secret: str | None, signature) -> bool:
    try:
        if not secret or not signature:
            return False
        expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)
    except Exception:  # non-ASCII header, wrong type...: never a valid signature
        return False


def request_headers(meta: dict) -> dict:
    kept = {}
    for key, value in meta.items():
        if key in DROPPED_HEADERS:
            continue
        if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            kept[key] = str(value)[:1000]
    return kept


def body_too_large(meta: dict) -> bool:
    try:
        return int(meta.get("CONTENT_LENGTH") or 0) > settings.WEBHOOK_MAX_BODY_BYTES
    except (TypeError, ValueError):
        return True


def delivery_refuse(
    *, status: int, meta: dict, error: str, tenant=None, body: bytes = b"",
    endpoint: str = WebhookEndpoint.TENANT,
) -> Outcome:
    delivery = WebhookDelivery.objects.create(
        tenant=tenant,
        endpoint=endpoint,
        body=body,
        headers=request_headers(meta),
        valid=False,
        response_status=status,
        error=error,
    )
    return Outcome(status, delivery)


def _parse(body: bytes) -> list[dict]:
    """The events of a verified body; raises ValueError for anything but the documented shape."""
    payload = json.loads(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise ValueError('body is not {"events": [...]}')
    for event in payload["events"]:
        event_fields(event)  # raises MalformedEvent (a ValueError)
    return payload["events"]


def _verified(*, body: bytes, meta: dict, secret, tenant, endpoint) -> list[dict] | Outcome:
    if not signature_valid(body=body, secret=secret, signature=meta.get(SIGNATURE_HEADER)):
        return delivery_refuse(
            status=TOKEN_INVALID, meta=meta, body=body, tenant=tenant, endpoint=endpoint,
            error="missing or invalid Webhook-Signature",
        )
    try:
        return _parse(body)
    except (ValueError, MalformedEvent) as exc:
        delivery = WebhookDelivery.objects.create(
            tenant=tenant, endpoint=endpoint, body=body, headers=request_headers(meta),
            valid=True, response_status=400, error=f"malformed: {exc}"[:500],
        )
        return Outcome(400, delivery)


def delivery_receive(*, connection: GoCardlessConnection, body: bytes, meta: dict) -> Outcome:
    """A POST to the tenant's own endpoint, verified with the tenant's webhook secret."""
    tenant = connection.tenant
    result = _verified(
        body=body, meta=meta, secret=connection.webhook_secret, tenant=tenant,
        endpoint=WebhookEndpoint.TENANT,
    )
    if isinstance(result, Outcome):
        return result
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            tenant=tenant, endpoint=WebhookEndpoint.TENANT, body=body,
            headers=request_headers(meta), valid=True, response_status=204,
            event_count=len(result),
        )
        pks = events_store(
            tenant=tenant, events=result, source=EventSource.WEBHOOK, delivery=delivery
        )
        events_queue(event_pks=pks)
    return Outcome(204, delivery, len(pks))


def delivery_receive_partner(*, body: bytes, meta: dict) -> Outcome:
    """A POST to the partner app's endpoint: route each event by ``links.organisation``."""
    result = _verified(
        body=body, meta=meta, secret=settings.GOCARDLESS_WEBHOOK_SECRET, tenant=None,
        endpoint=WebhookEndpoint.PARTNER,
    )
    if isinstance(result, Outcome):
        return result
    by_org: dict[str, list[dict]] = {}
    for event in result:
        org = (event.get("links") or {}).get("organisation") or ""
        by_org.setdefault(str(org), []).append(event)
    connections = {
        c.organisation_id: c
        for c in GoCardlessConnection.objects.select_related("tenant").filter(
            organisation_id__in=[o for o in by_org if o], tenant__is_active=True
        )
    }
    unrouted = [e["id"] for org, evs in by_org.items() if org not in connections for e in evs]
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            tenant=None, endpoint=WebhookEndpoint.PARTNER, body=body,
            headers=request_headers(meta), valid=True, response_status=204,
            event_count=len(result), unrouted_count=len(unrouted),
        )
        pks: list[int] = []
        for org, events in by_org.items():
            if org in connections:
                pks += events_store(
                    tenant=connections[org].tenant, events=events,
                    source=EventSource.WEBHOOK, delivery=delivery,
                )
        events_queue(event_pks=pks)
    if unrouted:
        # Stored in the delivery body; not processed: no tenant owns that organisation.
        logger.warning(
            "gocardless partner webhook %s: %d event(s) for unknown organisations: %s",
            delivery.pk, len(unrouted), ", ".join(unrouted[:20]),
        )
    return Outcome(204, delivery, len(pks))
