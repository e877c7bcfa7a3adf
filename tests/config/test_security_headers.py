"""Content-Security-Policy (django-csp) and login throttling (django-axes)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.urls import reverse

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _policy(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    return {
        part.split()[0]: part.split()[1:]
        for part in (p.strip() for p in header.split(";"))
        if part
    }


def test_admin_pages_carry_a_strict_policy(client, superuser):
    client.force_login(superuser)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    policy = _policy(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no inline code, no eval
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]


def test_the_login_page_has_it_too(client):
    response = client.get(reverse("admin:login"))
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_forms_may_only_lead_to_the_oauth_consent_pages_we_know():
    """A Connect button posts to us and is redirected to the provider's consent page; the
    browser checks that redirect against form-action. The list must hold exactly the hosts of
    the Exact region table and GoCardless' connect URLs, nothing a tenant could choose."""
    from exact.models import REGION_HOSTS
    from gocardless.connect import CONNECT_URLS

    known = set(REGION_HOSTS.values()) | set(CONNECT_URLS.values())
    assert set(settings.OAUTH_FORM_TARGETS) == known
    form_action = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"]
    assert set(form_action) - {"'self'"} == known  # DEBUG is off in tests: no loopback


def _login(client, username, password):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR="203.0.113.7",
    )


def test_wrong_passwords_lock_the_account_even_for_the_right_one(client):
    user = UserFactory(username="clerk", is_staff=True)
    user.set_password("the-right-password-42")
    user.save()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "clerk", "wrong").status_code == 200  # the form again
    assert _login(client, "clerk", "wrong").status_code == 429  # the limit-th locks
    response = _login(client, "clerk", "the-right-password-42")
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_another_address_cannot_unlock_a_username(client):
    user = UserFactory(username="clerk2", is_staff=True)
    user.set_password("the-right-password-42")
    user.save()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, "clerk2", "wrong")
    response = client.post(
        reverse("admin:login"),
        {"username": "clerk2", "password": "the-right-password-42", "next": "/admin/"},
        REMOTE_ADDR="198.51.100.9",
    )
    assert response.status_code == 429


def test_a_right_password_before_the_limit_logs_in(client):
    user = UserFactory(username="clerk3", is_staff=True)
    user.set_password("the-right-password-42")
    user.save()
    _login(client, "clerk3", "wrong")
    response = _login(client, "clerk3", "the-right-password-42")
    assert response.status_code == 302 and client.session["_auth_user_id"] == str(user.pk)


@pytest.mark.parametrize(
    ("proxies", "forwarded", "remote", "expected"),
    [
        (0, "1.1.1.1", "10.0.0.2", "10.0.0.2"),
        (1, "6.6.6.6, 203.0.113.5", "10.0.0.2", "203.0.113.5"),  # left part is the client's
        (2, "6.6.6.6, 203.0.113.5, 10.0.0.9", "10.0.0.2", "203.0.113.5"),
        (1, "", "10.0.0.2", "10.0.0.2"),
    ],
)
def test_client_address_ignores_what_the_client_forged(rf, settings, proxies, forwarded,
                                                        remote, expected):
    from core.http import client_address

    settings.TRUSTED_PROXY_COUNT = proxies
    request = rf.get("/", HTTP_X_FORWARDED_FOR=forwarded, REMOTE_ADDR=remote)
    assert client_address(request) == expected
