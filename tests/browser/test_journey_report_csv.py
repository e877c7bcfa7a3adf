"""The month-end reconciliation report and its CSV (issue 15), in Chromium: a finance person
opens the report, chooses the company and the period, reads the totals and the rows, and
downloads the CSV; the file has its header and the expected rows. Screenshots:
artifacts/screenshots/test_a_finance_person_reads_the_report_and_downloads_its_csv/.

The period is the last seven days of the company's today (from one ``now``); one payment
charged before it must not appear.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid

import pytest
from django.utils import timezone

from core.calendars import tenant_today
from tenants.models import Role
from tests.conftest import _member
from tests.gocardless.factories import PaymentFactory, PayoutFactory, PayoutItemFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "a-long-test-password-42"
ACCOUNT = "5b7a3f5e-0000-4000-8000-00000000ac01"


def _ours(invoice: int) -> dict:
    return {"mlc_attempt": f"{uuid.uuid4()}/1", "exact_invoice": str(invoice),
            "exact_account": ACCOUNT}


@pytest.fixture
def month_end(tenant_a):
    user = _member(tenant_a, Role.VIEWER, "frida-finance")
    user.set_password(PASSWORD)
    user.save()
    now = timezone.now()
    today = tenant_today(tenant_a, now=now)
    PaymentFactory(tenant=tenant_a, gocardless_id="PMREPORT0001", status="confirmed",
                   amount=12_100, charge_date=today - dt.timedelta(days=2),
                   metadata=_ours(26_000_101))
    PaymentFactory(tenant=tenant_a, gocardless_id="PMREPORT0002", status="failed",
                   amount=8_950, charge_date=today - dt.timedelta(days=1),
                   metadata=_ours(26_000_102))
    PaymentFactory(tenant=tenant_a, gocardless_id="PMREPORT0003", status="confirmed",
                   amount=5_000, charge_date=today - dt.timedelta(days=3))  # not ours
    PaymentFactory(tenant=tenant_a, gocardless_id="PMBEFORE0001", status="paid_out",
                   amount=7_700, charge_date=today - dt.timedelta(days=30),
                   metadata=_ours(26_000_100))
    payout = PayoutFactory(tenant=tenant_a, gocardless_id="POREPORT0001", status="paid",
                           amount=12_040, reference="ALPHA-PAYOUT-1",
                           gocardless_created_at=now - dt.timedelta(days=1),
                           arrival_date=today)
    PayoutItemFactory(tenant=tenant_a, payout=payout, item_type="payment_paid_out",
                      amount="12100", payment_id="PMREPORT0001")
    PayoutItemFactory(tenant=tenant_a, payout=payout, item_type="gocardless_fee",
                      amount="-60", payment_id="PMREPORT0001")
    return user, today


def _rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_a_finance_person_reads_the_report_and_downloads_its_csv(journey, month_end, tenant_a):
    _, today = month_end
    start, end = today - dt.timedelta(days=7), today
    page = journey.page
    journey.log_in("frida-finance", PASSWORD)

    # from the bookings list to the report
    journey.open("/admin/bookings/booking/report/")
    journey.shot("report-form")
    page.select_option("select[name=tenant]", label="Alpha BV")
    page.fill("input[name=start]", start.isoformat())
    page.fill("input[name=end]", end.isoformat())
    page.fill("input[name=currency]", "EUR")
    with page.expect_navigation():
        page.get_by_role("button", name="Show report").click()
    content = page.locator("#content")
    totals_heading = page.get_by_role("heading", name=re.compile("^Totals"))
    assert "Alpha BV" in totals_heading.inner_text()
    totals = totals_heading.locator("xpath=following-sibling::table[1]").inner_text()
    assert "121.00" in totals  # collected: the one confirmed payment of ours
    assert "89.50" in totals  # failed
    assert "120.40" in totals  # paid to the bank
    text = content.inner_text()
    for payment in ("PMREPORT0001", "PMREPORT0002", "PMREPORT0003", "POREPORT0001"):
        assert payment in text
    assert "PMBEFORE0001" not in text  # charged before the period
    journey.shot("report")

    # the CSV
    with page.expect_download() as downloading:
        page.get_by_role("link", name=re.compile("Export CSV")).click()
    download = downloading.value
    assert download.suggested_filename == f"reconciliation-alpha-{start}-{end}.csv"
    saved = journey.folder / "reconciliation.csv"  # kept beside the screenshots
    download.save_as(saved)
    rows = _rows_of(saved.read_text(encoding="utf-8"))
    assert rows[0][0].lower() == "section"  # the header row
    # what the file is about: in the header row, or in the row under it
    about = rows[0] + rows[1]
    assert "Alpha BV" in about and "EUR" in about
    assert start.isoformat() in about and end.isoformat() in about
    by_id = {row[1]: row for row in rows if len(row) > 1}
    assert set(by_id) >= {"PMREPORT0001", "PMREPORT0002", "PMREPORT0003", "POREPORT0001"}
    assert "PMBEFORE0001" not in by_id
    assert "121.00" in by_id["PMREPORT0001"] and "89.50" in by_id["PMREPORT0002"]
    assert "120.40" in by_id["POREPORT0001"] and "ALPHA-PAYOUT-1" in by_id["POREPORT0001"]
    assert str(26_000_101) in by_id["PMREPORT0001"]
    # every section has its own header row: the first after each empty row
    section_headers = [rows[i + 1] for i, row in enumerate(rows[:-1]) if row == []]
    assert len(section_headers) == 4
    assert all(h and h[0].lower() == "section" for h in section_headers)
    journey.shot("after-download")
