"""Admin for customers and mandates: the settings (tenant administrators), the customer
links (link_admin.py) and the mandate invitations with *Send again* and *Cancel*."""

from django.contrib import admin, messages

from core.audit import Actor
from reconciliation.customers.invitation_email import invitation_send
from reconciliation.customers.invitations import invitation_cancel
from reconciliation.customers.link_admin import CustomerLinkAdmin, copy_link
from reconciliation.customers.models import CustomerLink, CustomerSettings, MandateInvitation
from tenants.admin_base import TenantScopedAdmin
from tenants.models import Role


@admin.register(CustomerSettings)
class CustomerSettingsAdmin(TenantScopedAdmin):
    """Configuration: tenant administrators change it; every save is audited."""

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
        "language",
        "email",
        "hosted_page",
        "expires_at",
        "reminders_sent",
        "last_sent_at",
        "error",
    )
    list_filter = ("state", "language", "currency")
    list_select_related = ("tenant", "link")
    search_fields = ("link__exact_code", "link__exact_name", "billing_request_id", "email")
    actions = ("resend", "cancel")

    def has_add_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields] + ["hosted_page"]

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
