from django.apps import AppConfig


class ConfigAppConfig(AppConfig):
    """Project-wide system checks (config/checks.py) and the one signal wiring
    (config/wiring.py)."""

    name = "config"
    label = "config"
    verbose_name = "Configuration"

    def ready(self) -> None:
        from config import checks  # noqa: F401  (registers the checks)
        from config.wiring import wiring_connect  # imports every app: after all models load

        wiring_connect()
