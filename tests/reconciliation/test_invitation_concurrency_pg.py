"""PostgreSQL: four workers inviting the same customer at the same moment make one
invitation (the partial unique constraint) and one billing request."""


import pytest
from django.core import mail

from core.audit import Actor
from reconciliation.customers.issuing import invitation_create
from reconciliation.customers.links import link_ensure
from reconciliation.customers.models import CustomerLink, MandateInvitation
from tests.concurrency import at_once
from tests.exact.factories import ExactAccountFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_invitations_of_one_customer_make_one(tenant_a, gc_sim, gc_connection):
    account = ExactAccountFactory(tenant=tenant_a, name="Mu BV", email="ap@mu.example")
    link_pk = link_ensure(tenant=tenant_a, account=account).pk

    def invite(link):
        invitation, _message = invitation_create(link=link, actor=Actor.system("t"))
        return invitation.pk if invitation else None

    results = at_once(
        *[invite] * 4,
        prepare=lambda: CustomerLink.objects.select_related("tenant", "exact_account").get(
            pk=link_pk
        ),
    )
    assert MandateInvitation.objects.count() == 1
    assert len(set(results)) == 1 and None not in results
    assert len(gc_sim.resource("billing_requests")) == 1
    assert len(mail.outbox) == 1
