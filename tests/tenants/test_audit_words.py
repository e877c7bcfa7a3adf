"""The audit trail in words (issue 15): every action the code writes has a sentence, the
changes are labelled by the fields' verbose names, values and amounts read as words, and the
audit trail's list and page show no code."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

from django.urls import reverse

from core.audit import Actor, audit_record, model_snapshot
from core.models import AuditEntry
from tenants.audit_words import (
    ACTION_WORDS,
    GENERIC_VERBS,
    action_words,
    actor_words,
    changes,
    text_words,
)
from tests.workspace.page_words import findings

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("core", "tenants", "exact", "gocardless", "reconciliation", "config")
# An action literal: `action="x.y"`, a constant holding one, or the names collection passes on.
ACTION_LITERAL = re.compile(
    r'(?:action=|REFUSED = |ACTION = )"((?:collection|booking|bookingsettings|customerlink|'
    r'customers|mandateinvitation|exact_connection|exact_sync|gocardlessconnection|gocardlessevent|tenant|'
    r'membership|secrets)\.[a-z_]+)"')
# The attempt reactions pass their action as a positional argument.
ATTEMPT_ACTION = re.compile(r'"(collection\.attempt_[a-z_]+)"')
LINK_ACTION = re.compile(r'action="(\w+)"(?: if confirmed else "(\w+)")?')


def _written_actions() -> set[str]:
    found: set[str] = set()
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            text = path.read_text()
            found |= set(ACTION_LITERAL.findall(text)) | set(ATTEMPT_ACTION.findall(text))
            if path.name == "links.py" and "customerlink.{action}" in text:
                for pair in LINK_ACTION.findall(text):
                    found |= {f"customerlink.{name}" for name in pair if name}
    return found


def test_every_action_the_code_writes_has_words():
    written = _written_actions()
    assert {"collection.attempt_paid_out", "tenant.created", "customerlink.unlinked"} <= written
    missing = sorted(action for action in written if action not in ACTION_WORDS
                     and action.rpartition(".")[2] not in GENERIC_VERBS)
    assert missing == [], missing


def test_generic_and_unknown_actions_read_as_sentences():
    assert action_words("collection.attempt_paid_out") == "Payment paid out"
    assert action_words("customersettings.changed") == "Customer and mandate settings changed"
    assert action_words("exactaccount.status_changed") == "Exact account status changed"
    assert action_words("something.new_thing") == "Something new thing"
    assert actor_words("system", "demo_setup") == "Demo set-up"
    assert actor_words("schedule", "gocardless.events_poll") == "GoCardless event check"
    assert text_words("Payment failed (refer_to_payer); retry on 2026-12-08") == (
        "Payment failed (Refused by the customer's bank: ask the customer); retry on 2026-12-08")
    assert text_words("see example.com") == "see example.com"


def test_the_change_diff_uses_field_labels_and_values_in_words(tenant_a):
    before = model_snapshot(tenant_a)
    tenant_a.collection_hour = 7
    tenant_a.minimum_amount = Decimal("12.50")
    tenant_a.currencies = ["EUR"]
    tenant_a.use_success_plus = True
    tenant_a.save()
    after = model_snapshot(tenant_a)
    changed = {k for k in after if before.get(k) != after.get(k)}
    entry = audit_record(actor=Actor.system("demo_setup"), action="tenant.changed",
                         tenant=tenant_a, obj=tenant_a,
                         before={k: before[k] for k in changed},
                         after={k: after[k] for k in changed})
    entry = AuditEntry.objects.get(pk=entry.pk)
    rows = {row["label"]: row for row in changes(entry)}
    assert rows["Collection hour"]["after"] == "7"
    assert rows["Minimum amount"]["after"] == "EUR 12.50"
    assert rows["Use success plus"]["after"] == "Yes" or any(
        row["after"] == "Yes" for row in rows.values())
    text = " ".join(f"{label} {row['before']} {row['after']}" for label, row in rows.items())
    assert "_" not in text


def test_the_audit_trail_pages_show_no_code(client, tenant_a, admin_of_a):
    before = model_snapshot(tenant_a)
    tenant_a.collection_hour = 5
    tenant_a.save()
    audit_record(actor=Actor.for_user(admin_of_a), action="tenant.changed", tenant=tenant_a,
                 obj=tenant_a, before={"collection_hour": before["collection_hour"]},
                 after={"collection_hour": 5}, message="via admin")
    audit_record(actor=Actor.schedule("gocardless.events_poll"),
                 action="collection.attempt_paid_out", tenant=tenant_a,
                 object_type="collection.collectionattempt", object_id=16,
                 before={"state": "confirmed", "payment_status": "confirmed"},
                 after={"state": "paid_out", "payment_status": "paid_out"},
                 message="Payment failed (refer_to_payer)")
    codes = {"collection.attempt_paid_out", "tenant.changed", "paid_out", "confirmed",
             "collection_hour", "payment_status", "refer_to_payer"}
    client.force_login(admin_of_a)
    changelist = reverse("admin:core_auditentry_changelist")
    page = client.get(changelist).content.decode()
    assert "Payment paid out" in page and "Company settings changed" in page
    assert findings(page, codes=codes, minor=set()) == []
    for query in ("?action=collection.attempt_paid_out", "?object_type=tenants.tenant"):
        assert findings(client.get(changelist + query).content.decode(), codes=codes,
                        minor=set()) == []
    for entry in AuditEntry.objects.filter(tenant=tenant_a):
        response = client.get(reverse("admin:core_auditentry_change", args=[entry.pk]))
        assert response.status_code == 200
        page = response.content.decode()
        assert findings(page, codes=codes, minor=set()) == [], entry.action
    tenant_entry = AuditEntry.objects.get(action="tenant.changed", tenant=tenant_a)
    page = client.get(reverse("admin:core_auditentry_change", args=[tenant_entry.pk]))
    text = page.content.decode()
    assert "Collection hour" in text
    assert reverse("admin:tenants_tenant_change", args=[tenant_a.pk]) in text


def test_the_audit_trail_searches_codes_and_ids_whole_and_words_in_notes(
    client, tenant_a, admin_of_a,
):
    """No SELECT DISTINCT for the filters' choices, no date hierarchy, and a search that
    reads the whole trail only for words (docs/admin-performance.md)."""
    audit_record(actor=Actor.system("demo_setup"), action="tenant.changed", tenant=tenant_a,
                 obj=tenant_a, message="Collection hour moved")
    audit_record(actor=Actor.schedule("gocardless.events_poll"),
                 action="collection.attempt_paid_out", tenant=tenant_a,
                 object_type="collection.collectionattempt", object_id=16,
                 message="Payment PM0001 paid out")
    client.force_login(admin_of_a)
    changelist = reverse("admin:core_auditentry_changelist")

    def shown(**params):
        return [e.action for e in client.get(changelist, params).context["cl"].result_list]

    assert shown(q="collection.attempt_paid_out") == ["collection.attempt_paid_out"]
    assert shown(q="16") == ["collection.attempt_paid_out"]
    assert "collection.attempt_paid_out" not in shown(q="1")  # ids whole
    assert shown(q="PM0001") == ["collection.attempt_paid_out"]
    assert shown(q="hour moved") == ["tenant.changed"]
    assert shown(object_type="collection.collectionattempt", q="16") == [
        "collection.attempt_paid_out"]
    page = client.get(changelist).content.decode()
    assert 'class="toplinks"' not in page
    filters = page[page.index('id="changelist-filter"'):]
    # Fixed choices: those of actions nobody took yet too.
    assert "Payment paid out" in filters and "Booked in Exact Online" in filters
    assert "Collection attempt" in filters and "Booking" in filters
