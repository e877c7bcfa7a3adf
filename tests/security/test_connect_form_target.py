"""A Connect button's redirect to a custom Exact host (the simulators, where the installation
allows custom base URLs) is allowed by the Content-Security-Policy of the page that holds the
button, and only of that page: found by the onboarding journey, where Chromium refused the
redirect and the button did nothing."""

from __future__ import annotations

import pytest
from django.urls import reverse

from exact.models import Region
from tests.factories import ExactConnectionFactory

pytestmark = pytest.mark.django_db

CUSTOM = "http://127.0.0.1:8765"


def _form_action(response) -> list[str]:
    policy = response["Content-Security-Policy"]
    directive = next(d for d in policy.split(";") if d.strip().startswith("form-action"))
    return directive.split()[1:]


@pytest.mark.parametrize("page", ["company", "connection"])
def test_the_custom_host_is_a_form_target_of_its_own_pages_only(
    client, settings, superuser, tenant_a, tenant_b, page
):
    settings.EXACT_ALLOW_CUSTOM_BASE_URL = True
    custom = ExactConnectionFactory(tenant=tenant_a, region=Region.CUSTOM, custom_base_url=CUSTOM)
    other = ExactConnectionFactory(tenant=tenant_b)
    client.force_login(superuser)

    def url(connection):
        if page == "company":
            return reverse("admin:tenants_tenant_change", args=[connection.tenant_id])
        return reverse("admin:exact_exactconnection_change", args=[connection.pk])

    assert CUSTOM in _form_action(client.get(url(custom)))
    assert CUSTOM not in _form_action(client.get(url(other)))
    assert CUSTOM not in _form_action(client.get(reverse("admin:index")))


def test_not_where_custom_hosts_are_not_allowed(client, settings, superuser, tenant_a):
    settings.EXACT_ALLOW_CUSTOM_BASE_URL = True
    connection = ExactConnectionFactory(tenant=tenant_a, region=Region.CUSTOM,
                                        custom_base_url=CUSTOM)
    settings.EXACT_ALLOW_CUSTOM_BASE_URL = False
    client.force_login(superuser)
    response = client.get(reverse("admin:tenants_tenant_change", args=[connection.tenant_id]))
    assert response.status_code == 200
    assert CUSTOM not in _form_action(response)
