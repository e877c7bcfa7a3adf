from django.apps import AppConfig


class CollectionConfig(AppConfig):
    # A Django app of its own (inside reconciliation/) so its models and migrations evolve
    # apart from the bookings app; see docs/decisions.md.
    name = "reconciliation.collection"
    label = "collection"
    verbose_name = "Collections"
    default_auto_field = "django.db.models.BigAutoField"
