"""Every admin list and form loads in a real browser without a Content-Security-Policy
violation (the journey fixture fails on any the page reports), and answers below 500."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import NoReverseMatch, reverse

from tests.exact.factories import ExactWebhookDeliveryFactory
from tests.factories import ExactConnectionFactory, GoCardlessConnectionFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-test-password-42"


def _pages() -> list[str]:
    pages = []
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        pages.append(reverse("admin:{}_{}_changelist".format(*info)))
        try:
            pages.append(reverse("admin:{}_{}_add".format(*info)))
        except NoReverseMatch:
            pass
        first = model_admin.get_queryset(_Request()).order_by("pk").first()
        if first is not None:
            pages.append(reverse("admin:{}_{}_change".format(*info), args=[first.pk]))
    return pages


class _Request:
    """Just enough of a request for get_queryset as a superuser."""

    class user:
        is_superuser = True
        is_active = True
        is_authenticated = True
        pk = None

    GET: dict = {}


def test_every_admin_page_loads_under_the_policy(journey, superuser, tenant_a):
    superuser.is_staff = True
    superuser.set_password(PASSWORD)
    superuser.save()
    ExactConnectionFactory(tenant=tenant_a)
    GoCardlessConnectionFactory(tenant=tenant_a)
    ExactWebhookDeliveryFactory(tenant=tenant_a)
    journey.log_in("root", PASSWORD)
    pages = _pages()
    assert len(pages) > 40
    for page in pages:
        journey.open(page)  # asserts < 500; the fixture asserts no CSP violation at the end
    journey.shot("last-page")
