"""Admin of re-post batches: read-only, per company; each batch's page shows its live progress
(mlc/progress.js polls ``<id>/progress/``) and, when its task was lost, *Run it again*."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core.display import local_time_display
from tenants.admin_base import TenantScopedAdmin
from tenants.models import Role

from .models import RepostBatch, RepostState
from .reposts import batch_lost, batch_progress, batch_status, repost_batch_rerun


@admin.register(RepostBatch)
class RepostBatchAdmin(TenantScopedAdmin):
    read_only = True
    audit_changes = False
    action_roles = {"rerun": Role.OPERATOR}
    list_display = ("queued", "tenant", "requested_by_name", "status", "progress", "failures")
    list_select_related = ("tenant",)
    fields = (
        "tenant",
        "requested_by_name",
        "status",
        "progress",
        "failures",
        "queued",
        "started",
        "finished",
        "times_queued",
        "results_table",
    )
    readonly_fields = fields
    change_form_template = "admin/bookings/repostbatch/change_form.html"

    @admin.display(description="requested", ordering="queued_at")
    def queued(self, obj):
        return local_time_display(obj.queued_at, obj.tenant)

    @admin.display(description="started")
    def started(self, obj):
        return local_time_display(obj.started_at, obj.tenant)

    @admin.display(description="finished")
    def finished(self, obj):
        return local_time_display(obj.finished_at, obj.tenant)

    @admin.display(description="status")
    def status(self, obj):
        return batch_status(obj)

    @admin.display(description="handled")
    def progress(self, obj):
        return f"{obj.done} of {obj.total}"

    @admin.display(description="not re-posted")
    def failures(self, obj):
        return str(obj.failed)

    @admin.display(description="times queued")
    def times_queued(self, obj):
        return str(obj.runs)

    @admin.display(description="bookings")
    def results_table(self, obj):
        if not obj.results:
            return "None handled yet."
        rows = []
        for result in obj.results:
            url = reverse("admin:bookings_booking_change", args=[result["booking"]])
            done = "Re-posted" if result["posted"] else "Not re-posted"
            why = result["words"][:1].upper() + result["words"][1:]
            rows.append((url, result["what"], done, why))
        return format_html(
            '<table class="mlc-lines"><thead><tr><th>Booking</th><th>Result</th><th>Why</th>'
            "</tr></thead><tbody>{}</tbody></table>",
            format_html_join(
                "", '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td></tr>', rows
            ),
        )

    def has_rerun_permission(self, request, obj=None):
        return self.has_action_permission(request, "rerun", obj)

    # --- progress JSON and run again --------------------------------------------------------
    def get_urls(self):
        return [
            path(
                "<int:object_id>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="bookings_repostbatch_progress",
            ),
            path(
                "<int:object_id>/run-again/",
                self.admin_site.admin_view(self.rerun_view),
                name="bookings_repostbatch_rerun",
            ),
            *super().get_urls(),
        ]

    def _batch(self, request, object_id) -> RepostBatch:
        """The batch if the user may see it (its company's members only), else 404."""
        try:
            pk = int(object_id)
        except (TypeError, ValueError):
            raise Http404("No such re-post batch.") from None
        batch = self.get_queryset(request).select_related("tenant").filter(pk=pk).first()
        if batch is None or not self.has_view_permission(request, batch):
            raise Http404("No such re-post batch.")
        return batch

    def progress_view(self, request, object_id):
        return JsonResponse(batch_progress(self._batch(request, object_id)))

    def rerun_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        batch = self._batch(request, object_id)
        if not self.has_rerun_permission(request, batch):
            raise PermissionDenied
        if repost_batch_rerun(batch=batch):
            self.message_user(
                request,
                "Queued again: the bookings it had not handled yet are re-posted now.",
                messages.INFO,
            )
        else:
            self.message_user(
                request,
                "Not queued again: it is finished or its worker is still at it.",
                messages.WARNING,
            )
        return HttpResponseRedirect(reverse("admin:bookings_repostbatch_change", args=[batch.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        batch = self._batch(request, object_id)
        lost = batch_lost(batch)
        running = batch.state != RepostState.FINISHED and not lost
        extra_context = {
            **(extra_context or {}),
            "batch_status": batch_status(batch),
            "batch": batch,
            "progress_url": (
                reverse("admin:bookings_repostbatch_progress", args=[batch.pk])
                if running
                else ""
            ),
            "rerun_url": (
                reverse("admin:bookings_repostbatch_rerun", args=[batch.pk])
                if lost and self.has_rerun_permission(request, batch)
                else ""
            ),
        }
        return super().change_view(request, object_id, form_url, extra_context)
