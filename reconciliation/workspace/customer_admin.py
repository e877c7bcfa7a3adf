"""The customer page (issue 15): a customer link's change page shows one customer the way
finance staff think of them: the Exact account, the GoCardless customer and mandates, the
open invoices, the subscriptions and instalment plans, the payments (with the invoices or the
plan they were for), the mandate invitations and the audit trail, each in words and linked
to its own page.

It lives here, above customers, collection and both providers, because it reads them all;
the admin registered by reconciliation/customers is replaced by this subclass at start (as
company_admin.py does for the company page). Every section is one query, whatever the
customer's history: the page's query count does not grow with it.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.urls import NoReverseMatch, reverse

from core.display import (
    NOTHING,
    PAYMENT_STATUS_WORDS,
    local_date_display,
    local_time_display,
    minor_display,
    money_display,
    words,
)
from core.models import AuditEntry
from exact.models import ExactReceivable
from exact.words import account_status_words, language_words, payment_condition_words
from gocardless.models import InstalmentSchedule, Mandate, Payment, Subscription
from gocardless.plan_display import plan_label, plan_names, upcoming_rows
from gocardless.words import (
    INSTALMENT_SCHEDULE_STATUS_WORDS,
    MANDATE_STATUS_WORDS,
    SCHEME_WORDS,
    SUBSCRIPTION_STATUS_WORDS,
    interval_words,
)
from reconciliation.collection.models import CollectionAttempt
from reconciliation.customers.link_admin import CustomerLinkAdmin, invitation_state_words
from reconciliation.customers.link_admin import language_words as invitation_language
from reconciliation.customers.models import CustomerLink, MandateInvitation
from tenants import audit_words

# How much history the page lists; older rows stay on their own lists.
MOST = 50


def admin_url(site, obj) -> str:
    """The object's page in the admin, or "" when it has none (or the model is not shown)."""
    if obj is None or type(obj) not in site._registry:
        return ""
    try:
        return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change",
                       args=[obj.pk])
    except NoReverseMatch:
        return ""


def customer_page(link: CustomerLink, site) -> dict:
    """Everything the customer page shows beyond the link's own fields."""
    tenant = link.tenant
    account = link.exact_account
    customer = link.gocardless_customer

    mandates = list(
        Mandate.objects.filter(tenant=tenant, customer_id=customer.gocardless_id)
        .order_by("-gocardless_created_at", "-id")[:MOST]
    ) if customer is not None else ([link.mandate] if link.mandate_id else [])
    mandate_ids = [m.gocardless_id for m in mandates]

    receivables = list(
        ExactReceivable.objects.filter(tenant=tenant, is_fully_paid=False)
        .filter(Q(account_exact_id=link.exact_account_guid)
                | Q(account_id=link.exact_account_id) if link.exact_account_id
                else Q(account_exact_id=link.exact_account_guid))
        .order_by("due_date", "invoice_number")[:MOST]
    )

    attempts = list(
        CollectionAttempt.objects.filter(tenant=tenant)
        .filter(Q(account_exact_id=link.exact_account_guid)
                | Q(mandate_gocardless_id__in=mandate_ids))
        .order_by("-created_at", "-id")
        .only("id", "invoice_number", "payment_gocardless_id")[:MOST * 4]
    )
    invoices_of: dict[str, list[str]] = {}
    for attempt in attempts:
        if attempt.payment_gocardless_id and attempt.invoice_number is not None:
            numbers = invoices_of.setdefault(attempt.payment_gocardless_id, [])
            if str(attempt.invoice_number) not in numbers:
                numbers.append(str(attempt.invoice_number))

    payments = list(
        Payment.objects.filter(tenant=tenant, mandate_id__in=mandate_ids)
        .order_by("-charge_date", "-id")[:MOST]
    ) if mandate_ids else []

    subscriptions = list(
        Subscription.objects.filter(tenant=tenant, mandate_id__in=mandate_ids)
        .order_by("-gocardless_created_at", "-id")[:MOST]
    ) if mandate_ids else []
    schedules = list(
        InstalmentSchedule.objects.filter(tenant=tenant, mandate_id__in=mandate_ids)
        .order_by("-gocardless_created_at", "-id")[:MOST]
    ) if mandate_ids else []
    # The plans' names for the payments they created (read from the rows above, no query).
    names = {("subscription", p.gocardless_id): p.name for p in subscriptions}
    names.update({("instalmentschedule", p.gocardless_id): p.name for p in schedules})
    missing = [p for p in payments
               if (p.subscription_id and ("subscription", p.subscription_id) not in names)
               or (p.instalment_schedule_id
                   and ("instalmentschedule", p.instalment_schedule_id) not in names)]
    if missing:
        names.update(plan_names(payments=missing))

    invitations = list(
        MandateInvitation.objects.filter(link=link).order_by("-attempt")[:MOST]
    )

    about = Q(object_type="customers.customerlink", object_id=str(link.pk))
    for label, keys in (
        ("customers.mandateinvitation", [i.pk for i in invitations]),
        ("collection.collectionattempt", [a.pk for a in attempts]),
        ("gocardless.mandate", [m.pk for m in mandates]),
        ("gocardless.payment", [p.pk for p in payments]),
        ("gocardless.subscription", [p.pk for p in subscriptions]),
        ("gocardless.instalmentschedule", [p.pk for p in schedules]),
    ):
        if keys:
            about |= Q(object_type=label, object_id__in=[str(k) for k in keys])
    entries = list(
        AuditEntry.objects.filter(tenant=tenant).filter(about)
        .select_related("actor_user").order_by("-created_at", "-id")[:MOST]
    )

    return {
        "account": {
            "name": (account.name if account else link.exact_name) or NOTHING,
            "code": ((account.code if account else link.exact_code) or "").strip() or NOTHING,
            "email": (account.email if account else "") or NOTHING,
            "status": account_status_words(account.status) if account else "",
            "language": language_words(account.language) if account else "",
            "payment_condition": (payment_condition_words(account.payment_condition)
                                  if account else "") or NOTHING,
            "url": admin_url(site, account),
            "gone": account is None,
        },
        "customer": {
            "id": customer.gocardless_id,
            "name": customer.name or NOTHING,
            "email": customer.email or NOTHING,
            "url": admin_url(site, customer),
        } if customer is not None else None,
        "mandates": [{
            "id": m.gocardless_id,
            "scheme": words(m.scheme, SCHEME_WORDS) or NOTHING,
            "status": words(m.status, MANDATE_STATUS_WORDS) or NOTHING,
            "reference": m.reference or NOTHING,
            "current": m.pk == link.mandate_id,
            "url": admin_url(site, m),
        } for m in mandates],
        "receivables": [{
            "number": r.invoice_number if r.invoice_number is not None else NOTHING,
            "kind": r.get_kind_display(),
            "due": local_date_display(r.due_date),
            "amount": money_display(r.amount, r.currency),
            "outstanding": money_display(r.outstanding, r.currency),
            "url": admin_url(site, r),
        } for r in receivables],
        "payments": [{
            "id": p.gocardless_id,
            "amount": minor_display(p.amount, p.currency),
            "status": words(p.status, PAYMENT_STATUS_WORDS) or NOTHING,
            "charge_date": local_date_display(p.charge_date),
            # A payment a plan created was for the plan (and, once matched, its invoices).
            "invoices": "; ".join(part for part in (
                plan_label(p, names), ", ".join(invoices_of.get(p.gocardless_id, []))) if part)
            or NOTHING,
            "url": admin_url(site, p),
        } for p in payments],
        "plans": [_plan_row(plan, site) for plan in [*subscriptions, *schedules]],
        "invitations": [{
            "attempt": i.attempt,
            "state": invitation_state_words(i.state) or NOTHING,
            "language": invitation_language(i.language) or NOTHING,
            "email": i.email or NOTHING,
            "sent": local_time_display(i.last_sent_at, tenant),
            "expires": local_time_display(i.expires_at, tenant),
            "url": admin_url(site, i),
        } for i in invitations],
        "audit": [{
            "when": local_time_display(e.created_at, tenant),
            "who": audit_words.actor_words(e.actor_type, e.actor_label, e.actor_user),
            "what": audit_words.action_words(e.action),
            "about": audit_words.object_words(e.object_type),
            "note": audit_words.text_words(e.message),
            "url": reverse("admin:core_auditentry_change", args=[e.pk])
            if AuditEntry in site._registry else "",
        } for e in entries],
        "most": MOST,
    }


def _plan_row(plan, site) -> dict:
    """A subscription or an instalment plan as the customer page lists it."""
    upcoming = upcoming_rows(plan.upcoming_payments, plan.currency)
    if isinstance(plan, Subscription):
        return {
            "kind": "Subscription",
            "name": plan.name or "Unnamed subscription",
            "amount": minor_display(plan.amount, plan.currency) if plan.currency else NOTHING,
            "interval": interval_words(plan.interval_unit, plan.interval,
                                       plan.day_of_month) or NOTHING,
            "status": words(plan.status, SUBSCRIPTION_STATUS_WORDS) or NOTHING,
            "upcoming": upcoming,
            "url": admin_url(site, plan),
        }
    count = len(plan.payment_ids)
    return {
        "kind": "Instalment plan",
        "name": plan.name or "Unnamed instalment plan",
        "amount": (f"{minor_display(plan.total_amount, plan.currency)} in total"
                   if plan.currency else NOTHING),
        "interval": (f"{count} instalment{'s' if count != 1 else ''}" if count
                     else "Instalments not created yet"),
        "status": words(plan.status, INSTALMENT_SCHEDULE_STATUS_WORDS) or NOTHING,
        "upcoming": upcoming,
        "url": admin_url(site, plan),
    }


class CustomerPageAdmin(CustomerLinkAdmin):
    change_form_template = "workspace/customer_change_form.html"

    def get_object(self, request, object_id, from_field=None):
        # One query for the link and everything it points to (Django's get_object, with the
        # related rows joined).
        cached = getattr(request, "_mlc_customer_link", None)
        if cached is not None and str(cached.pk) == str(object_id):
            return cached
        queryset = self.get_queryset(request).select_related(
            "tenant", "exact_account", "gocardless_customer", "mandate", "confirmed_by")
        field = self.model._meta.pk if from_field is None else self.model._meta.get_field(
            from_field)
        try:
            obj = queryset.get(**{field.name: field.to_python(object_id)})
        except (self.model.DoesNotExist, ValidationError, ValueError):
            return None
        request._mlc_customer_link = obj
        return obj

    def change_view(self, request, object_id, form_url="", extra_context=None):
        link = self.get_object(request, object_id)
        if link is not None and self.has_view_permission(request, link):
            extra_context = {**(extra_context or {}),
                             "customer_page": customer_page(link, self.admin_site),
                             "subtitle": customer_title(link)}
        return super().change_view(request, object_id, form_url, extra_context)


def customer_title(link: CustomerLink) -> str:
    code = (link.exact_code or "").strip()
    return f"{link.exact_name} ({code})" if code else (link.exact_name or str(link))


def install(site: admin.AdminSite) -> None:
    if site.is_registered(CustomerLink):
        site.unregister(CustomerLink)
    site.register(CustomerLink, CustomerPageAdmin)
