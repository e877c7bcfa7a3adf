"""Issue 15's acceptance: after the demo, no admin page, CSV or e-mail shows an amount in minor
units, a floating-point amount string, an amount without its currency or an untranslated
status / cause / action code.

One test runs the demo story (both simulators in process), then, signed in as the demo's
login, walks the dashboard, every registered admin's changelist (and each of its filters),
the change page of up to four objects per model (all payouts), the reconciliation report and
its CSV, and every e-mail the story sent. What is wrong is listed per page (tests/workspace/
page_words.py says what counts)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.core import mail
from django.db import models
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from core.calendars import tenant_today
from core.display import FAILURE_CAUSE_WORDS, PAYMENT_STATUS_WORDS, minor_display
from gocardless.models import Payment, Payout, PayoutItem, Refund
from reconciliation.bookings.models import Booking, PlanPaymentMatch
from reconciliation.collection.models import FailureSettings, PayLink
from reconciliation.workspace.schedule import next_run
from tenants.models import Tenant
from tests.test_demo import demo_run, demo_settings, simulators  # noqa: F401 (fixtures)
from tests.workspace.page_words import findings, text_findings, visible

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROJECT_APPS = {"core", "tenants", "exact", "gocardless", "reconciliation", "collection",
                "bookings", "customers", "workspace", "config"}
CODE_FIELDS = {"status", "state", "action", "outcome", "resource_type", "cause", "item_type",
               "kind", "trigger", "decision", "rule", "source", "reason_code", "scheme",
               "environment", "endpoint", "matched_by", "reflection_state", "stop_reason",
               "event_action", "origin", "result"}


def _codes() -> set[str]:
    """Every code a person might be shown raw: the choices of the project's models, the
    values of their code-like fields in the demo's data, GoCardless' statuses and causes."""
    codes = set(PAYMENT_STATUS_WORDS) | set(FAILURE_CAUSE_WORDS)
    for model in apps.get_models():
        if model._meta.app_label not in PROJECT_APPS:
            continue
        for field in model._meta.get_fields():
            if not isinstance(field, models.CharField):
                continue
            if field.choices:
                codes |= {str(value) for value, _label in field.flatchoices}
            if field.name in CODE_FIELDS:
                codes |= set(model._default_manager.values_list(field.name, flat=True)
                             .distinct()[:500])
    # Lowercase codes only: "EUR", "SEPA" and "Bacs" are how people write those names.
    return {code for code in codes if code and code == code.lower() and re.search("[a-z]", code)}


def _minor(tenant) -> set[int]:
    """GoCardless amounts of the demo as stored (minor units), where they could not be mistaken
    for a count: 1,000 and up."""
    values: set[int] = set()
    for model, names in ((Payment, ("amount", "amount_refunded")),
                         (Payout, ("amount", "deducted_fees")), (Refund, ("amount",)),
                         (Booking, ("amount_minor",))):
        for row in model.objects.filter(tenant=tenant).values_list(*names):
            values |= {abs(int(v)) for v in row if v is not None}
    for amount in PayoutItem.objects.filter(tenant=tenant).values_list("amount", flat=True):
        values.add(abs(int(amount)))
    return {v for v in values if v >= 1000}


def _pages() -> list[str]:
    pages = ["/admin/"]
    for model in list(admin.site._registry):
        info = (model._meta.app_label, model._meta.model_name)
        try:
            changelist = reverse("admin:{}_{}_changelist".format(*info))
        except NoReverseMatch:
            continue
        pages.append(changelist)
        objects = model._default_manager.order_by("-pk")
        if model is Payout:
            keys = list(objects.values_list("pk", flat=True))
        else:
            keys = list(objects.values_list("pk", flat=True)[:3])
            keys += list(model._default_manager.order_by("pk").values_list("pk", flat=True)[:1])
        for key in dict.fromkeys(keys):
            pages.append(reverse("admin:{}_{}_change".format(*info), args=[key]))
    return pages


def _filter_links(html: str, changelist: str) -> list[str]:
    """The changelist's own filter links (``?status__exact=…``), each once."""
    found = re.findall(r'href="(\?[^"#]+)"', html)
    links = [link.replace("&amp;", "&") for link in dict.fromkeys(found)]
    return [changelist + link for link in links
            if not re.search(r"[?&](o|_facets|p)=", link)][:40]


def test_no_page_csv_or_email_of_the_demo_shows_machine_form(client, simulators,  # noqa: F811
                                                            demo_settings):  # noqa: F811
    exact, gocardless = simulators
    mail.outbox = []
    demo_run(exact, gocardless)
    tenant = Tenant.objects.get(slug="demo")
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="demo"))
    names = set(get_user_model().objects.values_list("username", flat=True))
    names |= set(Tenant.objects.values_list("slug", flat=True))
    codes, minor = _codes() - names, _minor(tenant)
    assert "paid_out" in codes and minor, (len(codes), len(minor))

    problems: dict[str, list[str]] = {}
    seen: set[str] = set()
    queue = _pages()
    while queue:
        page = queue.pop(0)
        if page in seen:
            continue
        seen.add(page)
        response = client.get(page)
        assert response.status_code < 500, (page, response.status_code)
        if response.status_code != 200:
            continue
        html = response.content.decode()
        if page.endswith("/") and "/change/" not in page and page != "/admin/":
            queue += [p for p in _filter_links(html, page.split("?")[0]) if p not in seen]
        found = findings(html, codes=codes, minor=minor)
        if found:
            problems[page] = found

    report = reverse("admin:bookings_booking_report")
    today = tenant_today(tenant)
    for currency in ("EUR", "GBP"):
        period = f"?tenant={tenant.pk}&start={today - dt.timedelta(days=40)}&end={today}"
        for as_csv in (False, True):
            query = period + f"&currency={currency}" + ("&format=csv" if as_csv else "")
            response = client.get(report + query)
            assert response.status_code == 200, (query, response.status_code)
            body = response.content.decode()
            if as_csv:
                cells = [c.strip('"') for line in body.splitlines() for c in line.split(",")]
                # A spreadsheet sums plain numbers: the CSV's amounts stand beside a currency
                # column; everything else (floats, minor units, codes) is checked as on a page.
                assert "Currency" in body.splitlines()[0], body.splitlines()[0]
                found = [f for f in text_findings(body, codes=codes, minor=minor, cells=cells)
                         if not f.startswith("amount without currency")]
            else:
                found = findings(body, codes=codes, minor=minor)
            if found:
                problems[report + query] = found

    for message in mail.outbox:
        found = text_findings(message.subject + "\n" + message.body, codes=codes, minor=minor)
        if found:
            problems[f"e-mail {message.subject!r}"] = found

    assert len(seen) > 60
    # The new capabilities' pages were walked with the demo's rows: the payment link, the
    # subscription payment matched to its invoice, the failure settings that turned links on.
    for model in (PayLink, PlanPaymentMatch, FailureSettings):
        (key,) = model.objects.filter(tenant=tenant).values_list("pk", flat=True)
        info = (model._meta.app_label, model._meta.model_name)
        assert reverse("admin:{}_{}_change".format(*info), args=[key]) in seen, model
    # The dashboard's *Next collection run* shows the demo's schedule (days 1 and 15).
    dashboard, _cells = visible(client.get("/admin/").content.decode())
    when, _what = next_run(tenant, timezone.now(), tenant_today(tenant))
    assert "Next collection run" in dashboard and when in dashboard, when

    # The acceptance's example: the largest payout reads in major units on its page (today's
    # story: EUR 12,883.10, not 1288310; which payments share a payout depends on the
    # calendar, so the amount is the payout's own), every fee line is listed and the page's
    # own check says they add up to the deducted fees.
    largest = Payout.objects.filter(tenant=tenant).order_by("-amount").first()
    page = client.get(reverse("admin:gocardless_payout_change", args=[largest.pk]))
    text, _cells = visible(page.content.decode())  # the payload as received is folded away
    shown = minor_display(largest.amount, largest.currency)
    assert shown in text and str(largest.amount) not in text, shown
    fees = PayoutItem.objects.filter(payout=largest, item_type="gocardless_fee").count()
    assert fees and text.count("GoCardless fee") >= fees
    assert "Does not agree" not in text and text.count("Agrees.") == 2
    assert not problems, "\n".join(
        f"{page}\n  " + "\n  ".join(found) for page, found in sorted(problems.items()))
