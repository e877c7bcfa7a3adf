from django.apps import AppConfig


class GoCardlessConfig(AppConfig):
    name = "gocardless"
    verbose_name = "GoCardless"
