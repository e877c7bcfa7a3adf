"""System checks of the GoCardless app (registered in apps.py): configuration that would send
tenants' access tokens somewhere other than GoCardless."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning
from django.db import DatabaseError

from gocardless.conf import custom_base_url_allowed


def check_custom_base_url_setting(app_configs, **kwargs):
    """mlc.E010: a custom API base URL is for the local simulators. With it allowed, a
    superuser's typo (or a stolen superuser session) sends a tenant's access token to any
    host; production must not allow it."""
    if settings.DEBUG or not custom_base_url_allowed():
        return []
    return [
        Error(
            "GOCARDLESS_ALLOW_CUSTOM_BASE_URL is on with DEBUG off.",
            hint="A custom GoCardless base URL is for the local simulators: access tokens are "
            "sent to it. Unset GOCARDLESS_ALLOW_CUSTOM_BASE_URL (it defaults to DEBUG).",
            id="mlc.E010",
        )
    ]


def check_custom_base_url_connections(app_configs, **kwargs):
    """mlc.W010: connections saved with a custom base URL (before it was restricted, or while
    it was allowed): their calls are refused (gocardless.client) until a superuser changes
    them, so their tenants collect nothing meanwhile."""
    if custom_base_url_allowed():
        return []
    from gocardless.models import Environment, GoCardlessConnection

    try:
        slugs = sorted(
            GoCardlessConnection.objects.filter(environment=Environment.CUSTOM)
            .values_list("tenant__slug", flat=True)
        )
    except DatabaseError:
        return []  # before migrate
    if not slugs:
        return []
    return [
        Warning(
            f"GoCardless connections with a custom base URL: {', '.join(slugs)}.",
            hint="This installation does not allow custom base URLs: these connections send "
            "nothing (every call is refused before it leaves) and wait for a person. A "
            "superuser sets their environment to live or sandbox (then connects again).",
            id="mlc.W010",
        )
    ]
