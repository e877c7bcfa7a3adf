"""Admin for customers and mandates: the settings (tenant administrators), the customer
links (link_admin.py) and the mandate invitations with *Send again* and *Cancel*."""

from django.contrib import admin, messages

from core.audit import Actor
from core.display import NOTHING, local_time_display
from reconciliation.customers.invitation_email import invitation_send
from reconciliation.customers.invitations import invitation_cancel
from reconciliation.customers.link_admin import (
    LANGUAGE_WORDS,
    CustomerLinkAdmin,
    copy_link,
    language_words,
)
from reconciliation.customers.models import CustomerLink, CustomerSettings, MandateInvitation
from tenants.admin_base import TenantScopedAdmin
from tenants.models import Role

# Help texts of the settings that name template variables or JSON keys, in words.
SETTINGS_HELP = {
    "invitation_subjects": "The e-mail's subject per language (Dutch, English, German, "
    "French); empty: the built-in subject.",
    "invitation_bodies": "The e-mail's text per language; it may use the same placeholders as "
    "the built-in text (the customer's name, your company's name, the link to the mandate "
    "page and the date the link expires); empty: the built-in text.",
    "direct_debit_condition": "The payment condition in Exact Online that means 'pays by "
    "direct debit' (qualifies customers for an invitation, and is written when a mandate "
    "becomes active).",
    "reflect_payment_condition": "Write the mandate's state into the account's payment "
    "condition in Exact Online.",
}


class LanguageFilter(admin.SimpleListFilter):
    title = "language"
    parameter_name = "language"

    def lookups(self, request, model_admin):
        return list(LANGUAGE_WORDS.items())

    def queryset(self, request, queryset):
        return queryset.filter(language=self.value()) if self.value() else queryset


@admin.register(CustomerSettings)
class CustomerSettingsAdmin(TenantScopedAdmin):
    """Configuration: tenant administrators change it; every save is audited."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is not None and db_field.name in SETTINGS_HELP:
            field.help_text = SETTINGS_HELP[db_field.name]
        return field

    add_role = Role.ADMIN
    change_role = Role.ADMIN
    delete_role = Role.ADMIN
    list_display = (
        "tenant",
        "registration_policy",
        "auto_invite",
        "reflect_payment_condition",
        "reflect_mandate_record",
        "reminder_count",
        "reminder_spacing_days",
    )
    list_select_related = ("tenant",)
    fieldsets = (
        (None, {"fields": ("tenant",)}),
        ("Registration", {"fields": ("registration_policy", "auto_invite")}),
        (
            "Invitations",
            {
                "fields": (
                    "invitation_sender",
                    "invitation_subjects",
                    "invitation_bodies",
                    "reminder_count",
                    "reminder_spacing_days",
                    "reissue_limit",
                    "redirect_uri",
                    "exit_uri",
                )
            },
        ),
        (
            "Reflection into Exact",
            {
                "fields": (
                    "direct_debit_condition",
                    "default_payment_condition",
                    "reflect_payment_condition",
                    "reflect_mandate_record",
                )
            },
        ),
    )


admin.site.register(CustomerLink, CustomerLinkAdmin)


@admin.register(MandateInvitation)
class MandateInvitationAdmin(TenantScopedAdmin):
    delete_role = None

    class Media:
        js = ("customers/copy-link.js",)  # the "Copy link" buttons (no inline handlers: CSP)

    list_display = (
        "link",
        "state",
        "currency",
        "language_name",
        "email",
        "hosted_page",
        "expires",
        "reminders_sent",
        "last_sent",
        "error",
    )
    list_filter = ("state", LanguageFilter, "currency")
    list_select_related = ("tenant", "link")
    search_fields = ("link__exact_code", "link__exact_name", "billing_request_id", "email")
    actions = ("resend", "cancel")

    def has_add_permission(self, request, obj=None):
        return False

    # Times in the company's zone, the language by name; everything else as stored.
    SHOWN_AS = {"language": "language_name", "expires_at": "expires",
                "last_sent_at": "last_sent", "completed_at": "completed",
                "created_at": "created", "updated_at": "updated"}

    def get_readonly_fields(self, request, obj=None):
        names = [self.SHOWN_AS.get(f.name, f.name) for f in self.model._meta.fields]
        return [*names, "hosted_page"]

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj)

    @admin.display(description="Language", ordering="language")
    def language_name(self, obj):
        return language_words(obj.language) or NOTHING

    def _local(self, obj, moment):
        return local_time_display(moment, obj.tenant) if moment else NOTHING

    @admin.display(description="Expires", ordering="expires_at")
    def expires(self, obj):
        return self._local(obj, obj.expires_at)

    @admin.display(description="Last sent", ordering="last_sent_at")
    def last_sent(self, obj):
        return self._local(obj, obj.last_sent_at)

    @admin.display(description="Completed")
    def completed(self, obj):
        return self._local(obj, obj.completed_at)

    @admin.display(description="Created")
    def created(self, obj):
        return self._local(obj, obj.created_at)

    @admin.display(description="Updated")
    def updated(self, obj):
        return self._local(obj, obj.updated_at)

    @admin.display(description="Hosted page link")
    def hosted_page(self, obj):
        return copy_link(obj.authorisation_url, f"i{obj.pk}")

    @admin.action(description="Send the e-mail again", permissions=["change"])
    def resend(self, request, queryset):
        for invitation in queryset.select_related("tenant", "link"):
            if invitation_send(invitation=invitation, actor=Actor.for_user(request.user)):
                self.message_user(request, f"{invitation}: e-mailed.", messages.SUCCESS)
            else:
                self.message_user(
                    request,
                    f"{invitation}: not sent ({invitation.error or 'not open'}).",
                    messages.WARNING,
                )

    @admin.action(description="Cancel invitation", permissions=["change"])
    def cancel(self, request, queryset):
        for invitation in queryset.select_related("tenant", "link"):
            try:
                invitation_cancel(invitation=invitation, actor=Actor.for_user(request.user))
            except Exception as exc:
                self.message_user(request, f"{invitation}: {exc}", messages.WARNING)
            else:
                self.message_user(request, f"{invitation}: cancelled.", messages.SUCCESS)
