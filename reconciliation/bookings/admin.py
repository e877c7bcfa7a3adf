"""Admin: booking settings (validated against Exact on save), bookings by state with
*Re-post*, and the reconciliation report page with CSV export."""

from __future__ import annotations

from datetime import date

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils import timezone
from django.utils.html import format_html

from core.audit import Actor
from core.money import from_minor_units
from exact.errors import ExactHostNotAllowed
from tenants.admin_base import TenantScopedAdmin
from tenants.models import Role, Tenant
from tenants.scoping import tenant_ids_with_role

from .config import booking_settings_validate
from .models import Booking, BookingSettings
from .posting import OUTCOME_WORDS, booking_repost
from .report import MISMATCH_KINDS, report_build
from .report_csv import report_csv


class BookingSettingsForm(forms.ModelForm):
    class Meta:
        model = BookingSettings
        fields = (
            "tenant",
            "enabled",
            "receipt_on",
            "clearing_journal_code",
            "bank_journal_code",
            "receivables_gl_code",
            "fees_gl_code",
            "app_fees_gl_code",
            "surcharges_gl_code",
            "fees_vat_code",
            "transfer_gl_code",
            "unmatched_gl_code",
        )

    def clean(self):
        cleaned = super().clean()
        if self.errors or not cleaned.get("tenant"):
            return cleaned
        # Validate against the tenant's Exact division: wrong codes or an unreachable Exact
        # become form errors (a clear message, never a 500).
        for name, value in cleaned.items():
            setattr(self.instance, name, value)
        try:
            booking_settings_validate(settings=self.instance)
        except ValidationError as exc:
            if hasattr(exc, "error_dict"):
                for field, errs in exc.error_dict.items():
                    self.add_error(field if field in self.fields else None, errs)
            else:
                self.add_error(None, exc)
        return cleaned


@admin.register(BookingSettings)
class BookingSettingsAdmin(TenantScopedAdmin):
    form = BookingSettingsForm
    add_role = Role.ADMIN
    change_role = Role.ADMIN
    delete_role = Role.ADMIN
    list_display = (
        "tenant",
        "enabled",
        "receipt_on",
        "clearing_journal_code",
        "bank_journal_code",
        "validated_at",
    )
    list_select_related = ("tenant",)
    readonly_fields = ("validated_at",)
    fieldsets = (
        (None, {"fields": ("tenant", "enabled", "receipt_on")}),
        ("Journals", {"fields": ("clearing_journal_code", "bank_journal_code")}),
        (
            "G/L accounts",
            {
                "fields": (
                    "receivables_gl_code",
                    "fees_gl_code",
                    "app_fees_gl_code",
                    "surcharges_gl_code",
                    "fees_vat_code",
                    "transfer_gl_code",
                    "unmatched_gl_code",
                )
            },
        ),
        ("Checked", {"fields": ("validated_at",)}),
    )


@admin.register(Booking)
class BookingAdmin(TenantScopedAdmin):
    """Bookings are written by event processing and the posting task only; operators may
    re-post (audited with their name); viewers read."""

    read_only = True
    action_roles = {"repost": Role.OPERATOR}
    audit_changes = False
    list_display = (
        "key",
        "tenant",
        "state",
        "amount",
        "booking_date",
        "attempts",
        "exact_entry",
        "next_retry_at",
        "short_error",
    )
    list_filter = ("state", "rule")
    list_select_related = ("tenant",)
    search_fields = ("key", "gocardless_id", "reference", "last_error")
    date_hierarchy = "booking_date"
    actions = ("repost",)
    readonly_fields = ("exact_entry", "audit_link")

    @admin.display(description="amount")
    def amount(self, obj):
        return f"{from_minor_units(obj.amount_minor, obj.currency)} {obj.currency}"

    @admin.display(description="Exact entry")
    def exact_entry(self, obj):
        if not obj.exact_entry_id:
            return "-"
        connection = getattr(obj.tenant, "exact_connection", None)
        if connection is None or not connection.division:
            return str(obj.exact_entry_number or obj.exact_entry_id)
        try:
            host = connection.api_base_url
        except ExactHostNotAllowed:  # an old custom host: show the number, link nowhere
            return str(obj.exact_entry_number or obj.exact_entry_id)
        # The entry in Exact's REST API (the web UI's URL for a bank entry is not documented).
        url = (
            f"{host}/api/v1/{connection.division}/financialtransaction/"
            f"BankEntries(guid'{obj.exact_entry_id}')?$expand=BankEntryLines"
        )
        return format_html('<a href="{}">{}</a>', url, obj.exact_entry_number or obj.exact_entry_id)

    @admin.display(description="last error")
    def short_error(self, obj):
        return (obj.last_error or "")[:80]

    @admin.display(description="audit")
    def audit_link(self, obj):
        url = reverse("admin:core_auditentry_changelist")
        return format_html('<a href="{}?q={}">audit entries</a>', url, obj.key)

    def has_repost_permission(self, request, obj=None):
        return self.has_action_permission(request, "repost", obj)

    @admin.action(description="Re-post selected bookings to Exact", permissions=("repost",))
    def repost(self, request, queryset):
        """Successes counted; every booking not posted gets a message saying why, in words."""
        actor = Actor.for_user(request.user)
        posted = 0
        for booking in queryset.select_related("tenant").order_by("id"):
            outcome = booking_repost(booking=booking, actor=actor)
            if outcome in ("posted", "found"):
                posted += 1
                continue
            words = OUTCOME_WORDS.get(outcome, outcome)
            level = messages.ERROR if outcome.startswith("failed") else messages.WARNING
            self.message_user(request, f"{booking.key}: not re-posted: {words}.", level)
        if posted:
            self.message_user(
                request, f"Re-posted to Exact: {posted} booking(s).", messages.SUCCESS
            )

    # --- the reconciliation report -----------------------------------------------------------
    def get_urls(self):
        return [
            path(
                "report/",
                self.admin_site.admin_view(self.report_view),
                name="bookings_booking_report",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "report_url": reverse("admin:bookings_booking_report"),
        }
        return super().changelist_view(request, extra_context)

    def report_view(self, request):
        tenant_ids = tenant_ids_with_role(request.user, Role.VIEWER, request=request)
        tenants = (
            Tenant.objects.all()
            if request.user.is_superuser
            else Tenant.objects.filter(pk__in=tenant_ids)
        )
        form = ReportForm(request.GET or None, tenants=tenants.order_by("name"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Reconciliation report",
            "form": form,
            "opts": self.model._meta,
        }
        if form.is_bound and form.is_valid():
            tenant = form.cleaned_data["tenant"]
            if not request.user.is_superuser and tenant.pk not in tenant_ids:
                raise PermissionDenied
            report = report_build(
                tenant=tenant,
                start=form.cleaned_data["start"],
                end=form.cleaned_data["end"],
                currency=form.cleaned_data["currency"],
            )
            if request.GET.get("format") == "csv":
                response = HttpResponse(
                    report_csv(report=report), content_type="text/csv; charset=utf-8"
                )
                name = f"reconciliation-{tenant.slug}-{report.start}-{report.end}.csv"
                response["Content-Disposition"] = f'attachment; filename="{name}"'
                return response
            context.update(
                report=report,
                totals=report.totals,
                kinds=MISMATCH_KINDS,
                csv_query=request.GET.urlencode() + "&format=csv",
                links=_links(),
            )
        return TemplateResponse(request, "bookings/admin/report.html", context)


def _links() -> dict:
    links = {
        "payment": reverse("admin:gocardless_payment_changelist"),
        "payout": reverse("admin:gocardless_payout_changelist"),
        "booking": reverse("admin:bookings_booking_changelist"),
        "audit": reverse("admin:core_auditentry_changelist"),
    }
    # The collection engine's attempts (searchable by their key), by URL only: bookings do
    # not depend on the collection app.
    try:
        links["attempt"] = reverse("admin:collection_collectionattempt_changelist")
    except NoReverseMatch:
        links["attempt"] = ""
    return links


def _month_start() -> date:
    return timezone.localdate().replace(day=1)


class ReportForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none())
    start = forms.DateField(initial=_month_start)
    end = forms.DateField(initial=timezone.localdate)
    currency = forms.CharField(max_length=3, initial="EUR")

    def __init__(self, *args, tenants, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tenant"].queryset = tenants

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("start") and cleaned.get("end") and cleaned["start"] > cleaned["end"]:
            raise ValidationError("The period starts after it ends.")
        if cleaned.get("currency"):
            cleaned["currency"] = cleaned["currency"].upper()
        return cleaned
