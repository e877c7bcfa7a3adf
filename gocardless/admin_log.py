"""Admin of the inbound log: webhook deliveries and the events they (or polling) brought.

Neither is ever edited here. The events admin is not ``read_only`` only because
TenantScopedAdmin then refuses every non-view action; it blocks add/change/delete itself and
offers one action, "Reprocess selected events", to operators. What an event says is shown in
words (what happened, why, to which resource, linked); the body GoCardless sent stays
available verbatim, folded away.
"""

from __future__ import annotations

import re

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from core.audit import Actor
from core.display import FAILURE_CAUSE_WORDS, NOTHING, sentence, words
from gocardless.admin_display import (
    WordsLabelMixin,
    coded,
    in_words,
    mirror_link,
    moment,
    printable,
    raw_block,
)
from gocardless.admin_filters import EventWhatFilter, words_filter
from gocardless.events_replay import events_reprocess
from gocardless.models import EventOutcome, GoCardlessEvent, WebhookDelivery
from gocardless.words import (
    DETAIL_ORIGIN_WORDS,
    RESOURCE_TYPE_WORDS,
    SCHEME_WORDS,
    event_action_words,
)
from tenants.admin_base import TenantScopedAdmin
from tenants.models import Role

# An event's ``links`` key → the mirror admin it points to (others are shown as plain ids).
LINK_MODELS = {
    "payment": "payment",
    "mandate": "mandate",
    "new_mandate": "mandate",
    "previous_mandate": "mandate",
    "customer": "customer",
    "customer_bank_account": "customerbankaccount",
    "new_customer_bank_account": "customerbankaccount",
    "previous_customer_bank_account": "customerbankaccount",
    "payout": "payout",
    "refund": "refund",
    "billing_request": "billingrequest",
    "mandate_request_mandate": "mandate",
    "subscription": "subscription",
    "instalment_schedule": "instalmentschedule",
}
RESOURCE_MODELS = {
    "payments": "payment", "mandates": "mandate", "payouts": "payout", "refunds": "refund",
    "customers": "customer", "customer_bank_accounts": "customerbankaccount",
    "billing_requests": "billingrequest",
    "subscriptions": "subscription", "instalment_schedules": "instalmentschedule",
}
# ``details`` values that are codes (``bank_account_closed``): shown in words.
CODE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")
DETAIL_TABLES = {"cause": FAILURE_CAUSE_WORDS, "origin": DETAIL_ORIGIN_WORDS,
                 "scheme": SCHEME_WORDS}
DETAIL_LABELS = {"cause": "Why", "origin": "Who", "description": "What GoCardless says",
                 "reason_code": "Bank's reason code", "scheme": "Scheme",
                 "not_retried_reason": "Not retried because", "will_attempt_retry":
                 "GoCardless will retry", "bank_account_id": "Bank account"}


def _tenant(obj):
    return obj.tenant if obj.tenant_id else None


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantScopedAdmin):
    read_only = True
    audit_changes = False
    list_display = ("received", "tenant", "endpoint", "valid", "response_status",
                    "body_size", "source_address", "event_count", "unrouted_count")
    list_filter = ("valid", "response_status", "endpoint")
    list_select_related = ("tenant",)
    date_hierarchy = "received_at"
    fields = ("tenant", "endpoint", "received", "valid", "response_status", "error",
              "event_count", "unrouted_count", "source_address", "body_size", "body_sha256",
              "headers_raw", "body_text")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).defer("body")  # up to 1 MiB each

    @admin.display(description="Received", ordering="received_at")
    def received(self, obj):
        return moment(obj.received_at, _tenant(obj))

    @admin.display(description="Headers")
    def headers_raw(self, obj):
        return raw_block(obj.headers, label="Headers as received")

    @admin.display(description="Body")
    def body_text(self, obj):
        raw = bytes(obj.body or b"")
        text = raw[:20000].decode("utf-8", errors="replace").replace("\x00", "\\u0000")
        kept = "" if len(raw) >= obj.body_size else format_html(
            "<p>The first {} of {} bytes: a refused delivery keeps metadata only.</p>",
            len(raw), obj.body_size)
        return format_html("{}{}", kept, raw_block(text))


class ProcessingFilter(admin.SimpleListFilter):
    title = "processing"
    parameter_name = "processing"

    def lookups(self, request, model_admin):
        return (("processed", "Processed"), ("pending", "Pending"), ("failed", "Failed"),
                ("quarantined", "Quarantined (never processed)"))

    def queryset(self, request, queryset):
        if self.value() == "processed":
            return queryset.filter(processed_at__isnull=False).exclude(
                outcome=EventOutcome.QUARANTINED)
        if self.value() == "quarantined":
            return queryset.filter(outcome=EventOutcome.QUARANTINED)
        if self.value() == "pending":
            return queryset.filter(processed_at__isnull=True, failed_at__isnull=True)
        if self.value() == "failed":
            return queryset.filter(processed_at__isnull=True, failed_at__isnull=False)
        return queryset


def _detail_value(key: str, value):
    if key in DETAIL_TABLES and isinstance(value, str):
        return in_words(value, DETAIL_TABLES[key])
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, str) and CODE.match(value):
        return coded(sentence(value), value)
    return printable(value) if value not in (None, "") else NOTHING


@admin.register(GoCardlessEvent)
class GoCardlessEventAdmin(WordsLabelMixin, TenantScopedAdmin):
    read_only = True  # events change only through processing; operators may reprocess them
    action_roles = {"reprocess": Role.OPERATOR}
    audit_changes = False
    list_display = ("event_id", "tenant", "resource", "what_happened", "resource_link",
                    "created", "source", "processed", "outcome_words", "attempts", "failed")
    list_filter = (ProcessingFilter, EventWhatFilter,
                   words_filter("resource_type", "resource type", RESOURCE_TYPE_WORDS),
                   "outcome", "source")
    list_select_related = ("tenant",)
    # Ids are typed whole: exact lookups, an index each (docs/admin-performance.md).
    search_fields = ("event_id__exact", "resource_id__exact")
    list_per_page = 50
    actions = ("reprocess",)
    fieldsets = (
        (None, {"fields": ("event_id", "tenant", "resource", "what_happened", "resource_link",
                           "why", "related")}),
        ("Processing", {"fields": ("source", "created", "received", "processed", "outcome_words",
                                   "attempts", "failed", "next_attempt", "error")}),
        ("As received", {"fields": ("raw_payload",)}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [name for _title, opts in self.fieldsets for name in opts["fields"]]

    def object_label(self, obj) -> str:
        return (f"{obj.event_id}: {words(obj.resource_type, RESOURCE_TYPE_WORDS)}, "
                f"{event_action_words(obj.resource_type, obj.action)}")

    @admin.display(description="Resource", ordering="resource_type")
    def resource(self, obj):
        return in_words(obj.resource_type, RESOURCE_TYPE_WORDS)

    @admin.display(description="What happened", ordering="action")
    def what_happened(self, obj):
        return coded(event_action_words(obj.resource_type, obj.action), obj.action)

    @admin.display(description="Resource id", ordering="resource_id")
    def resource_link(self, obj):
        return mirror_link(RESOURCE_MODELS.get(obj.resource_type, ""), obj.tenant_id,
                           obj.resource_id)

    @admin.display(description="Details")
    def why(self, obj):
        details = obj.details or {}
        if not details:
            return NOTHING
        return format_html(
            "<dl class='mlc-facts'>{}</dl>",
            format_html_join("", "<dt>{}</dt><dd>{}</dd>", (
                (DETAIL_LABELS.get(key) or sentence(printable(key)), _detail_value(key, value))
                for key, value in sorted(details.items(), key=str))),
        )

    @admin.display(description="Linked to")
    def related(self, obj):
        links = obj.links or {}
        if not links:
            return NOTHING
        return format_html(
            "<dl class='mlc-facts'>{}</dl>",
            format_html_join("", "<dt>{}</dt><dd>{}</dd>", (
                (sentence(printable(key)),
                 mirror_link(LINK_MODELS.get(key, ""), obj.tenant_id, printable(value)))
                for key, value in sorted(links.items(), key=str))),
        )

    @admin.display(description="Outcome", ordering="outcome")
    def outcome_words(self, obj):
        return coded(obj.get_outcome_display(), obj.outcome) if obj.outcome else NOTHING

    @admin.display(description="Created at GoCardless", ordering="created_at")
    def created(self, obj):
        return moment(obj.created_at, obj.tenant)

    @admin.display(description="Received")
    def received(self, obj):
        return moment(obj.received_at, obj.tenant)

    @admin.display(description="Processed", ordering="processed_at")
    def processed(self, obj):
        return moment(obj.processed_at, obj.tenant)

    @admin.display(description="Failed", ordering="failed_at")
    def failed(self, obj):
        return moment(obj.failed_at, obj.tenant)

    @admin.display(description="Next attempt")
    def next_attempt(self, obj):
        return moment(obj.next_attempt_at, obj.tenant)

    @admin.display(description="Event")
    def raw_payload(self, obj):
        return raw_block(obj.raw)

    def has_reprocess_permission(self, request, obj=None):
        return self.has_action_permission(request, "reprocess", obj)

    @admin.action(description="Reprocess selected events", permissions=("reprocess",))
    def reprocess(self, request, queryset):
        counts = events_reprocess(
            event_pks=list(queryset.values_list("pk", flat=True)),
            actor=Actor.for_user(request.user),
        )
        summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing to do"
        self.message_user(request, f"Reprocessed: {summary}.",
                          messages.WARNING if counts.get("failed") else messages.SUCCESS)

