from django.apps import AppConfig


class ExactConfig(AppConfig):
    name = "exact"
    verbose_name = "Exact Online"

    def ready(self) -> None:
        from exact import checks  # noqa: F401  (registers the system checks)
