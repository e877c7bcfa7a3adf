"""System checks of the Exact integration (registered by exact/apps.py).

- mlc.E011: EXACT_ALLOW_CUSTOM_BASE_URL on with DEBUG off. A custom base URL decides where
  the app's client secret and every company's tokens are sent; it exists for the local
  simulators only.
- mlc.W012: connections stored with region "custom" while custom hosts are not allowed: they
  send nothing (their jobs stop) until someone picks their Exact region and reconnects.
"""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.db import DatabaseError


@register()
def check_custom_base_url_setting(app_configs, **kwargs):
    if settings.DEBUG or not getattr(settings, "EXACT_ALLOW_CUSTOM_BASE_URL", False):
        return []
    return [
        Error(
            "EXACT_ALLOW_CUSTOM_BASE_URL is on while DEBUG is off.",
            hint="A custom Exact base URL decides where the app's client secret and the "
            "companies' tokens are sent; it is for the local simulators only. Unset "
            "EXACT_ALLOW_CUSTOM_BASE_URL in production.",
            id="mlc.E011",
        )
    ]


@register()
def check_custom_region_connections(app_configs, **kwargs):
    from django.apps import apps

    from exact.models import custom_base_url_allowed

    if custom_base_url_allowed():
        return []
    connection_model = apps.get_model("exact", "ExactConnection")
    try:
        stuck = list(
            connection_model.objects.filter(region="custom")
            .exclude(status="disconnected")
            .values_list("tenant__slug", flat=True)
        )
    except DatabaseError:  # before the first migrate
        return []
    if not stuck:
        return []
    return [
        Warning(
            f"Exact Online connections with a custom base URL: {', '.join(sorted(stuck))}.",
            hint="Custom base URLs are not allowed on this installation, so these "
            "connections send nothing. Set each company's Exact region and reconnect.",
            id="mlc.W012",
        )
    ]
