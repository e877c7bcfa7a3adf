"""Read-only queries other parts (admin, health, reconciliation) use."""

from django.db.models import QuerySet

from gocardless.models import GoCardlessEvent


def events_unprocessed(*, tenant=None) -> QuerySet[GoCardlessEvent]:
    qs = GoCardlessEvent.objects.filter(processed_at__isnull=True)
    return qs.filter(tenant=tenant) if tenant is not None else qs


def events_failed(*, tenant=None) -> QuerySet[GoCardlessEvent]:
    return events_unprocessed(tenant=tenant).filter(failed_at__isnull=False)
