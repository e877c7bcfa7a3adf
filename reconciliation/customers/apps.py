from django.apps import AppConfig


class CustomersConfig(AppConfig):
    # One Django app per business area, like collection and bookings (docs/decisions.md).
    name = "reconciliation.customers"
    label = "customers"
    verbose_name = "Customers and mandates"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Subscribes to GoCardless domain signals and to Exact sync runs.
        from reconciliation.customers import receivers

        receivers.connect()
