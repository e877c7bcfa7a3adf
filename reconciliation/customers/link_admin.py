"""Admin for customer links: Exact accounts and their GoCardless customers, with the actions
people take on them (invite, confirm a match, re-link, unlink, run matching). Registered in
admin.py; the actions call the services, errors become admin messages."""

from django import forms
from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.template.loader import render_to_string
from django.template.response import TemplateResponse

from core.audit import Actor
from core.display import NOTHING, sentence, words
from gocardless.models import Customer
from gocardless.words import MANDATE_STATUS_WORDS, SCHEME_WORDS
from reconciliation.customers.issuing import invitation_create
from reconciliation.customers.links import LinkError, link_confirm, link_relink, link_unlink
from reconciliation.customers.matching import customers_match
from reconciliation.customers.models import (
    CustomerLink,
    InvitationState,
    LinkState,
    MandateInvitation,
)
from reconciliation.customers.selectors import customer_collectable
from tenants.admin_base import TenantScopedAdmin

# Mandate invitations are e-mailed in these languages (templates/customers/invitation/).
LANGUAGE_WORDS: dict[str, str] = {
    "nl": "Dutch",
    "en": "English",
    "de": "German",
    "fr": "French",
}


def language_words(code: str | None) -> str:
    if not code:
        return ""
    return LANGUAGE_WORDS.get(code.lower().split("-")[0]) or code.upper()


def invitation_state_words(state: str | None) -> str:
    if not state:
        return ""
    return str(dict(InvitationState.choices).get(state) or sentence(state))


def reflected_words(reflected: dict | None) -> str:
    """What Exact holds from us (``{"payment_condition": "DD", "mandates": {…}}``) as a
    sentence."""
    if not reflected:
        return "Nothing written into Exact Online yet."
    parts = []
    if reflected.get("payment_condition"):
        parts.append(f"Payment condition {reflected['payment_condition']}")
    mandates = reflected.get("mandates") or {}
    if mandates:
        parts.append(f"mandate record{'s' if len(mandates) != 1 else ''} "
                     + ", ".join(sorted(mandates)))
    others = [sentence(key) for key in reflected if key not in ("payment_condition", "mandates")]
    parts += others
    return "; ".join(parts) + "." if parts else "Nothing written into Exact Online yet."


def copy_link(url: str, ident) -> str:
    """The hosted-page link with a *Copy link* button (links and invitations lists)."""
    return render_to_string(
        "customers/admin/copy_link.html", {"url": url or "", "ident": ident}
    )


class MandateStatusFilter(admin.SimpleListFilter):
    title = "mandate status"
    parameter_name = "mandate_status"

    def lookups(self, request, model_admin):
        statuses = (
            "active",
            "pending_submission",
            "submitted",
            "cancelled",
            "failed",
            "expired",
            "blocked",
        )
        return [("none", "No mandate"), *((s, MANDATE_STATUS_WORDS[s]) for s in statuses)]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "none":
            return queryset.filter(mandate__isnull=True)
        if value:
            return queryset.filter(mandate__status=value)
        return queryset


class InvitationStateFilter(admin.SimpleListFilter):
    title = "invitation state"
    parameter_name = "invitation_state"

    def lookups(self, request, model_admin):
        return [("none", "Never invited"), *InvitationState.choices]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "none":
            return queryset.filter(latest_invitation_state__isnull=True)
        if value:
            return queryset.filter(latest_invitation_state=value)
        return queryset


def confirm_refusal(link: CustomerLink) -> str:
    """Why *Confirm match* has nothing to confirm on ``link`` (not ambiguous), and what to do."""
    if link.state == LinkState.UNMATCHED:
        return (
            f"{link}: no GoCardless customer matched this Exact account, so there is no "
            "candidate to confirm. Use Re-link to choose a GoCardless customer, or Send "
            "mandate invitation to ask the customer for a mandate."
        )
    if link.state == LinkState.UNLINKED:
        return (
            f"{link}: a person unlinked this account, so there is no candidate to confirm. "
            "Use Re-link to link it to a GoCardless customer again."
        )
    customer = link.gocardless_customer
    who = f"GoCardless customer {customer.gocardless_id}" if customer else "a GoCardless customer"
    return (
        f"{link}: already matched to {who}; there is nothing to confirm. Use Re-link if "
        "that is the wrong customer."
    )


class _ChooseCustomerForm(forms.Form):
    customer = forms.ChoiceField(label="GoCardless customer")


class CustomerLinkAdmin(TenantScopedAdmin):
    """Exact accounts and their GoCardless customers: operators act, viewers read."""

    delete_role = None  # history: unlink instead

    class Media:
        js = ("customers/copy-link.js",)  # the "Copy link" buttons (no inline handlers: CSP)

    list_display = (
        "code",
        "exact_name",
        "customer",
        "mandate_status",
        "mandate_scheme",
        "invitation_state",
        "state",
        "matched_by",
        "collectable",
        "reflection_state",
    )
    list_filter = (
        "state",
        MandateStatusFilter,
        InvitationStateFilter,
        "matched_by",
        "reflection_state",
    )
    list_select_related = ("tenant", "exact_account", "gocardless_customer", "mandate")
    search_fields = (
        "exact_code",
        "exact_name",
        "gocardless_customer__gocardless_id",
        "gocardless_customer__email",
    )
    fields = (
        "tenant",
        "exact_code",
        "exact_name",
        "exact_account_guid",
        "customer",
        "mandate_status",
        "mandate_scheme",
        "state",
        "matched_by",
        "candidates",
        "confirmed_by",
        "confirmed_at",
        "collectable",
        "stop_reason",
        "stopped_at",
        "selected_for_invitation",
        "registration_note",
        "invitation_link",
        "reflection_state",
        "reflection_error",
        "reflection_attempts",
        "reflected_text",
    )
    actions = ("send_invitation", "confirm_match", "relink", "unlink", "run_matching")

    def get_readonly_fields(self, request, obj=None):
        return [f for f in self.fields if f != "selected_for_invitation"]

    def has_add_permission(self, request, obj=None):
        return False  # links come from matching and invitations

    def get_queryset(self, request):
        latest = MandateInvitation.objects.filter(link=OuterRef("pk")).order_by("-attempt")
        return (
            super()
            .get_queryset(request)
            .annotate(
                latest_invitation_state=Subquery(latest.values("state")[:1]),
                latest_invitation_url=Subquery(latest.values("authorisation_url")[:1]),
            )
        )

    # --- columns ----------------------------------------------------------------------------
    @admin.display(description="Exact code", ordering="exact_code")
    def code(self, obj):
        return obj.exact_code.strip()

    @admin.display(description="GoCardless customer")
    def customer(self, obj):
        c = obj.gocardless_customer
        return f"{c.gocardless_id} {c.name}".strip() if c else "-"

    @admin.display(description="Mandate", ordering="mandate__status")
    def mandate_status(self, obj):
        if not obj.mandate:
            return NOTHING
        return f"{obj.mandate.gocardless_id}: {words(obj.mandate.status, MANDATE_STATUS_WORDS)}"

    @admin.display(description="Scheme")
    def mandate_scheme(self, obj):
        return words(obj.mandate.scheme, SCHEME_WORDS) or NOTHING if obj.mandate else NOTHING

    @admin.display(description="Invitation")
    def invitation_state(self, obj):
        return invitation_state_words(getattr(obj, "latest_invitation_state", None)) or NOTHING

    @admin.display(description="What Exact Online holds from us")
    def reflected_text(self, obj):
        return reflected_words(obj.reflected)

    @admin.display(description="Collectable", boolean=True)
    def collectable(self, obj):
        return customer_collectable(link=obj)

    @admin.display(description="Hosted page link")
    def invitation_link(self, obj):
        return copy_link(getattr(obj, "latest_invitation_url", "") or "", f"l{obj.pk}")

    # --- actions ----------------------------------------------------------------------------
    @admin.action(description="Send mandate invitation", permissions=["change"])
    def send_invitation(self, request, queryset):
        actor = Actor.for_user(request.user)
        for link in queryset.select_related("tenant", "exact_account", "mandate"):
            try:
                invitation, message = invitation_create(link=link, actor=actor)
            except Exception as exc:  # never a 500 for a person's click
                self.message_user(request, f"{link}: {type(exc).__name__}: {exc}", messages.ERROR)
                continue
            ok = invitation is not None and invitation.state != InvitationState.FAILED
            self.message_user(
                request, f"{link}: {message}", messages.SUCCESS if ok else messages.WARNING
            )

    def _choose(
        self, request, queryset, *, action, title, intro, choices, submit_label, apply, empty
    ):
        """One link at a time: show a choice, then apply it (errors become messages)."""
        selected = queryset.count()
        if selected != 1:
            self.message_user(
                request,
                f"This action works on one customer link at a time; {selected} are selected. "
                "Select exactly one.",
                messages.WARNING,
            )
            return None
        link = queryset.select_related("tenant", "exact_account").get()
        form = _ChooseCustomerForm(request.POST if "confirm" in request.POST else None)
        form.fields["customer"].choices = choices(link)
        if not form.fields["customer"].choices:
            self.message_user(request, f"{link}: {empty(link)}", messages.WARNING)
            return None
        if form.is_bound and form.is_valid():
            try:
                apply(link, form.cleaned_data["customer"])
            except LinkError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, f"{link}: linked.", messages.SUCCESS)
            return None
        return TemplateResponse(
            request,
            "customers/admin/choose_customer.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "intro": f"{link}: {intro}",
                "form": form,
                "queryset": [link],
                "action": action,
                "submit_label": submit_label,
                "back_url": request.get_full_path(),
                "opts": self.model._meta,
            },
        )

    @admin.action(description="Confirm match (choose the candidate)", permissions=["change"])
    def confirm_match(self, request, queryset):
        def choices(link):
            rows = Customer.objects.filter(tenant=link.tenant, gocardless_id__in=link.candidates)
            return [(c.gocardless_id, f"{c.gocardless_id} {c.name} <{c.email}>") for c in rows]

        if queryset.count() == 1:
            link = queryset.select_related("gocardless_customer").get()
            if link.state != LinkState.AMBIGUOUS:
                # One link selected, but nothing to confirm: say what the real problem is.
                self.message_user(request, confirm_refusal(link), messages.WARNING)
                return None
        return self._choose(
            request,
            queryset,
            action="confirm_match",
            title="Confirm match",
            intro="several GoCardless customers match; choose the right one.",
            choices=choices,
            submit_label="Confirm",
            apply=lambda link, cid: link_confirm(
                link=link, customer_gocardless_id=cid, actor=Actor.for_user(request.user)
            ),
            empty=lambda link: (
                f"none of its candidates ({', '.join(link.candidates) or 'none recorded'}) is "
                "in the copy of GoCardless' customers any more. Run matching again, or use "
                "Re-link to choose a customer."
            ),
        )

    @admin.action(description="Re-link (choose another customer)", permissions=["change"])
    def relink(self, request, queryset):
        def choices(link):
            taken = (
                CustomerLink.objects.filter(tenant=link.tenant)
                .exclude(state=LinkState.UNLINKED)
                .exclude(pk=link.pk)
                .values("gocardless_customer")
            )
            rows = (
                Customer.objects.filter(tenant=link.tenant)
                .exclude(pk__in=Subquery(taken.exclude(gocardless_customer=None)))
                .order_by("name")[:500]
            )
            return [(c.gocardless_id, f"{c.gocardless_id} {c.name} <{c.email}>") for c in rows]

        def apply(link, cid):
            customer = Customer.objects.filter(tenant=link.tenant, gocardless_id=cid).first()
            if customer is None:
                raise LinkError(f"GoCardless customer {cid} is not mirrored.")
            link_relink(link=link, customer=customer, actor=Actor.for_user(request.user))

        return self._choose(
            request,
            queryset,
            action="relink",
            title="Re-link",
            intro="choose the GoCardless customer this Exact account belongs to.",
            choices=choices,
            submit_label="Link",
            apply=apply,
            empty=lambda link: (
                "every GoCardless customer in the copy is already linked to another Exact "
                "account (or none has been copied from GoCardless yet), so there is no one "
                "to link it to."
            ),
        )

    @admin.action(description="Unlink", permissions=["change"])
    def unlink(self, request, queryset):
        for link in queryset.select_related("tenant", "gocardless_customer", "mandate"):
            try:
                link_unlink(link=link, actor=Actor.for_user(request.user))
            except LinkError as exc:
                self.message_user(request, str(exc), messages.WARNING)
            else:
                self.message_user(request, f"{link}: unlinked.", messages.SUCCESS)

    @admin.action(description="Run matching for these companies now", permissions=["change"])
    def run_matching(self, request, queryset):
        tenants = {link.tenant_id: link.tenant for link in queryset.select_related("tenant")}
        for tenant in tenants.values():
            try:
                report = customers_match(tenant=tenant, actor=Actor.for_user(request.user))
            except Exception as exc:
                self.message_user(request, f"{tenant}: matching failed: {exc}", messages.ERROR)
                continue
            self.message_user(
                request,
                f"{tenant}: matched {report.matched}, ambiguous {report.ambiguous}, "
                f"unmatched {report.unmatched}.",
                messages.SUCCESS,
            )
