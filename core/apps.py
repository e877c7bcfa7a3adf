from django.apps import AppConfig


class CoreConfig(AppConfig):
    """The ground floor: audit trail, money, scheme calendars, encrypted fields.

    Imports no other project app (foreign keys by string), so every app may import it."""

    name = "core"
    verbose_name = "Audit trail"
    default_auto_field = "django.db.models.BigAutoField"
