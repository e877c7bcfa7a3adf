"""Alerts to a tenant's administrators: e-mails about situations that need a person.

Recipients are the tenant's active users with the *admin* role (`tenant_admin_emails`). An
inactive tenant gets no alert (`tenants.activity.tenant_skip`). Every alert is recorded in the
audit trail, one entry per object it is about: ``alert.sent`` (with the subject and the
recipients), or ``alert.undelivered`` when the tenant has no administrator with an e-mail
address or the mail server refused (logged as a warning; the caller's work goes on).

No alert storms, without an in-memory cache:

- `alert_send` is for one state transition (a connection that goes to *needs
  re-authorisation*): the caller calls it only when the state really changed, so a connection
  already in that state does not e-mail again.
- `alert_new_objects` is for conditions that may hit many objects at once (bookings or
  GoCardless events that gave up, collection attempts that need attention): one e-mail per
  tenant listing the objects not alerted before (the audit entries above say which were),
  and none while an e-mail of the same kind went out after ``quiet_since``; what is left then
  is listed by the first e-mail after the quiet period. Each object is e-mailed about once.

E-mails never contain tokens or secrets: they name the tenant, what happened, what to do, and
link to the admin (``settings.PUBLIC_BASE_URL`` + the admin URL).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import models, transaction
from django.urls import reverse

from core.audit import Actor, audit_entries, audit_entries_create, audit_entry_build
from tenants.activity import tenant_skip
from tenants.models import Membership, Role, Tenant

logger = logging.getLogger(__name__)

ALERT_SENT = "alert.sent"
ALERT_UNDELIVERED = "alert.undelivered"
ALERT_ACTIONS = (ALERT_SENT, ALERT_UNDELIVERED)
# At most one e-mail per tenant and kind in this period for the conditions that come in
# numbers (bookings and events that gave up); what gave up meanwhile is in the next one.
ALERT_REPEAT_AFTER = timedelta(hours=1)
# Objects that became alert-worthy longer ago than this are not looked at by the sweeps
# (they have been alerted: an alert follows within ALERT_REPEAT_AFTER of the condition).
ALERT_LOOKBACK = timedelta(days=7)
LIST_LIMIT = 50  # lines listed in one e-mail; the admin link shows the rest
MAX_CANDIDATES = 5000  # objects one sweep looks at per tenant; the next sweep sees the rest
_CHUNK = 500


def tenant_admin_emails(*, tenant) -> list[str]:
    """E-mail addresses of the tenant's active administrators, sorted, without duplicates."""
    return sorted(
        {
            email
            for email in Membership.objects.filter(
                tenant=tenant, role=Role.ADMIN, user__is_active=True
            ).values_list("user__email", flat=True)
            if email
        }
    )


def admin_url(viewname: str, *args, query: str = "") -> str:
    """An absolute admin link for an e-mail, e.g. ``admin_url("admin:app_model_change", pk)``."""
    url = f"{settings.PUBLIC_BASE_URL}{reverse(viewname, args=args)}"
    return f"{url}?{query}" if query else url


def alert_body(*, tenant, what: str, todo: str, link: str) -> str:
    return (
        f"{what.rstrip()}\n\n"
        f"What to do: {todo.rstrip()}\n\n"
        f"{link}\n\n"
        "-- \n"
        f"ml-connector, company {tenant.name} ({tenant.slug}). You receive this e-mail as an "
        "administrator of this company in ml-connector.\n"
    )


def alert_send(
    *,
    tenant,
    subject: str,
    what: str,
    todo: str,
    link: str,
    objects: Sequence[models.Model] = (),
    kind: str = "",
) -> bool:
    """E-mail the tenant's administrators and record it (``alert.sent``: one audit entry per
    object, or one about the tenant). Returns False when nothing is sent.

    The caller decides that this is a new condition (a state transition). The entry is
    written first and the e-mail goes out after the surrounding transaction commits (right
    away outside one), so no lock is held while the mail server answers. Never raises for a
    mail problem: it is logged as a warning and recorded as ``alert.undelivered``.
    """
    if tenant_skip(tenant, job="alert", what=subject):
        return False
    return _alert(
        tenant=tenant,
        subject=subject,
        what=what,
        todo=todo,
        link=link,
        refs=[(obj._meta.label_lower, str(obj.pk)) for obj in objects],
        kind=kind,
    )


def _alert(*, tenant, subject, what, todo, link, refs: list[tuple[str, str]], kind: str) -> bool:
    subject = f"[ml-connector] {tenant.name}: {subject}"
    body = alert_body(tenant=tenant, what=what, todo=todo, link=link)
    recipients = tenant_admin_emails(tenant=tenant)
    after = {"kind": kind, "subject": subject, "recipients": recipients}
    if not recipients:
        _undelivered(tenant, refs, after, "no active administrator with an e-mail address")
        return False
    _record(tenant=tenant, refs=refs, action=ALERT_SENT, after=after, message=subject)

    def deliver():
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
        except Exception as exc:  # an alert must never break the job that raised it
            _undelivered(tenant, refs, after, f"the mail server refused ({type(exc).__name__})")

    transaction.on_commit(deliver)
    return True


def _undelivered(tenant, refs, after: dict, problem: str) -> None:
    logger.warning(
        "alert for tenant %s not delivered, %s: %s", tenant.slug, problem, after["subject"]
    )
    _record(
        tenant=tenant,
        refs=refs,
        action=ALERT_UNDELIVERED,
        after=after,
        message=f"{after['subject']} (not delivered: {problem})",
    )


def _record(*, tenant, refs, action: str, after: dict, message: str) -> None:
    """One entry per object (type, pk) the alert is about, or one about the tenant."""
    actor = Actor.system("alerts")
    targets = list(refs) or [(tenant._meta.label_lower, str(tenant.pk))]
    audit_entries_create(
        [
            audit_entry_build(
                actor=actor,
                action=action,
                tenant=tenant,
                object_type=object_type,
                object_id=object_id,
                after=after,
                message=message,
            )
            for object_type, object_id in targets
        ]
    )


def alerted_ids(*, model: type[models.Model], pks: Sequence) -> set[str]:
    """The pks (as strings) of ``model`` rows that an alert was already recorded for."""
    label = model._meta.label_lower
    found: set[str] = set()
    ids = [str(pk) for pk in pks]
    for start in range(0, len(ids), _CHUNK):
        found.update(
            audit_entries()
            .filter(
                action__in=ALERT_ACTIONS,
                object_type=label,
                object_id__in=ids[start : start + _CHUNK],
            )
            .values_list("object_id", flat=True)
        )
    return found


def alert_new_objects(
    *,
    tenant,
    candidates: models.QuerySet,
    subject: Callable[[int], str],
    what: str,
    line: Callable[[models.Model], str],
    todo: str,
    link: str,
    quiet_since: datetime | None = None,
    kind: str = "",
) -> int:
    """One e-mail listing those ``candidates`` (one model, rows of ``tenant``, in the order
    to list them) that no earlier alert listed; returns how many it listed (0: nothing new,
    inactive tenant, quiet period, or another worker is alerting this tenant right now).

    Cheap when there is nothing to say: the quiet period is checked first, then only the
    candidates' pks; the rows are loaded for the (at most ``LIST_LIMIT``) lines. The check and
    the audit entries are written under a lock on the tenant row and the e-mail goes out
    after that commits: two workers never list the same object.
    """
    if tenant_skip(tenant, job="alert", what=kind):
        return 0
    label = candidates.model._meta.label_lower
    with transaction.atomic():
        if Tenant.objects.select_for_update(skip_locked=True).filter(pk=tenant.pk).first() is None:
            return 0  # another worker is alerting this tenant; the next sweep sends the rest
        if quiet_since is not None and (
            audit_entries()
            .filter(
                tenant=tenant,
                action__in=ALERT_ACTIONS,
                object_type=label,
                created_at__gte=quiet_since,
            )
            .exists()
        ):
            return 0
        pks = list(candidates.values_list("pk", flat=True)[:MAX_CANDIDATES])
        done = alerted_ids(model=candidates.model, pks=pks)
        new = [pk for pk in pks if str(pk) not in done]
        if not new:
            return 0
        shown = list(candidates.filter(pk__in=new[:LIST_LIMIT]))
        lines = [f"- {line(obj)}" for obj in shown]
        if len(new) > len(shown):
            lines.append(f"- ... and {len(new) - len(shown)} more (see the link below)")
        _alert(
            tenant=tenant,
            subject=subject(len(new)),
            what=what + "\n\n" + "\n".join(lines),
            todo=todo,
            link=link,
            refs=[(label, str(pk)) for pk in new],
            kind=kind,
        )
    return len(new)


def alert_new_objects_by_tenant(*, candidates: models.QuerySet, **alert) -> int:
    """``alert_new_objects`` for every tenant owning some of ``candidates`` (rows of many
    tenants; ``alert`` as for ``alert_new_objects``, without ``tenant``). Returns how many
    objects were listed in all."""
    tenant_ids = set(candidates.order_by().values_list("tenant_id", flat=True).distinct())
    return sum(
        alert_new_objects(tenant=tenant, candidates=candidates.filter(tenant=tenant), **alert)
        for tenant in Tenant.objects.filter(pk__in=tenant_ids).order_by("pk")
    )
