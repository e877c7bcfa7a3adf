"""Facts about an HTTP request that several apps need the same way."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import requests
from django.conf import settings


def client_address(request) -> str:
    """The client's IP address as our own outermost proxy saw it.

    With ``TRUSTED_PROXY_COUNT`` = n proxies in front of us, each appends the address it
    received from to X-Forwarded-For, so the n-th value from the right is the client as seen
    by the first proxy we run; anything left of it was written by the client and can be
    forged. Without proxies it is REMOTE_ADDR. Used for login throttling and the webhook
    delivery log, where a forgeable address would let an attacker dodge a lock or frame
    another address."""
    proxies = settings.TRUSTED_PROXY_COUNT
    remote = request.META.get("REMOTE_ADDR", "") or ""
    if proxies <= 0:
        return remote
    forwarded = [
        part.strip()
        for part in (request.META.get("HTTP_X_FORWARDED_FOR") or "").split(",")
        if part.strip()
    ]
    if len(forwarded) >= proxies:
        return forwarded[-proxies]
    return forwarded[0] if forwarded else remote


def csp_allow_form_target(response, url: str):
    """Let this one page's forms lead to ``url``'s origin (django-csp's per-response update).

    A Connect button posts to our view, which redirects to the provider's consent page; the
    browser checks that redirect against the *form's page* ``form-action``. The provider hosts
    of the region tables are in the policy for every page (settings.OAUTH_FORM_TARGETS); a
    custom host (the simulators, only where the installation allows custom base URLs) is
    added only to the page whose connection uses it."""
    parts = urlsplit(url or "")
    if not parts.scheme or not parts.netloc:
        return response
    update = dict(getattr(response, "_csp_update", None) or {})
    update["form-action"] = [*update.get("form-action", []), f"{parts.scheme}://{parts.netloc}"]
    response._csp_update = update
    return response


def session_environment_pin(*, session: requests.Session, url: str) -> None:
    """Read once what requests reads from the environment on every call of a session with
    ``trust_env`` on (the proxy for this URL unless ``NO_PROXY`` excludes it, a CA bundle from
    ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``) and set it on ``session``, ``trust_env`` off.

    For a session that only ever calls ``url``'s host. Measured: requests' scan of the
    environment on each call (``get_environ_proxies``) was about a tenth of a booking post's
    CPU; ~/.netrc is no longer consulted either, which could only have replaced our bearer
    token with a password."""
    session.trust_env = False
    session.proxies = requests.utils.get_environ_proxies(url)
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
