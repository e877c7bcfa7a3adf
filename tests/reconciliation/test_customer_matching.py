"""Import and matching: metadata, then e-mail, then name + postcode; ambiguity waits for a
person, who confirms it in the admin."""

import pytest
from django.urls import reverse

from core.audit import Actor
from core.models import AuditEntry
from gocardless.models import Customer, Mandate
from reconciliation.customers.matching import customers_match
from reconciliation.customers.models import CustomerLink, LinkState
from reconciliation.customers.normalise import company_key, postcode_key
from tests.exact.factories import ExactAccountFactory

pytestmark = pytest.mark.django_db

ACTOR = Actor.system("test")


@pytest.fixture
def world(tenant_a, gc_sim, gc_connection):
    """Exact mirror rows (the Exact simulator has no postcodes) and GoCardless customers and
    mandates that existed before the connector (seeded at the simulator, no events)."""
    a = ExactAccountFactory(tenant=tenant_a, name="Alpha Foods", email="a@alpha.example")
    b = ExactAccountFactory(tenant=tenant_a, name="Bravo", email="Billing@Bravo.example")
    c = ExactAccountFactory(
        tenant=tenant_a, name="Charlie Trading B.V.", email="c@charlie.example", postcode="1234 ab"
    )
    d = ExactAccountFactory(tenant=tenant_a, name="Delta", email="shared@delta.example")
    e = ExactAccountFactory(tenant=tenant_a, name="Echo", email="nobody@echo.example")
    seeded = gc_sim.seed(
        customers=[
            {
                "company_name": "Alpha (other name)",
                "email": "x@elsewhere.example",
                "metadata": {"exact_account": str(a.exact_id)},
            },
            {"company_name": "Bravo Ltd", "email": " billing@bravo.example"},
            {
                "company_name": "CHARLIE TRADING BV",
                "email": "finance@charlie.example",
                "postal_code": "1234AB",
            },
            {"company_name": "Delta One", "email": "shared@delta.example"},
            {"company_name": "Delta Two", "email": "SHARED@delta.example"},
        ]
    )
    cu = seeded["customers"]
    mandates = gc_sim.seed(
        mandates=[
            {"customer": cu[0], "scheme": "sepa_core", "status": "active"},
            {"customer": cu[1], "scheme": "bacs", "status": "cancelled"},
            {"customer": cu[1], "scheme": "bacs", "status": "active"},
            {"customer": cu[2], "scheme": "sepa_core", "status": "pending_submission"},
        ]
    )["mandates"]
    return {"accounts": (a, b, c, d, e), "customers": cu, "mandates": mandates}


def _link(account):
    return CustomerLink.objects.get(exact_account_guid=account.exact_id)


def test_normalisation():
    assert company_key("Charlie Trading B.V.") == company_key("CHARLIE TRADING BV")
    assert company_key("Café Müller GmbH") == "cafe muller"
    assert postcode_key("1234 ab") == postcode_key("1234-AB") == "1234AB"


def test_existing_customers_and_mandates_are_imported_and_matched(tenant_a, world):
    a, b, c, d, e = world["accounts"]
    cu, md = world["customers"], world["mandates"]
    report = customers_match(tenant=tenant_a, actor=ACTOR)

    assert report.imported_customers == 5 and report.imported_mandates == 4
    assert report.matched == {"metadata": 1, "email": 1, "name_postcode": 1}
    assert report.ambiguous == 1 and report.unmatched == 1
    assert Mandate.objects.filter(tenant=tenant_a).count() == 4  # mirrored

    assert (_link(a).state, _link(a).matched_by) == (LinkState.MATCHED, "metadata")
    assert _link(a).gocardless_customer.gocardless_id == cu[0]
    assert _link(a).mandate.gocardless_id == md[0]
    # e-mail, case and spaces ignored; the active mandate is chosen over the cancelled one
    assert (_link(b).matched_by, _link(b).gocardless_customer.gocardless_id) == ("email", cu[1])
    assert _link(b).mandate.gocardless_id == md[2]
    assert (_link(c).matched_by, _link(c).gocardless_customer.gocardless_id) == (
        "name_postcode",
        cu[2],
    )
    assert _link(c).mandate.status == "pending_submission"

    # Two customers share Delta's e-mail: never guessed.
    delta = _link(d)
    assert delta.state == LinkState.AMBIGUOUS and delta.gocardless_customer is None
    assert delta.candidates == sorted([cu[3], cu[4]]) and delta.matched_by == "email"
    assert _link(e).state == LinkState.UNMATCHED
    assert AuditEntry.objects.filter(action="customerlink.ambiguous").count() == 1
    assert AuditEntry.objects.filter(action="customerlink.matched").count() == 3


def test_matching_twice_changes_nothing(tenant_a, world):
    customers_match(tenant=tenant_a, actor=ACTOR)
    entries = AuditEntry.objects.filter(action__startswith="customerlink.").count()
    report = customers_match(tenant=tenant_a, actor=ACTOR)
    assert sum(report.matched.values()) == 0 and report.ambiguous == 1
    assert AuditEntry.objects.filter(action__startswith="customerlink.").count() == entries
    assert CustomerLink.objects.filter(tenant=tenant_a).count() == 5


def test_one_customer_wanted_by_two_accounts_is_ambiguous_for_both(tenant_a, gc_sim, gc_connection):
    first = ExactAccountFactory(tenant=tenant_a, email="ap@group.example")
    second = ExactAccountFactory(tenant=tenant_a, email="AP@group.example")
    gc_sim.seed(customers=[{"company_name": "Group", "email": "ap@group.example"}])
    customers_match(tenant=tenant_a, actor=ACTOR)
    assert _link(first).state == _link(second).state == LinkState.AMBIGUOUS


def test_an_ambiguous_match_waits_for_a_person_who_confirms_it_in_the_admin(
    client, tenant_a, world, operator_of_a
):
    d = world["accounts"][3]
    cu = world["customers"]
    customers_match(tenant=tenant_a, actor=ACTOR)
    link = _link(d)
    client.force_login(operator_of_a)
    url = reverse("admin:customers_customerlink_changelist")

    page = client.post(url, {"action": "confirm_match", "_selected_action": [link.pk]})
    assert page.status_code == 200 and cu[3].encode() in page.content  # the choice

    done = client.post(
        url,
        {
            "action": "confirm_match",
            "_selected_action": [link.pk],
            "confirm": "yes",
            "customer": cu[4],
        },
        follow=True,
    )
    assert done.status_code == 200
    link.refresh_from_db()
    assert link.state == LinkState.MATCHED and link.gocardless_customer.gocardless_id == cu[4]
    assert link.confirmed_by == operator_of_a and link.confirmed_at is not None
    entry = AuditEntry.objects.get(action="customerlink.confirmed")
    assert entry.actor_user == operator_of_a and cu[4] in entry.message

    # A later matching run leaves the person's decision alone.
    customers_match(tenant=tenant_a, actor=ACTOR)
    link.refresh_from_db()
    assert link.gocardless_customer.gocardless_id == cu[4]


def _last_message(response) -> str:
    """The message this request added (earlier, unread ones stay in the cookie)."""
    from django.contrib.messages import get_messages

    return [str(m) for m in get_messages(response.wsgi_request)][-1]


def test_confirm_match_says_what_the_real_problem_is(client, tenant_a, world, operator_of_a):
    """Issue 15: *Confirm match* on one unmatched link said "Select exactly one customer
    link". With one link selected, the message names why there is nothing to confirm."""
    customers_match(tenant=tenant_a, actor=ACTOR)
    unmatched = _link(world["accounts"][4])  # Echo: nobody at GoCardless
    matched = _link(world["accounts"][1])  # Bravo: matched by e-mail
    ambiguous = _link(world["accounts"][3])
    assert (unmatched.state, matched.state) == (LinkState.UNMATCHED, LinkState.MATCHED)
    client.force_login(operator_of_a)
    url = reverse("admin:customers_customerlink_changelist")

    def confirm(*links):
        return client.post(
            url, {"action": "confirm_match", "_selected_action": [x.pk for x in links]}
        )

    message = _last_message(confirm(unmatched))
    assert "Select exactly one" not in message
    assert "no GoCardless customer matched this Exact account" in message
    assert "no candidate to confirm" in message and "Re-link" in message
    message = _last_message(confirm(matched))
    assert "already matched to GoCardless customer" in message and "nothing to confirm" in message
    message = _last_message(confirm(ambiguous, unmatched))
    assert "2 are selected" in message and "one customer link at a time" in message

    # An ambiguous link whose candidates are no longer mirrored: say that, not "no customer".
    Customer.objects.filter(tenant=tenant_a, gocardless_id__in=ambiguous.candidates).delete()
    message = _last_message(confirm(ambiguous))
    assert "none of its candidates" in message and ambiguous.candidates[0] in message
    unmatched.refresh_from_db()
    assert unmatched.state == LinkState.UNMATCHED  # nothing changed
    assert not AuditEntry.objects.filter(action="customerlink.confirmed").exists()


def test_relink_and_unlink_in_the_admin(client, tenant_a, world, operator_of_a):
    e = world["accounts"][4]
    cu = world["customers"]
    customers_match(tenant=tenant_a, actor=ACTOR)
    link = _link(e)
    client.force_login(operator_of_a)
    url = reverse("admin:customers_customerlink_changelist")

    # Re-link to a customer that is already linked elsewhere: a message, not a 500.
    taken = client.post(
        url,
        {"action": "relink", "_selected_action": [link.pk], "confirm": "yes", "customer": cu[0]},
        follow=True,
    )
    assert taken.status_code == 200
    link.refresh_from_db()
    assert link.state == LinkState.UNMATCHED

    client.post(
        url,
        {"action": "relink", "_selected_action": [link.pk], "confirm": "yes", "customer": cu[3]},
    )
    link.refresh_from_db()
    assert link.state == LinkState.MATCHED and link.matched_by == "manual"
    assert link.gocardless_customer.gocardless_id == cu[3]

    response = client.post(url, {"action": "unlink", "_selected_action": [link.pk]})
    assert response.status_code == 302
    link.refresh_from_db()
    assert link.state == LinkState.UNLINKED and link.gocardless_customer is None
    # Matching never re-links what a person unlinked.
    customers_match(tenant=tenant_a, actor=ACTOR)
    link.refresh_from_db()
    assert link.state == LinkState.UNLINKED
    assert Customer.objects.filter(gocardless_id=cu[3]).exists()


def test_changelist_shows_links_with_filters(client, tenant_a, world, viewer_of_a):
    customers_match(tenant=tenant_a, actor=ACTOR)
    client.force_login(viewer_of_a)
    url = reverse("admin:customers_customerlink_changelist")
    assert client.get(url).status_code == 200
    active = client.get(url, {"mandate_status": "active"})
    assert {o.exact_name for o in active.context["cl"].result_list} == {"Alpha Foods", "Bravo"}
    never = client.get(url, {"invitation_state": "none"})
    assert len(never.context["cl"].result_list) == 5
