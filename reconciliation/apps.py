from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    """Holds no models since the audit trail moved to core/ and customers to their own app.

    Installed only so that its migrations stay in the history of every database: they
    created the tables (``reconciliation_auditentry``, ``reconciliation_customerlink``, ...)
    that ``core`` and ``customers`` now own under the same names (migration 0004 hands
    them over)."""

    name = "reconciliation"
    verbose_name = "Reconciliation (migration history)"
