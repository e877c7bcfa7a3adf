"""The reconciliation report page of the bookings admin, and its CSV export."""

from __future__ import annotations

from datetime import date

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from tenants.models import Role, Tenant
from tenants.scoping import tenant_ids_with_role

from .report import report_build
from .report_csv import report_csv
from .report_words import report_page


def report_view(model_admin, request):
    tenant_ids = tenant_ids_with_role(request.user, Role.VIEWER, request=request)
    tenants = (
        Tenant.objects.all()
        if request.user.is_superuser
        else Tenant.objects.filter(pk__in=tenant_ids)
    )
    form = ReportForm(request.GET or None, tenants=tenants.order_by("name"))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": "Reconciliation report",
        "form": form,
        "opts": model_admin.model._meta,
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
        links = _links()
        context.update(
            report=report,
            page=report_page(report),
            csv_query=request.GET.urlencode() + "&format=csv",
            links=links,
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
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none(), label="Company")
    start = forms.DateField(initial=_month_start, label="From")
    end = forms.DateField(initial=timezone.localdate, label="To (inclusive)")
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
