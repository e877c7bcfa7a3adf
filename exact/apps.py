from django.apps import AppConfig


class ExactConfig(AppConfig):
    name = "exact"
    verbose_name = "Exact Online"
