from django.apps import AppConfig


class SimulatorsConfig(AppConfig):
    """Only provides the ``simulate`` management command; the simulators have no models."""

    name = "simulators"
    verbose_name = "Simulators"
