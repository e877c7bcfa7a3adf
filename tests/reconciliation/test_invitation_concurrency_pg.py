"""PostgreSQL: four workers inviting the same customer at the same moment make one
invitation (the partial unique constraint) and one billing request."""

import threading

import pytest
from django.core import mail
from django.db import connections

from core.audit import Actor
from reconciliation.customers.issuing import invitation_create
from reconciliation.customers.links import link_ensure
from reconciliation.customers.models import CustomerLink, MandateInvitation
from tests.exact.factories import ExactAccountFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_concurrent_invitations_of_one_customer_make_one(tenant_a, gc_sim, gc_connection):
    account = ExactAccountFactory(tenant=tenant_a, name="Mu BV", email="ap@mu.example")
    link_pk = link_ensure(tenant=tenant_a, account=account).pk
    barrier = threading.Barrier(4)
    results, errors = [], []

    def worker():
        try:
            link = CustomerLink.objects.select_related("tenant", "exact_account").get(pk=link_pk)
            barrier.wait(timeout=10)
            invitation, _message = invitation_create(link=link, actor=Actor.system("t"))
            results.append(invitation.pk if invitation else None)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert MandateInvitation.objects.count() == 1
    assert len(set(results)) == 1 and None not in results
    assert len(gc_sim.resource("billing_requests")) == 1
    assert len(mail.outbox) == 1
