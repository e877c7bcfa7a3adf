"""The sweeper: events whose processing failed (backoff passed) or whose task was lost go
through the processor again; events that gave up are e-mailed to the tenant's administrators.

``gocardless_sweep`` runs it; ``gocardless_schedules`` schedules it every minute.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from core.display import counted
from gocardless.event_processing import events_process
from gocardless.models import GoCardlessEvent
from tenants.activity import of_active_tenants
from tenants.alerts import (
    ALERT_LOOKBACK,
    ALERT_REPEAT_AFTER,
    admin_url,
    alert_new_objects_by_tenant,
)

logger = logging.getLogger(__name__)


def events_retry_due(*, now=None, limit: int = 500, client_factory=None) -> dict[str, int]:
    """The sweeper: failed events whose backoff has passed, and events the queue lost."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.GOCARDLESS_EVENT_STALE_SECONDS)
    due = (
        of_active_tenants(GoCardlessEvent.objects.filter(processed_at__isnull=True))
        .filter(
            Q(next_attempt_at__lte=now)
            | Q(failed_at__isnull=True, received_at__lte=stale)
        )
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    counts = events_process(event_pks=list(due), client_factory=client_factory)
    try:
        events_gave_up_alert(now=now)
    except Exception:  # the alert is retried by the next sweep; processing went through
        logger.exception("gocardless: alerting about events that gave up failed")
    return counts


def events_gave_up_alert(*, now=None) -> int:
    """E-mail each active tenant's administrators the events that gave up after
    ``GOCARDLESS_EVENT_MAX_ATTEMPTS`` and were not e-mailed yet (tenants/alerts.py): at most
    one e-mail per tenant per ``ALERT_REPEAT_AFTER``, each event listed once. The sweeper
    calls it, so events that gave up in webhook-queued processing are covered too."""
    now = now or timezone.now()
    gave_up = of_active_tenants(
        GoCardlessEvent.objects.filter(
            processed_at__isnull=True,
            next_attempt_at__isnull=True,
            failed_at__gte=now - ALERT_LOOKBACK,
            attempts__gte=settings.GOCARDLESS_EVENT_MAX_ATTEMPTS,
        )
    )
    return alert_new_objects_by_tenant(
        candidates=gave_up
        .defer("raw", "links", "details")
        .order_by("-failed_at", "-pk"),
        subject=lambda n: f"{counted(n, 'GoCardless event')} could not be processed",
        what=(
            f"ml-connector gave up processing these GoCardless events after "
            f"{settings.GOCARDLESS_EVENT_MAX_ATTEMPTS} attempts. Until they are processed, "
            "what ml-connector knows about these payments, mandates or payouts may be out "
            "of date (for example a payment that failed or was paid out), and the collection "
            "attempts and bookings that depend on them are not updated:"
        ),
        line=lambda e: (
            f"{e.event_id}: {e.resource_type}.{e.action} {e.resource_id} — {e.error[:200]}"
        ),
        todo=(
            "check the error of each event (a GoCardless connection that needs "
            "reconnecting is e-mailed separately); once the cause is fixed, select the "
            'events in the admin list below and run "Reprocess selected events".'
        ),
        link=admin_url(
            "admin:gocardless_gocardlessevent_changelist", query="processing=failed"
        ),
        quiet_since=now - ALERT_REPEAT_AFTER,
        kind="gocardlessevent.gave_up",
    )
