"""People are added to a company by username or e-mail, and only people a tenant
administrator may already know: nobody's name leaks from another company (issue 14)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tenants.admin_forms import NOT_FOUND
from tenants.models import Membership, Role, Tenant
from tests.conftest import _member
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ADD = "admin:tenants_membership_add"


@pytest.fixture
def people(tenant_a, tenant_b, admin_of_a):
    """Alice administers A; Carol is in A; Bob is only in B; Dave belongs to no company."""
    carol = _member(tenant_a, Role.VIEWER, "carol-in-a")
    bob = _member(tenant_b, Role.ADMIN, "bob-only-in-b")
    bob.email = "bob@bravo.example"
    bob.save()
    dave = UserFactory(username="dave-nowhere", email="dave@nowhere.example")
    return {"alice": admin_of_a, "carol": carol, "bob": bob, "dave": dave}


def _add(client, *, person, tenant, role=Role.OPERATOR):
    return client.post(reverse(ADD), {"person": person, "tenant": tenant.pk, "role": role})


def test_the_add_page_lists_nobody(client, people, tenant_a):
    client.force_login(people["alice"])
    page = client.get(reverse(ADD)).content.decode()
    for someone in ("bob-only-in-b", "dave-nowhere", "carol-in-a"):
        assert someone not in page
    assert 'name="person"' in page and 'name="user"' not in page


def test_a_tenant_admin_cannot_add_or_discover_people_of_other_companies(
    client, people, tenant_a
):
    client.force_login(people["alice"])
    answers = []
    for name in ("bob-only-in-b", "bob@bravo.example", "dave-nowhere", "no-such-user"):
        response = _add(client, person=name, tenant=tenant_a)
        assert response.status_code == 200  # the form again, with the message
        answers.append(response.context["adminform"].form.errors["person"])
    # One answer for "exists elsewhere" and "does not exist": nothing is disclosed.
    assert all(answer == [NOT_FOUND] for answer in answers)
    assert not Membership.objects.filter(user__in=[people["bob"], people["dave"]],
                                         tenant=tenant_a).exists()


def test_a_tenant_admin_adds_a_colleague_from_another_of_their_companies(
    client, people, tenant_a, tenant_b
):
    third = Tenant.objects.create(name="Charlie GmbH", slug="charlie")
    Membership.objects.create(user=people["alice"], tenant=third, role=Role.ADMIN)
    client.force_login(people["alice"])
    response = _add(client, person="CAROL-IN-A", tenant=third)  # case does not matter
    assert response.status_code == 302, response.content.decode()[:500]
    assert Membership.objects.get(user=people["carol"], tenant=third).role == Role.OPERATOR


def test_adding_someone_twice_is_a_message_not_a_500(client, people, tenant_a):
    client.force_login(people["alice"])
    response = _add(client, person="carol-in-a", tenant=tenant_a)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["person"] == [
        "This person is already a member of this company."]


def test_a_superuser_adds_anyone_by_email(client, people, tenant_a, superuser):
    client.force_login(superuser)
    assert _add(client, person="dave@nowhere.example", tenant=tenant_a).status_code == 302
    assert Membership.objects.filter(user=people["dave"], tenant=tenant_a).exists()


def test_an_existing_membership_changes_its_role_only(client, people, tenant_a):
    membership = Membership.objects.get(user=people["carol"], tenant=tenant_a)
    client.force_login(people["alice"])
    url = reverse("admin:tenants_membership_change", args=[membership.pk])
    response = client.post(url, {"person": "bob-only-in-b", "tenant": tenant_a.pk,
                                 "role": Role.OPERATOR})
    assert response.status_code == 302
    membership.refresh_from_db()
    assert (membership.user, membership.role) == (people["carol"], Role.OPERATOR)


def test_the_creator_of_a_company_administers_it_and_picks_currencies(client, superuser):
    client.force_login(superuser)
    response = client.post(reverse("admin:tenants_tenant_add"), {
        "name": "Delta BV", "slug": "delta", "time_zone": "Europe/Amsterdam",
        "is_active": "on", "collection_mode": "off", "lead_days": 3, "minimum_amount": "1.00",
        "currencies": ["GBP", "EUR"], "max_payments_per_run": 1000,
        "charge_date_policy": "due_date", "over_maximum_policy": "split",
        "retry_count": 0, "retry_spacing_days": 5, "collection_hour": 7,
    })
    assert response.status_code == 302, response.context["adminform"].form.errors
    tenant = Tenant.objects.get(slug="delta")
    assert tenant.currencies == ["EUR", "GBP"]
    assert Membership.objects.get(tenant=tenant, user=superuser).role == Role.ADMIN
    page = client.get(reverse("admin:tenants_tenant_change", args=[tenant.pk]))
    assert 'type="checkbox" name="currencies" value="EUR"' in page.content.decode()
