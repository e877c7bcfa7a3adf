from django.apps import AppConfig
from django.core import checks


class GoCardlessConfig(AppConfig):
    name = "gocardless"
    verbose_name = "GoCardless"

    def ready(self) -> None:
        from gocardless.checks import (
            check_custom_base_url_connections,
            check_custom_base_url_setting,
        )

        checks.register(check_custom_base_url_setting)
        checks.register(check_custom_base_url_connections)
