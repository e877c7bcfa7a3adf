"""The admin works in a real browser under the strict Content-Security-Policy, and login
throttling is visible to a person (issue 14: django-csp and django-axes)."""

from __future__ import annotations

import pytest

from tenants.models import Role
from tests.conftest import _member

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-test-password-42"


@pytest.fixture
def clerk(tenant_a):
    user = _member(tenant_a, Role.ADMIN, "clara-clerk")
    user.is_staff = True
    user.set_password(PASSWORD)
    user.save()
    return user


def test_a_tenant_admin_walks_the_admin_without_a_policy_violation(journey, clerk, tenant_a):
    journey.log_in("clara-clerk", PASSWORD)
    assert journey.page.url.endswith("/admin/")
    journey.shot("index")
    journey.open(f"/admin/tenants/tenant/{tenant_a.pk}/change/")
    assert journey.page.locator("input[name=currencies][value=EUR]").count() == 1
    journey.shot("company")
    journey.open("/admin/tenants/membership/add/")
    journey.shot("membership-add")
    journey.page.fill("input[name=person]", "someone-from-elsewhere")
    # The company field is the admin's select2 autocomplete: its script and its AJAX call
    # must both work under the policy.
    journey.page.click(".field-tenant .select2-selection")
    journey.page.fill(".select2-search__field", "Alpha")
    journey.page.click(".select2-results__option >> text=Alpha BV")
    journey.page.click("input[name=_save]")
    message = journey.page.wait_for_selector(".field-person .errorlist")
    assert "is a member of a company you administer" in message.inner_text()
    journey.shot("membership-refused")
    journey.open("/admin/core/auditentry/")
    journey.shot("audit-trail")
    # The admin's own scripts (from this origin) ran: the sidebar toggle exists only then.
    journey.open("/admin/tenants/membership/")
    assert journey.page.locator("#toggle-nav-sidebar").count() == 1


def test_too_many_wrong_passwords_lock_the_login(journey, clerk, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        journey.log_in("clara-clerk", "wrong-password")
    journey.log_in("clara-clerk", PASSWORD)
    assert not journey.page.url.endswith("/admin/")
    assert "locked" in journey.page.inner_text("body").lower()
    journey.shot("locked-out")


def test_copy_link_works_without_inline_script(journey, clerk, tenant_a):
    """The hosted-page link's Copy button was an inline onclick, which the policy blocks; it
    is a static script now."""
    from tests.reconciliation.factories import MandateInvitationFactory

    invitation = MandateInvitationFactory(tenant=tenant_a)
    journey.page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    journey.log_in("clara-clerk", PASSWORD)
    journey.open("/admin/customers/mandateinvitation/")
    button = journey.page.locator(f"button[data-mlc-copy='mlc-link-i{invitation.pk}']")
    button.click()
    journey.page.wait_for_function(
        "b => b.textContent === 'Copied'", arg=button.element_handle())
    copied = journey.page.evaluate("navigator.clipboard.readText()")
    assert copied == invitation.authorisation_url
    journey.shot("link-copied")
