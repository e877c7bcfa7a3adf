"""The runs screen: the list (with what needs attention one click away) and a run's page
with its outcome and lines. Collect now and Approve are ``run_actions.py``'s."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html

from core.display import NOTHING
from reconciliation.collection.admin.display import money_totals, run_link, when
from reconciliation.collection.admin.filters import TenantFilter
from reconciliation.collection.admin.progress import run_next_step
from reconciliation.collection.admin.run_actions import RunActionsMixin
from reconciliation.collection.models import (
    CollectionAttempt,
    CollectionRun,
    RunKind,
    SkipReason,
)
from reconciliation.collection.selectors import NEEDS_ATTENTION_QUERY, attempts_needing_attention
from tenants.admin_base import TenantScopedAdmin
from tenants.models import Role

# The run page lists this many lines; the full list is the item changelist (paginated).
RUN_PAGE_LINES = 200


@admin.register(CollectionRun)
class CollectionRunAdmin(RunActionsMixin, TenantScopedAdmin):
    """Runs are created by the services only; operators collect now and approve previews."""

    read_only = True
    audit_changes = False  # never saved here; the services audit what they do
    action_roles = {"approve": Role.OPERATOR, "collect": Role.OPERATOR}
    list_display = (
        "run",
        "tenant",
        "kind",
        "trigger",
        "state",
        "as_of",
        "counts",
        "totals_display",
        "submitted_display",
        "triggered_by",
        "approved_by",
        "started",
    )
    list_filter = ("kind", "state", "trigger", TenantFilter)
    list_select_related = ("tenant", "triggered_by", "approved_by")
    date_hierarchy = "started_at"
    actions = ("approve",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "tenant",
                    "kind",
                    "trigger",
                    "state",
                    "as_of",
                    "triggered_by",
                    "preview_link",
                    "live_runs_links",
                    "approved_by",
                    "approved",
                    "started",
                    "finished",
                    "error",
                )
            },
        ),
        (
            "Outcome",
            {
                "fields": (
                    "evaluated",
                    "to_collect",
                    "skipped",
                    "planned_display",
                    "submitted",
                    "errors",
                    "totals_display",
                    "submitted_display",
                    "reasons",
                )
            },
        ),
        ("Lines", {"fields": ("lines",)}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [name for _, opts in self.fieldsets for name in opts["fields"]] + ["next_step"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or not run_next_step(obj):
            return fieldsets
        # A live run that ended without finishing: what to do next, under its error.
        (name, first), *rest = fieldsets
        fields = list(first["fields"])
        fields.insert(fields.index("error") + 1, "next_step")
        return [(name, {**first, "fields": fields}), *rest]

    # --- columns ----------------------------------------------------------------------------
    @admin.display(description="Run", ordering="pk")
    def run(self, obj):
        return f"#{obj.pk}"

    @admin.display(description="Evaluated / collect / skip / sent / errors")
    def counts(self, obj):
        return (
            f"{obj.evaluated} / {obj.to_collect} / {obj.skipped} / {obj.submitted} / {obj.errors}"
        )

    @admin.display(description="What next")
    def next_step(self, obj):
        return run_next_step(obj) or NOTHING

    @admin.display(description="Started", ordering="started_at")
    def started(self, obj):
        return when(obj.started_at, obj.tenant)

    @admin.display(description="Finished", ordering="finished_at")
    def finished(self, obj):
        return when(obj.finished_at, obj.tenant)

    @admin.display(description="Approved at", ordering="approved_at")
    def approved(self, obj):
        return when(obj.approved_at, obj.tenant)

    @admin.display(description="Payments to send")
    def planned_display(self, obj):
        return obj.planned if obj.kind == RunKind.LIVE else NOTHING

    @admin.display(description="To collect")
    def totals_display(self, obj):
        return money_totals(obj.totals)

    @admin.display(description="Submitted")
    def submitted_display(self, obj):
        return money_totals(obj.submitted_totals) if obj.kind == RunKind.LIVE else NOTHING

    @admin.display(description="Approved preview")
    def preview_link(self, obj):
        return run_link(obj.preview) if obj.preview_id else NOTHING

    @admin.display(description="Submitted by")
    def live_runs_links(self, obj):
        runs = list(obj.live_runs.all()) if obj.pk else []
        return format_html(", ".join(["{}"] * len(runs)), *map(run_link, runs)) if runs else NOTHING

    @admin.display(description="Lines by decision and reason")
    def reasons(self, obj):
        rows = (
            obj.items.values("decision", "reason")
            .annotate(n=Count("pk"))
            .order_by("decision", "reason")
        )
        labels = dict(SkipReason.choices)
        base = reverse("admin:collection_collectionitem_changelist")
        return render_to_string(
            "admin/collection/run_reasons.html",
            {
                "rows": [
                    {
                        "label": labels.get(r["reason"], "Collect"),
                        "count": r["n"],
                        "url": f"{base}?run={obj.pk}&decision__exact={r['decision']}"
                        + (f"&reason__exact={r['reason']}" if r["reason"] else ""),
                    }
                    for r in rows
                ]
            },
        )

    @admin.display(description="Lines")
    def lines(self, obj):
        items = list(obj.items.all()[:RUN_PAGE_LINES])
        return render_to_string(
            "admin/collection/run_lines.html",
            {
                "items": items,
                "total": obj.evaluated,
                "more": obj.evaluated > len(items),
                "all_url": reverse("admin:collection_collectionitem_changelist") + f"?run={obj.pk}",
            },
        )

    def changelist_view(self, request, extra_context=None):
        # What needs a person is one click away from the runs (scoped like the attempts list).
        attention = attempts_needing_attention(
            queryset=self.scope_queryset(request, CollectionAttempt.objects.all())
        ).count()
        extra = {
            "can_collect_now": self.has_collect_permission(request),
            "needs_attention": attention,
            "needs_attention_url": reverse("admin:collection_collectionattempt_changelist")
            + f"?{NEEDS_ATTENTION_QUERY}",
        }
        return super().changelist_view(request, {**extra, **(extra_context or {})})
