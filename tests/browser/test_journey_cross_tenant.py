"""A member of one company cannot reach another company's pages (issue 15), in Chromium:
Alpha's administrator (staff, not a superuser; also a member of Charlie, so the dashboard
offers a switcher) types Bravo's URLs: the company page, its connections, a payment, a
collection run and attempt, a booking, an audit entry, a payout, a customer, the
reconciliation report and its CSV for Bravo.
Each answers 403/404 or sends the person elsewhere, and no page shows anything of Bravo's;
Alpha's own pages open. Screenshots: artifacts/screenshots/
test_a_member_of_one_company_cannot_reach_another_companys_pages/.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from core.calendars import tenant_today
from reconciliation.collection.models import CollectionRun
from tenants.models import Role
from tests.conftest import _member
from tests.exact.factories import ExactAccountFactory
from tests.factories import (
    AuditEntryFactory,
    ExactConnectionFactory,
    GoCardlessConnectionFactory,
    MembershipFactory,
    TenantFactory,
)
from tests.gocardless.factories import PaymentFactory, PayoutFactory
from tests.reconciliation.bookings.factories import BookingFactory
from tests.reconciliation.collection.factories import (
    CollectionAttemptFactory,
    CollectionRunFactory,
)
from tests.reconciliation.factories import CustomerLinkFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-test-password-42"
# Words that belong to Bravo only: none may appear on any page Alpha's member sees.
BRAVO_WORDS = ("Bravo", "bravo", "PMBRAVO", "POBRAVO", "Secret Bravo audit", "BRAVO-REF",
               "CRBRAVO", "ORBRAVO")


def _company_objects(tenant, tag: str, today: dt.date) -> dict:
    """One of each object whose page a person may open, for ``tenant``."""
    upper = tag.upper()
    ExactConnectionFactory(tenant=tenant)
    gocardless = GoCardlessConnectionFactory(tenant=tenant, organisation_id=f"OR{upper}0001",
                                             creditor_id=f"CR{upper}0001")
    payment = PaymentFactory(tenant=tenant, gocardless_id=f"PM{upper}0001", charge_date=today)
    run = CollectionRunFactory(tenant=tenant, as_of=today, totals={"EUR": "777.00"})
    booking = BookingFactory(tenant=tenant, gocardless_id=f"PM{upper}0001",
                             reference=f"{upper}-REF-1", booking_date=today)
    audit = AuditEntryFactory(tenant=tenant, message=f"Secret {tag.capitalize()} audit entry")
    payout = PayoutFactory(tenant=tenant, gocardless_id=f"PO{upper}0001",
                           reference=f"{upper}-PAYOUT")
    account = ExactAccountFactory(tenant=tenant, name=f"{tag.capitalize()} Customer B.V.")
    link = CustomerLinkFactory(tenant=tenant, exact_account=account)
    attempt = CollectionAttemptFactory(tenant=tenant, account_label=f"{tag.capitalize()} Debtor",
                                       charge_date=today)
    return {
        "company": reverse("admin:tenants_tenant_change", args=[tenant.pk]),
        "exact connection": reverse("admin:exact_exactconnection_change",
                                    args=[tenant.exact_connection.pk]),
        "gocardless connection": reverse("admin:gocardless_gocardlessconnection_change",
                                         args=[gocardless.pk]),
        "payment": reverse("admin:gocardless_payment_change", args=[payment.pk]),
        "collection run": reverse("admin:collection_collectionrun_change", args=[run.pk]),
        "booking": reverse("admin:bookings_booking_change", args=[booking.pk]),
        "audit entry": reverse("admin:core_auditentry_change", args=[audit.pk]),
        "payout": reverse("admin:gocardless_payout_change", args=[payout.pk]),
        "customer": reverse("admin:customers_customerlink_change", args=[link.pk]),
        "collection attempt": reverse("admin:collection_collectionattempt_change",
                                      args=[attempt.pk]),
    }


@pytest.fixture
def two_companies():
    now = timezone.now()
    alpha = TenantFactory(name="Alpha BV", slug="alpha")
    bravo = TenantFactory(name="Bravo Ltd", slug="bravo")
    charlie = TenantFactory(name="Charlie GmbH", slug="charlie")
    member = _member(alpha, Role.ADMIN, "anna-alpha")
    MembershipFactory(user=member, tenant=charlie, role=Role.VIEWER)
    member.set_password(PASSWORD)
    member.save()
    assert member.is_staff and not member.is_superuser
    today = tenant_today(alpha, now=now)
    return {
        "bravo": bravo, "today": today,
        "alpha_pages": _company_objects(alpha, "alpha", today),
        "bravo_pages": _company_objects(bravo, "bravo", today),
    }


def _shows_nothing_of_bravo(page) -> None:
    body = page.content()
    leaked = [word for word in BRAVO_WORDS if word in body]
    assert leaked == [], (page.url, leaked)


def test_a_member_of_one_company_cannot_reach_another_companys_pages(journey, two_companies):
    bravo, today = two_companies["bravo"], two_companies["today"]
    page = journey.page
    journey.log_in("anna-alpha", PASSWORD)

    # the dashboard's switcher offers Alpha and Charlie, never Bravo
    switcher = page.get_by_role("navigation", name="Company")
    assert switcher.inner_text().split() == ["Company:", "Alpha", "BV", "Charlie", "GmbH"]
    _shows_nothing_of_bravo(page)
    journey.shot("dashboard-switcher")
    journey.open("/admin/?tenant=bravo")
    refused = page.get_by_role("alert").inner_text()
    assert "You have no company called “bravo”" in refused and "Showing Alpha BV" in refused
    assert page.locator("h1").first.inner_text() == "Alpha BV"
    journey.shot("dashboard-tenant-bravo-refused")

    # Bravo's pages, by URL; and its run's approval page and live progress (JSON)
    bravo_run = CollectionRun.objects.get(tenant=bravo)
    pages = {
        **two_companies["bravo_pages"],
        "approve run": reverse("admin:collection_collectionrun_approve", args=[bravo_run.pk]),
        "run progress": reverse("admin:collection_collectionrun_progress",
                                args=[bravo_run.pk]),
    }
    for name, path in pages.items():
        response = journey.open(path)
        landed = page.url.removeprefix(journey.base_url)
        denied = response.status in (403, 404) or landed != path
        assert denied, (name, path, response.status, landed)
        _shows_nothing_of_bravo(page)
        journey.shot(f"bravo-{name.replace(' ', '-')}")

    # the report: Bravo is not a choice, and asking for it by id shows nothing of Bravo's
    report = reverse("admin:bookings_booking_report")
    period = f"start={today.replace(day=1)}&end={today}&currency=EUR"
    journey.open(f"{report}?tenant={bravo.pk}&{period}")
    options = page.locator("select[name=tenant] option").all_inner_texts()
    assert "Bravo Ltd" not in options and "Alpha BV" in options
    assert page.locator(".errorlist").count() >= 1
    assert page.get_by_role("link", name="Export CSV").count() == 0
    _shows_nothing_of_bravo(page)
    journey.shot("bravo-report-refused")
    response = journey.open(f"{report}?tenant={bravo.pk}&{period}&format=csv")
    assert "text/csv" not in response.headers.get("content-type", "")
    _shows_nothing_of_bravo(page)

    # Alpha's own pages open, with Alpha's data
    for name, path in two_companies["alpha_pages"].items():
        response = journey.open(path)
        assert response.status == 200 and page.url == journey.base_url + path, (name, page.url)
        _shows_nothing_of_bravo(page)
        assert "alpha" in page.inner_text("#content").lower(), name
    journey.shot("alpha-own-page")
    # Alpha's report form offers Alpha (the report itself: test_journey_report_csv.py)
    journey.open(report)
    options = page.locator("select[name=tenant] option").all_inner_texts()
    assert "Alpha BV" in options and "Bravo Ltd" not in options
    _shows_nothing_of_bravo(page)
    journey.shot("alpha-report-form")
