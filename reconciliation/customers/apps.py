from django.apps import AppConfig


class CustomersConfig(AppConfig):
    # One Django app per business area, like collection and bookings (docs/decisions.md).
    name = "reconciliation.customers"
    label = "customers"
    verbose_name = "Customers and mandates"
    default_auto_field = "django.db.models.BigAutoField"
