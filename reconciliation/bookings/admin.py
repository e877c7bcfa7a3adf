"""Admin: booking settings (validated against Exact on save), bookings in words by state and
rule with *Re-post* (queued as a batch: admin_batches.py), and the reconciliation report page
with CSV export (admin_report.py)."""

from __future__ import annotations

import json
import uuid
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core.display import local_date_display, local_time_display, money_display
from core.money import from_minor_units
from exact.errors import ExactHostNotAllowed
from exact.models import ExactAccount
from gocardless.admin_filters import date_period_filter
from tenants.admin_base import TenantScopedAdmin
from tenants.models import Role

from .admin_batches import RepostBatchAdmin  # noqa: F401 (registers the batches' admin)
from .admin_plans import PlanPaymentMatchAdmin  # noqa: F401 (registers the plan payments')
from .admin_report import report_view
from .config import booking_settings_validate
from .display import (
    RULE_WORDS,
    STATE_WORDS,
    body_lines,
    facts_rows,
    journal_of,
    rule_words,
    state_words,
)
from .models import Booking, BookingSettings, BookingState
from .reposts import repost_batches_create


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
        "checked",
    )
    list_select_related = ("tenant",)
    readonly_fields = ("checked",)
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
        ("Checked", {"fields": ("checked",)}),
    )

    @admin.display(description="checked against Exact", ordering="validated_at")
    def checked(self, obj):
        if obj is None or obj.pk is None or not obj.validated_at:
            return "Not yet"
        return local_time_display(obj.validated_at, obj.tenant)




class StateFilter(admin.SimpleListFilter):
    """The booking's state in words (``state__exact``, the parameter other pages link with)."""

    title = "state"
    parameter_name = "state__exact"

    def lookups(self, request, model_admin):
        return [(code, label) for code, label in STATE_WORDS.items()]

    def queryset(self, request, queryset):
        return queryset.filter(state=self.value()) if self.value() else queryset


class RuleFilter(admin.SimpleListFilter):
    """What kind of entry, in words."""

    title = "kind of entry"
    parameter_name = "rule__exact"

    def lookups(self, request, model_admin):
        return [(code, label) for code, label in RULE_WORDS.items()]

    def queryset(self, request, queryset):
        return queryset.filter(rule=self.value()) if self.value() else queryset


@admin.register(Booking)
class BookingAdmin(TenantScopedAdmin):
    """Bookings are written by event processing and the posting task only; operators may
    re-post (queued, audited with their name); viewers read. Everything in words: what the
    entry is, its state, amounts with their currency, times in the company's zone."""

    read_only = True
    action_roles = {"repost": Role.OPERATOR}
    audit_changes = False
    list_display = (
        "what",
        "tenant",
        "state_text",
        "amount",
        "date",
        "exact_entry_number_text",
        "attempts",
        "next_try",
        "short_error",
    )
    list_filter = (StateFilter, RuleFilter, date_period_filter("booking_date", "booking date"))
    list_select_related = ("tenant",)
    # Nothing on the list reads the whole table but the list and its count
    # (docs/admin-performance.md): fixed filter choices, no date_hierarchy (MIN/MAX and
    # DISTINCT over the table on every view), ids searched whole (``__exact``: an index lookup;
    # ``=key`` would be ``iexact``, ``UPPER(...)`` over every row).
    search_fields = ("gocardless_id__exact", "key__exact", "reference__exact")
    list_per_page = 50
    actions = ("repost",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "what_linked",
                    "tenant",
                    "rule_text",
                    "state_text",
                    "amount",
                    "date",
                    "after_link",
                )
            },
        ),
        (
            "In Exact",
            {"fields": ("exact_entry", "journal", "reference", "confirmed", "found_text")},
        ),
        (
            "Posting",
            {"fields": ("attempts", "next_try", "claimed", "unknown_text", "last_error")},
        ),
        ("What happened at GoCardless", {"fields": ("facts_table",)}),
        ("The entry's lines", {"fields": ("lines_table",)}),
        ("History", {"fields": ("created", "updated", "audit_link")}),
    )
    readonly_fields = tuple(name for _, opts in fieldsets for name in opts["fields"])

    # --- columns and fields in words -------------------------------------------------------
    @admin.display(description="booking", ordering="key")
    def what(self, obj):
        return obj.sentence()

    @admin.display(description="booking")
    def what_linked(self, obj):
        kind, ident = obj.subject()
        url = reverse(f"admin:gocardless_{kind}_changelist") + f"?q={ident}"
        sentence = obj.sentence()
        if ident and ident in sentence:
            before, after = sentence.split(ident, 1)
            return format_html('{}<a href="{}">{}</a>{}', before, url, ident, after)
        return format_html('{} (<a href="{}">{}</a>)', sentence, url, ident)

    @admin.display(description="kind of entry", ordering="rule")
    def rule_text(self, obj):
        return rule_words(obj.rule)

    @admin.display(description="state", ordering="state")
    def state_text(self, obj):
        return state_words(obj.state)

    @admin.display(description="amount", ordering="amount_minor")
    def amount(self, obj):
        return money_display(from_minor_units(obj.amount_minor, obj.currency), obj.currency)

    @admin.display(description="booking date", ordering="booking_date")
    def date(self, obj):
        return local_date_display(obj.booking_date)

    @admin.display(description="Exact entry", ordering="exact_entry_number")
    def exact_entry_number_text(self, obj):
        if obj.exact_entry_number:
            return f"Entry {obj.exact_entry_number}"
        return "Not yet" if obj.state != BookingState.CONFIRMED else "Confirmed"

    @admin.display(description="next try", ordering="next_retry_at")
    def next_try(self, obj):
        if obj.state == BookingState.CONFIRMED:
            return "None: confirmed"
        if obj.state == BookingState.GAVE_UP:
            return "None: only Re-post sends it again"
        if not obj.next_retry_at:
            return "With the next posting round"
        return local_time_display(obj.next_retry_at, obj.tenant)

    @admin.display(description="last error")
    def short_error(self, obj):
        return (obj.last_error or "")[:80]

    @admin.display(description="follows")
    def after_link(self, obj):
        if not obj.after_id:
            return "Nothing: posted on its own"
        url = reverse("admin:bookings_booking_change", args=[obj.after_id])
        return format_html(
            '<a href="{}">{}</a> ({})', url, obj.after.sentence(), state_words(obj.after.state)
        )

    @admin.display(description="Exact entry")
    def exact_entry(self, obj):
        if not obj.exact_entry_id:
            return "Not in Exact yet"
        label = f"Entry {obj.exact_entry_number}" if obj.exact_entry_number else "The entry"
        connection = getattr(obj.tenant, "exact_connection", None)
        if connection is None or not connection.division:
            return label
        try:
            host = connection.api_base_url
        except ExactHostNotAllowed:  # an old custom host: show the number, link nowhere
            return label
        # The entry in Exact's REST API (the web UI's URL for a bank entry is not documented).
        url = (
            f"{host}/api/v1/{connection.division}/financialtransaction/"
            f"BankEntries(guid'{obj.exact_entry_id}')?$expand=BankEntryLines"
        )
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description="journal")
    def journal(self, obj):
        code = journal_of(obj)
        return f"Journal {code}" if code else "Chosen when it is posted"

    @admin.display(description="confirmed")
    def confirmed(self, obj):
        return local_time_display(obj.confirmed_at, obj.tenant)

    @admin.display(description="how it was confirmed")
    def found_text(self, obj):
        if obj.state != BookingState.CONFIRMED:
            return "Not confirmed yet"
        if obj.found_by_lookup:
            return "Found in Exact by its reference (an earlier post had gone through)"
        return "Exact answered the post with the entry"

    @admin.display(description="claimed by a worker")
    def claimed(self, obj):
        return local_time_display(obj.claimed_at, obj.tenant)

    @admin.display(description="outcome of the last post")
    def unknown_text(self, obj):
        if obj.outcome_unknown:
            return "Not known: Exact is asked for the entry before it is sent again"
        return "Known"

    @admin.display(description="created")
    def created(self, obj):
        return local_time_display(obj.created_at, obj.tenant)

    @admin.display(description="last changed")
    def updated(self, obj):
        return local_time_display(obj.updated_at, obj.tenant)

    @admin.display(description="facts")
    def facts_table(self, obj):
        rows = facts_rows(obj, account_names=_account_names(obj))
        if not rows:
            return "Nothing recorded"
        return format_html(
            '<table class="mlc-lines">{}</table>',
            format_html_join("", '<tr><th scope="row">{}</th><td>{}</td></tr>', rows),
        )

    @admin.display(description="lines")
    def lines_table(self, obj):
        if not obj.request_body:
            return "Not built yet: the lines are made from the facts when it is posted."
        settings = BookingSettings.objects.filter(tenant_id=obj.tenant_id).first()
        gl = (settings.resolved.get("gl") or {}) if settings else {}
        lines = body_lines(
            obj,
            gl_codes={guid: code for code, guid in gl.items()},
            account_names=_account_names(obj),
        )
        table = format_html(
            '<table class="mlc-lines"><thead><tr><th>Account</th><th>Description</th>'
            "<th>Amount</th><th>VAT</th></tr></thead><tbody>{}</tbody></table>",
            format_html_join(
                "",
                '<tr><td>{}</td><td>{}</td><td class="mlc-amount">{}</td><td>{}</td></tr>',
                ((x["account"], x["description"], x["amount"], x["vat"]) for x in lines),
            ),
        )
        raw = json.dumps(obj.request_body, indent=2, ensure_ascii=False)
        return format_html(
            '{}<details><summary>As sent to Exact</summary><pre class="mlc-raw">{}</pre>'
            "</details>",
            table,
            raw,
        )

    @admin.display(description="audit trail")
    def audit_link(self, obj):
        url = reverse("admin:core_auditentry_changelist")
        query = urlencode({"object_type": obj._meta.label_lower, "q": obj.pk})
        return format_html('<a href="{}?{}">What happened to it</a>', url, query)

    # --- re-post: queued, never inside the request -----------------------------------------
    def has_repost_permission(self, request, obj=None):
        return self.has_action_permission(request, "repost", obj)

    @admin.action(description="Re-post selected bookings to Exact", permissions=("repost",))
    def repost(self, request, queryset):
        """One batch per company, re-posted by a background task; the person is taken to the
        batch's page, which shows how far it is."""
        batches = repost_batches_create(bookings=queryset, user=request.user)
        total = sum(b.total for b in batches)
        if len(batches) == 1:
            self.message_user(
                request,
                f"Re-posting {total} booking(s) to Exact in the background; this page shows "
                "how far it is.",
                messages.INFO,
            )
            return HttpResponseRedirect(
                reverse("admin:bookings_repostbatch_change", args=[batches[0].pk])
            )
        self.message_user(
            request,
            f"Re-posting {total} booking(s) of {len(batches)} companies to Exact in the "
            "background; each company's batch below shows how far it is.",
            messages.INFO,
        )
        return HttpResponseRedirect(reverse("admin:bookings_repostbatch_changelist"))

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

    def report_view(self, request):
        return report_view(self, request)

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "report_url": reverse("admin:bookings_booking_report"),
            "batches_url": reverse("admin:bookings_repostbatch_changelist"),
        }
        return super().changelist_view(request, extra_context)


def _account_names(booking) -> dict[str, str]:
    """Names of the Exact accounts a booking names (from the mirror), by guid."""
    ids = {str((booking.facts or {}).get("account") or "")}
    for line in (booking.request_body or {}).get("BankEntryLines") or []:
        ids.add(str(line.get("Account") or ""))
    ids = {i for i in ids if _is_uuid(i)}
    if not ids:
        return {}
    rows = ExactAccount.objects.filter(tenant_id=booking.tenant_id, exact_id__in=ids)
    return {str(a.exact_id): a.name for a in rows if a.name}


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
