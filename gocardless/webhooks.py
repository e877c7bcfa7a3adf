"""Webhook intake: verify, log the delivery, store each event once, queue processing.

Order matters (API notes §2.2, §2.3, §2.5):
1. The HMAC-SHA256 of the raw body bytes is checked against ``Webhook-Signature`` BEFORE
   anything parses the body. Lower-case hex only, ``hmac.compare_digest``, and any exception
   during verification counts as invalid. Invalid → 498 and nothing else happens: a 2xx would
   tell GoCardless a forged/mis-keyed webhook was delivered and it would never retry the
   genuine one.
2. Signed but not a usable envelope (payload.py: not JSON, nested too deeply, not
   ``{"events": [...]}``) → 400. An unusable EVENT inside a usable envelope is quarantined by
   the event store; the rest of the batch goes on.
3. Valid: the delivery, its events (deduplicated per tenant by event id) and the queueing of
   processing are one transaction; processing runs after commit, so the answer (204) comes in
   milliseconds. Unknown event types are stored and answered 204 like any other.

What a refused delivery costs us is bounded, so that sending junk costs an attacker more than
it costs us: it is logged as metadata only (time, size, status, source address, SHA-256 of
the body, at most the first 4 KiB, a few headers), never its whole body; what the intake
stores per tenant per hour is capped (intake_budget.py), separately for signed and unsigned
deliveries so that the anonymous internet cannot use up the room of genuine ones; beyond the
cap the answer is 429 (GoCardless retries later) and nothing is stored. Deliveries are
deleted after GOCARDLESS_DELIVERY_RETENTION_DAYS (retention.py). A secret that cannot be
decrypted (wrong SALT_KEY/SECRET_KEY) is an installation fault: 503, logged, retried later.
So is a database that cannot be reached (restarting, connection lost): 503 + Retry-After
(``delivery_unavailable``, answered by the views for any OperationalError/InterfaceError), so
GoCardless sends the delivery again; step 3's single transaction means nothing of it was
half-stored, and the event ids make the redelivery store each event once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from core.fields import SecretDecryptionError
from gocardless.conf import gocardless_setting
from gocardless.events_store import events_queue, events_store
from gocardless.intake_budget import budget_take, current_hour
from gocardless.models import EventSource, GoCardlessConnection, WebhookDelivery, WebhookEndpoint
from gocardless.payload import ID, PayloadError, payload_events, safe_text

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "HTTP_WEBHOOK_SIGNATURE"
# Request headers we never keep (not sent by GoCardless; would only ever hold secrets).
DROPPED_HEADERS = {"HTTP_COOKIE", "HTTP_AUTHORIZATION", "HTTP_PROXY_AUTHORIZATION"}
# What a refused delivery keeps of its headers (enough to tell GoCardless from a scanner).
REFUSED_HEADERS = ("CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_USER_AGENT", "HTTP_ORIGIN",
                   SIGNATURE_HEADER)
MAX_HEADERS = 50
PREFIX_BYTES = 4096  # of a refused delivery's body
ROW_OVERHEAD = 200  # bytes a delivery row costs beyond its body, headers and error

TOKEN_INVALID = 498
TOO_MANY = 429
UNAVAILABLE = 503
# Seconds a sender is asked to wait after a database outage: a restart or a failover takes
# seconds. GoCardless retries a failed webhook on its own schedule (minutes, increasing; see
# docs/gocardless.md, "Intake during a database outage"); the header is the standard hint of a
# 503 for anything else in front of us or sending to us.
DATABASE_RETRY_AFTER = 10


@dataclass
class Outcome:
    status: int
    delivery: WebhookDelivery | None  # None: over the hourly budget, nothing stored
    queued: int = 0
    retry_after: int | None = None


def signature_valid(*, body: bytes, secret: str | None, signature) -> bool:
    try:
        if not secret or not signature:
            return False
        expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)
    except Exception:  # non-ASCII header, wrong type...: never a valid signature
        return False


def request_headers(meta: dict, *, refused: bool = False) -> dict:
    """The request headers we keep: never cookies or credentials, at most 50, each cut to
    1,000 characters (200 and only a few names for a refused delivery), NUL escaped."""
    names = REFUSED_HEADERS if refused else sorted(meta)
    limit = 200 if refused else 1000
    kept = {}
    for key in names:
        if key not in meta or key in DROPPED_HEADERS:
            continue
        if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            kept[safe_text(key, 100)] = safe_text(meta[key], limit)
            if len(kept) >= MAX_HEADERS:
                break
    return kept


def body_too_large(meta: dict) -> bool:
    try:
        length = int(meta.get("CONTENT_LENGTH") or 0)
    except (TypeError, ValueError):
        return True
    return length < 0 or length > settings.WEBHOOK_MAX_BODY_BYTES


def _claimed_size(meta: dict) -> int:
    try:
        return max(0, min(int(meta.get("CONTENT_LENGTH") or 0), 2**62))
    except (TypeError, ValueError):
        return 0


def _budget_key(*, signed: bool, tenant, endpoint: str) -> str:
    if tenant is not None:
        owner = f"tenant:{tenant.pk}"
    else:
        owner = "partner" if endpoint == WebhookEndpoint.PARTNER else "unknown-tenant"
    return f"{'signed' if signed else 'unsigned'}:{owner}"


def _budget_limit(*, signed: bool, tenant, endpoint: str) -> int:
    if not signed:
        return gocardless_setting("GOCARDLESS_UNSIGNED_DELIVERY_MAX_BYTES_PER_HOUR")
    limit = gocardless_setting("GOCARDLESS_DELIVERY_MAX_BYTES_PER_HOUR")
    if tenant is None and endpoint == WebhookEndpoint.PARTNER:
        # The partner endpoint carries the webhooks of every partner-connected tenant.
        limit *= max(1, GoCardlessConnection.objects.exclude(organisation_id="").count())
    return limit


def _row_size(row: WebhookDelivery) -> int:
    return len(row.body) + len(json.dumps(row.headers)) + len(row.error) + ROW_OVERHEAD


def _within_budget(row: WebhookDelivery, *, signed: bool) -> bool:
    tenant = row.tenant
    return budget_take(
        key=_budget_key(signed=signed, tenant=tenant, endpoint=row.endpoint),
        amount=_row_size(row),
        limit=_budget_limit(signed=signed, tenant=tenant, endpoint=row.endpoint),
    )


def _over_budget() -> Outcome:
    next_hour = (current_hour() + 1) * 3600
    return Outcome(TOO_MANY, None, retry_after=max(1, int(next_hour - time.time())))


def delivery_refuse(
    *, status: int, meta: dict, error: str, tenant=None, body: bytes | None = None,
    endpoint: str = WebhookEndpoint.TENANT, source: str = "", signed: bool = False,
) -> Outcome:
    """Log a refused delivery as metadata (``body`` None: refused before it was read) and
    answer ``status``; 429 and nothing stored when the hourly budget is used up."""
    row = WebhookDelivery(
        tenant=tenant,
        endpoint=endpoint,
        body=(body or b"")[:PREFIX_BYTES],
        body_size=len(body) if body is not None else _claimed_size(meta),
        body_sha256=hashlib.sha256(body).hexdigest() if body is not None else "",
        source_address=safe_text(source, 64),
        headers=request_headers(meta, refused=True),
        valid=signed,
        response_status=status,
        error=safe_text(error, 500),
    )
    logger.info(
        "gocardless webhook refused %s (%s): tenant %s, %d bytes from %s",
        status, row.error, getattr(tenant, "pk", "-"), row.body_size, row.source_address,
    )
    if not _within_budget(row, signed=signed):
        return _over_budget()
    row.save()
    return Outcome(status, row)


def delivery_unavailable(*, error: Exception, endpoint: str, tenant_uuid=None,
                         source: str = "") -> Outcome:
    """The database could not be reached while taking a delivery: 503 + Retry-After, so the
    sender delivers it again later. Nothing is stored (there is nowhere to store it) and the
    log line names the exception's class and its first line only: never the body, its
    signature or anything decrypted (a driver's message may quote a statement, never its
    parameters; the first line is the server's or the driver's reason)."""
    reason = (str(error).strip().splitlines() or [""])[0]
    logger.warning(
        "gocardless webhook answered 503, database unavailable, nothing stored (the sender "
        "retries): %s endpoint, tenant %s, from %s: %s: %s",
        endpoint, tenant_uuid or "-", safe_text(source, 64), type(error).__name__,
        safe_text(reason, 200),
    )
    return Outcome(UNAVAILABLE, None, retry_after=DATABASE_RETRY_AFTER)


def _verified(*, body: bytes, meta: dict, secret, tenant, endpoint, source) -> list | Outcome:
    if not signature_valid(body=body, secret=secret, signature=meta.get(SIGNATURE_HEADER)):
        return delivery_refuse(
            status=TOKEN_INVALID, meta=meta, body=body, tenant=tenant, endpoint=endpoint,
            source=source, error="missing or invalid Webhook-Signature",
        )
    try:
        return payload_events(body)
    except PayloadError as exc:
        logger.warning("gocardless webhook signed but unusable (tenant %s): %s",
                       getattr(tenant, "pk", "-"), exc)
        return delivery_refuse(
            status=400, meta=meta, body=body, tenant=tenant, endpoint=endpoint, source=source,
            error=f"malformed: {exc}", signed=True,
        )


def _stored_delivery(*, tenant, endpoint, body: bytes, meta: dict, source: str, **fields):
    return WebhookDelivery(
        tenant=tenant, endpoint=endpoint, body=body, body_size=len(body),
        body_sha256=hashlib.sha256(body).hexdigest(), source_address=safe_text(source, 64),
        headers=request_headers(meta), valid=True, response_status=204, **fields,
    )


def delivery_receive(
    *, connection: GoCardlessConnection, body: bytes, meta: dict, source: str = ""
) -> Outcome:
    """A POST to the tenant's own endpoint, verified with the tenant's webhook secret."""
    tenant = connection.tenant
    try:
        secret = connection.webhook_secret
    except (SecretDecryptionError, ImproperlyConfigured) as exc:
        logger.error(
            "gocardless webhook for tenant %s answered 503: its webhook secret cannot be "
            "decrypted (%s); check SECRET_KEY/SALT_KEY (manage.py check: mlc.E004)",
            tenant.pk, type(exc).__name__,
        )
        return delivery_refuse(status=UNAVAILABLE, meta=meta, body=body, tenant=tenant,
                               source=source, error="webhook secret cannot be decrypted")
    result = _verified(body=body, meta=meta, secret=secret, tenant=tenant,
                       endpoint=WebhookEndpoint.TENANT, source=source)
    if isinstance(result, Outcome):
        return result
    delivery = _stored_delivery(tenant=tenant, endpoint=WebhookEndpoint.TENANT, body=body,
                                meta=meta, source=source, event_count=len(result))
    if not _within_budget(delivery, signed=True):
        return _over_budget()
    with transaction.atomic():
        delivery.save()
        pks = events_store(
            tenant=tenant, events=result, source=EventSource.WEBHOOK, delivery=delivery
        )
        events_queue(event_pks=pks)
    return Outcome(204, delivery, len(pks))


def _organisation_of(event) -> str:
    links = event.get("links") if isinstance(event, dict) else None
    organisation = links.get("organisation") if isinstance(links, dict) else None
    return organisation if isinstance(organisation, str) and ID.fullmatch(organisation) else ""


def _label(event) -> str:
    event_id = event.get("id") if isinstance(event, dict) else None
    return event_id if isinstance(event_id, str) and ID.fullmatch(event_id) else "(no id)"


def delivery_receive_partner(*, body: bytes, meta: dict, source: str = "") -> Outcome:
    """A POST to the partner app's endpoint: route each event by ``links.organisation``."""
    result = _verified(
        body=body, meta=meta, secret=settings.GOCARDLESS_WEBHOOK_SECRET, tenant=None,
        endpoint=WebhookEndpoint.PARTNER, source=source,
    )
    if isinstance(result, Outcome):
        return result
    by_org: dict[str, list] = {}
    for event in result:
        by_org.setdefault(_organisation_of(event), []).append(event)
    connections = {
        c.organisation_id: c
        for c in GoCardlessConnection.objects.select_related("tenant")
        .defer("access_token", "webhook_secret")  # routing needs no secret
        .filter(organisation_id__in=[o for o in by_org if o], tenant__is_active=True)
    }
    unrouted = [_label(e) for org, evs in by_org.items() if org not in connections for e in evs]
    delivery = _stored_delivery(
        tenant=None, endpoint=WebhookEndpoint.PARTNER, body=body, meta=meta, source=source,
        event_count=len(result), unrouted_count=len(unrouted),
    )
    if not _within_budget(delivery, signed=True):
        return _over_budget()
    with transaction.atomic():
        delivery.save()
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
