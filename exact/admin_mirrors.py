"""The read-only admin of Exact's mirrors and logs, in words (issue 15): accounts and
receivables with amounts in their currency and codes in words, sync runs with their state,
errors as sentences and live progress while one runs, webhook deliveries with the body
shown only folded away as the evidence of what Exact sent."""

from __future__ import annotations

import json

from django.contrib import admin
from django.http import Http404, JsonResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from core.display import NOTHING, local_date_display, local_time_display, money_display
from exact import words
from exact.models import ExactAccount, ExactReceivable, ExactWebhookDelivery, SyncRun
from tenants.admin_base import TenantScopedAdmin


def local(moment, obj) -> str:
    return local_time_display(moment, obj.tenant) if moment else NOTHING


def sync_queued_message(tenant) -> str:
    """*Sync now*'s answer, with the way to watch it: the sync runs of the company and the
    newest one (the queued run appears on top of that list when it starts)."""
    runs = reverse("admin:exact_syncrun_changelist") + f"?tenant__id__exact={tenant.pk}"
    newest = (SyncRun.objects.filter(tenant=tenant).order_by("-started_at", "-id")
              .values_list("pk", flat=True).first())
    if newest is None:
        return format_html('Sync queued for {}. Follow it on <a href="{}">its sync runs</a>.',
                           tenant, runs)
    return format_html(
        'Sync queued for {}. Follow it on <a href="{}">its sync runs</a>; the newest so far '
        'is <a href="{}">this one</a>.',
        tenant, runs, reverse("admin:exact_syncrun_change", args=[newest]))


class _MirrorAdmin(TenantScopedAdmin):
    read_only = True
    audit_changes = False
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return list(self.fields or [f.name for f in self.model._meta.fields])


class AccountStatusFilter(admin.SimpleListFilter):
    title = "status in Exact"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return list(words.ACCOUNT_STATUS_WORDS.items())

    def queryset(self, request, queryset):
        return queryset.filter(status=self.value()) if self.value() else queryset


@admin.register(ExactAccount)
class ExactAccountAdmin(_MirrorAdmin):
    list_display = ("code", "name", "email", "city", "country", "status_words", "blocked",
                    "tenant", "modified_local")
    list_filter = (AccountStatusFilter, "blocked", "country")
    search_fields = ("code", "name", "email", "exact_id")
    list_select_related = ("tenant",)
    fields = ("tenant", "code", "name", "email", "address_line1", "postcode", "city",
              "country", "language_words", "status_words", "blocked", "payment_condition_words",
              "currency", "modified_local", "synced_local", "exact_id", "raw_record")

    @admin.display(description="Status", ordering="status")
    def status_words(self, obj):
        return words.account_status_words(obj.status) or NOTHING

    @admin.display(description="Language")
    def language_words(self, obj):
        return words.language_words(obj.language) or NOTHING

    @admin.display(description="Payment condition")
    def payment_condition_words(self, obj):
        return words.payment_condition_words(obj.payment_condition) or NOTHING

    @admin.display(description="Changed in Exact", ordering="modified")
    def modified_local(self, obj):
        return local(obj.modified, obj)

    @admin.display(description="Copied from Exact")
    def synced_local(self, obj):
        return local(obj.synced_at, obj)

    @admin.display(description="Record")
    def raw_record(self, obj):
        return raw_details(obj.raw)


class ReceivableStatusFilter(admin.SimpleListFilter):
    title = "status in Exact"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [(str(code), text) for code, text in words.RECEIVABLE_STATUS_WORDS.items()]

    def queryset(self, request, queryset):
        return queryset.filter(status=int(self.value())) if self.value() else queryset


@admin.register(ExactReceivable)
class ExactReceivableAdmin(_MirrorAdmin):
    list_display = ("invoice_number", "kind", "account", "due", "amount_shown",
                    "outstanding_shown", "is_fully_paid", "tenant")
    list_filter = ("is_fully_paid", "kind", "currency", ReceivableStatusFilter)
    search_fields = ("=invoice_number", "account__name", "account__code", "exact_id")
    list_select_related = ("tenant", "account")
    date_hierarchy = None
    fields = ("tenant", "invoice_number", "kind", "account", "invoice_day", "due",
              "amount_shown", "outstanding_shown", "is_fully_paid", "status_words",
              "synced_local", "exact_id", "raw_record")

    @admin.display(description="Amount", ordering="amount")
    def amount_shown(self, obj):
        return money_display(obj.amount, obj.currency)

    @admin.display(description="Outstanding", ordering="outstanding")
    def outstanding_shown(self, obj):
        return money_display(obj.outstanding, obj.currency)

    @admin.display(description="Due", ordering="due_date")
    def due(self, obj):
        return local_date_display(obj.due_date)

    @admin.display(description="Invoice date", ordering="invoice_date")
    def invoice_day(self, obj):
        return local_date_display(obj.invoice_date)

    @admin.display(description="Status", ordering="status")
    def status_words(self, obj):
        return words.receivable_status_words(obj.status) or NOTHING

    @admin.display(description="Copied from Exact")
    def synced_local(self, obj):
        return local(obj.synced_at, obj)

    @admin.display(description="Record")
    def raw_record(self, obj):
        return raw_details(obj.raw)


def raw_details(raw) -> str:
    """A provider's record as received: folded away, marked as raw (not in words on purpose)."""
    if not raw:
        return NOTHING
    text = raw if isinstance(raw, str) else json.dumps(raw, indent=2, sort_keys=True,
                                                       default=str)
    return format_html('<details><summary>As received from Exact</summary>'
                       '<pre class="mlc-raw">{}</pre></details>', text)


# --- sync runs -------------------------------------------------------------------------------


def run_state(run: SyncRun) -> str:
    if run.finished_at is None:
        return "Running"
    return "Failed" if run.error else "Finished"


def run_elapsed(run: SyncRun) -> str:
    end = run.finished_at or timezone.now()
    seconds = max(0, int((end - run.started_at).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60} s"


def run_progress(run: SyncRun) -> dict:
    """What the page shows while a run works (mlc/progress.js's JSON)."""
    return {
        "done": run.finished_at is not None,
        "fields": {
            "state": run_state(run),
            "elapsed": run_elapsed(run),
            "pages": str(run.pages),
            "calls": str(run.calls),
            "created": str(run.created),
            "updated": str(run.updated),
            "deleted": str(run.deleted),
        },
    }


class SyncStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("running", "Running"), ("finished", "Finished"), ("failed", "Failed")]

    def queryset(self, request, queryset):
        if self.value() == "running":
            return queryset.filter(finished_at__isnull=True)
        if self.value() == "finished":
            return queryset.filter(finished_at__isnull=False, error="")
        if self.value() == "failed":
            return queryset.filter(finished_at__isnull=False).exclude(error="")
        return queryset


def _live(name: str, value) -> str:
    return format_html('<span data-progress-field="{}">{}</span>', name, value)


@admin.register(SyncRun)
class SyncRunAdmin(_MirrorAdmin):
    change_form_template = "exact/admin/syncrun_change_form.html"
    list_display = ("started", "tenant", "entity", "mode", "state", "pages", "calls", "created",
                    "updated", "deleted", "took", "error_words")
    list_filter = (SyncStateFilter, "entity", "mode")
    search_fields = ("trigger", "error")
    list_select_related = ("tenant",)
    fields = ("tenant", "entity", "mode", "trigger_words", "state_live", "started", "finished",
              "elapsed_live", "pages_live", "calls_live", "created_live", "updated_live",
              "deleted_live", "error_words")

    def get_urls(self):
        own = [path("<int:pk>/progress/", self.admin_site.admin_view(self.progress_view),
                    name="exact_syncrun_progress")]
        return own + super().get_urls()

    def progress_view(self, request, pk):
        run = self.get_queryset(request).filter(pk=pk).first()
        if run is None or not self.has_view_permission(request, run):
            raise Http404("No such sync run")
        return JsonResponse(run_progress(run))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_queryset(request).filter(pk=object_id).first()
        extra = dict(extra_context or {})
        if run is not None and run.finished_at is None:
            extra["progress_url"] = reverse("admin:exact_syncrun_progress", args=[run.pk])
        return super().change_view(request, object_id, form_url, extra_context=extra)

    @admin.display(description="Started", ordering="started_at")
    def started(self, obj):
        return local(obj.started_at, obj)

    @admin.display(description="Finished", ordering="finished_at")
    def finished(self, obj):
        return local(obj.finished_at, obj) if obj.finished_at else "Not yet"

    @admin.display(description="State")
    def state(self, obj):
        return run_state(obj)

    @admin.display(description="Took")
    def took(self, obj):
        return run_elapsed(obj) if obj.finished_at else "Running"

    @admin.display(description="Error", ordering="error")
    def error_words(self, obj):
        return words.error_sentence(obj.error) or NOTHING

    @admin.display(description="Started by")
    def trigger_words(self, obj):
        return words.error_sentence(obj.trigger).rstrip(".") or NOTHING

    # The figures that change while a run works carry data-progress-field (mlc/progress.js).
    @admin.display(description="State")
    def state_live(self, obj):
        return _live("state", run_state(obj))

    @admin.display(description="Time taken")
    def elapsed_live(self, obj):
        return _live("elapsed", run_elapsed(obj))

    @admin.display(description="Pages read")
    def pages_live(self, obj):
        return _live("pages", obj.pages)

    @admin.display(description="Calls to Exact")
    def calls_live(self, obj):
        return _live("calls", obj.calls)

    @admin.display(description="Created")
    def created_live(self, obj):
        return _live("created", obj.created)

    @admin.display(description="Updated")
    def updated_live(self, obj):
        return _live("updated", obj.updated)

    @admin.display(description="Deleted")
    def deleted_live(self, obj):
        return _live("deleted", obj.deleted)


# --- webhook deliveries ----------------------------------------------------------------------


@admin.register(ExactWebhookDelivery)
class ExactWebhookDeliveryAdmin(_MirrorAdmin):
    list_display = ("received", "tenant", "topic", "action", "key", "valid", "duplicate",
                    "response_status", "size", "source_address")
    list_filter = ("valid", "duplicate", "response_status", "topic")
    search_fields = ("key", "topic", "error", "source_address", "=body_sha256")
    list_select_related = ("tenant",)

    def get_readonly_fields(self, request, obj=None):
        shown = [f.name for f in self.model._meta.fields
                 if f.name not in ("body", "headers", "received_at", "error")]
        return ["received", *shown, "error_words", "as_received"]

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj)

    @admin.display(description="Received", ordering="received_at")
    def received(self, obj):
        if obj.tenant_id:
            return local(obj.received_at, obj)
        return f"{obj.received_at:%a} {obj.received_at.day} {obj.received_at:%b %Y, %H:%M} UTC"

    @admin.display(description="Error")
    def error_words(self, obj):
        return words.error_sentence(obj.error) or NOTHING

    @admin.display(description="Body and headers")
    def as_received(self, obj):
        # Whatever arrived, shown as text: undecodable bytes replaced, control characters
        # escaped (a NUL or an escape sequence must not reach the page raw). Folded away and
        # marked raw: this is the evidence of what Exact sent, not a page in words.
        text = bytes(obj.body or b"").decode("utf-8", errors="replace")
        text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
        if obj.body_truncated:
            text += f" … (first {len(obj.body or b'')} of {obj.size} bytes)"
        headers = json.dumps(obj.headers or {}, indent=2, sort_keys=True, default=str)
        return format_html(
            '<details><summary>As received from Exact</summary>'
            '<pre class="mlc-raw">{}</pre><pre class="mlc-raw">{}</pre></details>',
            text, headers)

