"""The GoCardless settings this app added after config/settings.py was written, with their
defaults in one place.

Read through ``gocardless_setting(name)`` so that an installation whose settings module does
not (yet) define one still gets the documented default; config/settings.py may define each
from the environment (docs/gocardless.md, "Settings").
"""

from __future__ import annotations

from django.conf import settings

MIB = 1024 * 1024

DEFAULTS = {
    # Whether a connection may use a custom API base URL (environment "custom": the local
    # simulators). None means "as DEBUG". An access token is sent to that URL, so outside
    # DEBUG it is refused by a system check (mlc.E010).
    "GOCARDLESS_ALLOW_CUSTOM_BASE_URL": None,
    # Webhook deliveries (the intake log) older than this are deleted by the retention job.
    "GOCARDLESS_DELIVERY_RETENTION_DAYS": 30,
    # Bytes of SIGNED deliveries stored per tenant (or per partner-connected tenant on the
    # partner endpoint) per clock hour; beyond, 429 and GoCardless retries later.
    "GOCARDLESS_DELIVERY_MAX_BYTES_PER_HOUR": 64 * MIB,
    # Bytes of UNSIGNED/invalid deliveries (metadata and at most 4 KiB of body each) stored
    # per tenant endpoint (and for the partner endpoint, and for unknown tenants) per hour.
    # Separate from the signed budget: the anonymous internet cannot use up the room that
    # GoCardless's genuine deliveries need.
    "GOCARDLESS_UNSIGNED_DELIVERY_MAX_BYTES_PER_HOUR": 4 * MIB,
}


def gocardless_setting(name: str):
    value = getattr(settings, name, DEFAULTS[name])
    if name == "GOCARDLESS_ALLOW_CUSTOM_BASE_URL" and value is None:
        return bool(settings.DEBUG)
    return value


def custom_base_url_allowed() -> bool:
    return bool(gocardless_setting("GOCARDLESS_ALLOW_CUSTOM_BASE_URL"))
