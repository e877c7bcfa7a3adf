"""Forms of the tenants admin: people are named, never picked from a list of every user, and
currencies are chosen, not typed."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q

from core.money import MINOR_UNIT_EXPONENT
from tenants.models import Membership, Role, Tenant
from tenants.scoping import tenant_ids_with_role

NOT_FOUND = (
    "No user with that username or e-mail is a member of a company you administer. "
    "An installation administrator adds people who are new to this installation."
)


def users_visible_to(user, *, request=None):
    """Whom ``user`` may add to a company: anyone for a superuser; for a tenant administrator,
    only people who already belong to a company they administer. Usernames and e-mails of
    other companies' people are never revealed, not even by an error message."""
    users = get_user_model().objects.filter(is_active=True)
    if user.is_superuser:
        return users
    tenant_ids = tenant_ids_with_role(user, Role.ADMIN, request=request)
    return users.filter(memberships__tenant_id__in=tenant_ids).distinct()


class MembershipForm(forms.ModelForm):
    """A membership whose person is given by username or e-mail (a new one) or fixed (an
    existing one: only its role changes)."""

    person = forms.CharField(
        label="Username or e-mail", max_length=254, required=False,
        help_text="Someone who already belongs to one of your companies.",
    )

    class Meta:
        model = Membership
        fields = ("person", "role")

    request = None  # set by the admin (membership_form_for)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["person"].disabled = True
            self.fields["person"].initial = self.instance.user.get_username()
            self.fields["person"].help_text = ""

    def clean_person(self):
        if self.instance.pk:
            return self.instance.user
        name = (self.cleaned_data.get("person") or "").strip()
        if not name:
            if self.has_changed():
                raise forms.ValidationError("Give the person's username or e-mail.")
            return None
        matches = list(
            users_visible_to(self.request.user, request=self.request).filter(
                Q(username__iexact=name) | Q(email__iexact=name)
            )[:2]
        )
        if len(matches) != 1:
            raise forms.ValidationError(NOT_FOUND)
        return matches[0]

    def clean(self):
        cleaned = super().clean()
        person = cleaned.get("person")
        tenant_id = cleaned["tenant"].pk if cleaned.get("tenant") else self.instance.tenant_id
        if (
            person is not None
            and tenant_id
            and not self.instance.pk
            and Membership.objects.filter(user=person, tenant_id=tenant_id).exists()
        ):
            self.add_error("person", "This person is already a member of this company.")
        return cleaned

    def save(self, commit=True):
        if not self.instance.pk:
            self.instance.user = self.cleaned_data["person"]
        return super().save(commit=commit)


def membership_form_for(request, *, with_tenant: bool = False):
    """The MembershipForm class bound to this request (the admin instantiates forms itself)."""
    fields = ("person", "tenant", "role") if with_tenant else ("person", "role")
    meta = type("Meta", (MembershipForm.Meta,), {"fields": fields})
    return type("RequestMembershipForm", (MembershipForm,), {"request": request, "Meta": meta})


CURRENCY_CHOICES = [(code, code) for code in sorted(MINOR_UNIT_EXPONENT)]


class TenantForm(forms.ModelForm):
    currencies = forms.MultipleChoiceField(
        choices=CURRENCY_CHOICES, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Invoices in these currencies are collected (each needs a GoCardless "
        "scheme in that currency). None ticked: nothing is collected.",
    )

    class Meta:
        model = Tenant
        fields = ("currencies",)  # the admin adds the rest from its fieldsets

    def clean_currencies(self):
        return sorted(self.cleaned_data.get("currencies") or [])
