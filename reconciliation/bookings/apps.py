from django.apps import AppConfig


class BookingsConfig(AppConfig):
    # A Django app of its own (inside reconciliation/) so its models and migrations evolve
    # apart from the collection engine; see docs/decisions.md.
    name = "reconciliation.bookings"
    label = "bookings"
    verbose_name = "Bookings and reconciliation report"
    default_auto_field = "django.db.models.BigAutoField"
