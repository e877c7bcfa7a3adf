from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    name = "reconciliation"
    verbose_name = "Collections, bookings and audit"

    def ready(self):
        # Subscribes to GoCardless domain signals and to Exact sync runs (issue 5).
        from reconciliation.customers import receivers

        receivers.connect()
