from django.contrib import admin

from tenants import admin_audit  # noqa: F401  (registers the audit trail's admin)
from tenants.activity import WHAT_DEACTIVATION_STOPS
from tenants.admin_base import TenantScopedAdmin
from tenants.admin_forms import TenantForm, membership_form_for
from tenants.models import Membership, Role, Tenant
from tenants.schedule_fields import MonthDaysField, ScheduleKindField, WeekdaysField
from tenants.scoping import role_at_least, tenant_roles

# Help texts that name a code on the model (GoCardless' retry_if_possible, a JSON example),
# said the way finance staff read them on the company page.
HELP_IN_WORDS = {
    "use_success_plus": "Let GoCardless Success+ retry failed payments (its intelligent "
    "retries) instead of this app's own retries.",
    "currencies": "Invoices in these currencies are collected (each needs a GoCardless scheme "
    "in that currency). None ticked: nothing is collected.",
    "collection_hour": "The hour (0 to 23, in the company's time zone) the scheduled run "
    "starts on its collection days.",
    "schedule_kind": "Every day, or only on the weekdays or days of the month chosen below. "
    "A chosen day that is a weekend day or a bank holiday of the currencies collected "
    "(TARGET for euros, England and Wales for pounds) moves to the next working day.",
    "schedule_weekdays": "For a schedule on chosen weekdays.",
    "schedule_month_days": "For a schedule on chosen days of the month, separated by commas, "
    "such as 1, 15 (29, 30 and 31 mean the month's last day in shorter months).",
}

# The schedule's lists, entered as people think of them (tenants/schedule_fields.py).
SCHEDULE_FORM_FIELDS = {"schedule_weekdays": WeekdaysField, "schedule_month_days": MonthDaysField}


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0

    def get_formset(self, request, obj=None, **kwargs):
        kwargs["form"] = membership_form_for(request)
        kwargs["fields"] = ("person", "role")
        return super().get_formset(request, obj, **kwargs)

    def _may_manage(self, request, obj):
        if request.user.is_superuser:
            return True
        return obj is not None and role_at_least(
            tenant_roles(request.user, request=request).get(obj.pk), Role.ADMIN
        )

    def has_add_permission(self, request, obj=None):
        return self._may_manage(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._may_manage(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._may_manage(request, obj)

    def has_view_permission(self, request, obj=None):
        return True


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    form = TenantForm
    tenant_path = "pk"
    add_role = None  # new companies are provisioned by superusers or the CLI
    change_role = Role.ADMIN
    delete_role = None  # deactivate instead; history is kept (PROTECT on audit entries)
    list_display = ("name", "slug", "is_active", "collection_mode", "time_zone", "created_at")
    list_filter = ("is_active", "collection_mode")
    search_fields = ("name", "slug")
    readonly_fields = ("uuid", "webhook_urls", "created_at", "updated_at")
    prepopulated_fields = {"slug": ("name",)}
    fieldsets = (
        (None, {"fields": ("name", "slug", "uuid", "time_zone", "is_active")}),
        (
            "Collection policy",
            {
                "fields": (
                    "collection_mode",
                    "lead_days",
                    "minimum_amount",
                    "currencies",
                    "max_payments_per_run",
                    "charge_date_policy",
                    "over_maximum_policy",
                    "retry_count",
                    "retry_spacing_days",
                    "use_success_plus",
                    "collect_new_invoices",
                    "collection_hour",
                    "schedule_kind",
                    "schedule_weekdays",
                    "schedule_month_days",
                )
            },
        ),
        ("Webhooks", {"fields": ("webhook_urls",)}),
        ("Record", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="Webhook URLs")
    def webhook_urls(self, obj):
        if not obj or not obj.pk:
            return "-"
        exact, gocardless = obj.webhook_url("exact"), obj.webhook_url("gocardless")
        return f"Exact Online: {exact}  ·  GoCardless: {gocardless}"

    def get_inlines(self, request, obj):
        return [MembershipInline] if obj is not None else []

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name in SCHEDULE_FORM_FIELDS:
            kwargs["form_class"] = SCHEDULE_FORM_FIELDS[db_field.name]
        elif db_field.name == "schedule_kind":
            kwargs["choices_form_class"] = ScheduleKindField
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "is_active" and field is not None:
            field.help_text = f"Untick to deactivate the company. {WHAT_DEACTIVATION_STOPS}"
        elif field is not None and db_field.name in HELP_IN_WORDS:
            field.help_text = HELP_IN_WORDS[db_field.name]
        return field

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            # Whoever creates a company administers it (a superuser today), so it is never
            # left without someone who can connect it and add its people.
            Membership.objects.get_or_create(
                user=request.user, tenant=obj, defaults={"role": Role.ADMIN}
            )


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    add_role = Role.ADMIN
    change_role = Role.ADMIN
    delete_role = Role.ADMIN
    list_display = ("user", "tenant", "role", "created_at")
    list_filter = ("role",)
    list_select_related = ("user", "tenant")
    search_fields = ("user__username", "user__email", "tenant__name")
    autocomplete_fields = ("tenant",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = membership_form_for(request, with_tenant=True)
        kwargs["fields"] = ("person", "tenant", "role")
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        return [(None, {"fields": ("person", "tenant", "role")})]
