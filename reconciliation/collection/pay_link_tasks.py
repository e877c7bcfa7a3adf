"""django-q2 task for payment links (queued by ``pay_links.pay_link_prepare`` on commit)."""

from __future__ import annotations

from core.audit import Actor
from reconciliation.collection.models import PayLink
from reconciliation.collection.pay_links import pay_link_issue


def pay_link_issue_task(pay_link_id: int) -> None:
    link = PayLink.objects.select_related("tenant").filter(pk=pay_link_id).first()
    if link is not None:
        pay_link_issue(link=link, actor=Actor.system("collection"))
