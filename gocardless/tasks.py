"""django-q2 tasks: thin wrappers around the services (pass pks, never objects)."""

from gocardless.event_processing import events_process
from gocardless.events_sweep import events_retry_due
from gocardless.polling import events_poll_all
from gocardless.retention import deliveries_prune


def events_process_task(event_pks: list[int]) -> dict:
    return events_process(event_pks=event_pks)


def events_sweep_task() -> dict:
    return events_retry_due()


def events_poll_task() -> dict:
    return {str(k): v for k, v in events_poll_all().items()}


def deliveries_prune_task() -> dict:
    return deliveries_prune()
