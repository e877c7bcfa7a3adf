"""List filters shared by the collection screens."""

from __future__ import annotations

from django.contrib import admin

from core.money import MINOR_UNIT_EXPONENT
from reconciliation.collection.admin.display import scheme_words
from reconciliation.collection.models import AttemptState, CollectionRun
from reconciliation.collection.selectors import attempts_needing_attention
from tenants.models import Role, Tenant
from tenants.scoping import tenant_ids_with_role


class TenantFilter(admin.SimpleListFilter):
    """By company, offering only the user's companies (a plain FK filter lists them all)."""

    title = "company"
    parameter_name = "tenant"

    def lookups(self, request, model_admin):
        tenants = Tenant.objects.order_by("name")
        if not request.user.is_superuser:
            tenants = tenants.filter(
                pk__in=tenant_ids_with_role(request.user, Role.VIEWER, request=request)
            )
        return [(str(t.pk), t.name) for t in tenants]

    def queryset(self, request, queryset):
        return queryset.filter(tenant_id=self.value()) if self.value() else queryset


class CurrencyFilter(admin.SimpleListFilter):
    """By currency, from the currencies GoCardless collects (core.money), not from a
    ``SELECT DISTINCT`` over every attempt on each page view (measured 15-150 ms at 100,000
    attempts, docs/admin-performance.md). Same parameter as Django's field filter, so links
    made for it keep working."""

    title = "currency"
    parameter_name = "currency__exact"

    def lookups(self, request, model_admin):
        return [(code, code) for code in sorted(MINOR_UNIT_EXPONENT)]

    def queryset(self, request, queryset):
        return queryset.filter(currency=self.value()) if self.value() else queryset


class RunFilter(admin.SimpleListFilter):
    """By run: the user's latest runs, plus the one chosen (links from a run's page)."""

    title = "run"
    parameter_name = "run"

    def lookups(self, request, model_admin):
        runs = CollectionRun.objects.select_related(None)
        if not request.user.is_superuser:
            runs = runs.filter(
                tenant_id__in=tenant_ids_with_role(request.user, Role.VIEWER, request=request)
            )
        chosen = list(runs.filter(pk=self.value())) if (self.value() or "").isdigit() else []
        latest = [r for r in runs[:10] if r not in chosen]
        return [(str(r.pk), str(r)) for r in chosen + latest]

    def queryset(self, request, queryset):
        value = self.value()
        if value and value.isdigit():
            return queryset.filter(run_id=int(value))
        return queryset


class AttemptStateFilter(admin.SimpleListFilter):
    """States in the order staff look at them: what needs a person first. *Needs attention*
    is ``selectors.attempts_needing_attention``, the definition every screen shares."""

    title = "state"
    parameter_name = "state"
    ORDER = (
        AttemptState.NEEDS_ATTENTION,
        AttemptState.RETRY_SCHEDULED,
        AttemptState.PAY_LINK_SENT,
        AttemptState.PENDING,
        AttemptState.SUBMITTED,
        AttemptState.CONFIRMED,
        AttemptState.PAID_OUT,
        AttemptState.PAID_BY_LINK,
        AttemptState.RETRIED,
        AttemptState.CANCELLED,
        AttemptState.SUPERSEDED,
        AttemptState.RESOLVED,
    )

    def lookups(self, request, model_admin):
        labels = dict(AttemptState.choices)
        return [("flagged", "Flagged (any state)")] + [(s.value, labels[s]) for s in self.ORDER]

    def queryset(self, request, queryset):
        if self.value() == "flagged":
            return queryset.exclude(flag="")
        if self.value() == AttemptState.NEEDS_ATTENTION:
            return attempts_needing_attention(queryset=queryset)
        if self.value():
            return queryset.filter(state=self.value())
        return queryset


class SchemeFilter(admin.SimpleListFilter):
    """By Direct Debit scheme, in words (Django's own filter lists ``sepa_core``); the
    parameter stays ``scheme__exact``."""

    title = "scheme"
    parameter_name = "scheme__exact"

    def lookups(self, request, model_admin):
        values = (
            model_admin.get_queryset(request)
            .order_by()
            .exclude(scheme="")
            .values_list("scheme", flat=True)
            .distinct()
        )
        return sorted(((v, scheme_words(v)) for v in values), key=lambda c: c[1])

    def queryset(self, request, queryset):
        return queryset.filter(scheme=self.value()) if self.value() else queryset
