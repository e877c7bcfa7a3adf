"""Admin of the mirrors: GoCardless' current state of customers, bank accounts, mandates,
payments, payouts (and their items), refunds and mandate requests.

Never edited here. Every page reads as finance staff speak: statuses, schemes and item types
in words (the code in a tooltip), amounts with their currency, moments in the company's zone,
and related objects as links: payment → mandate → customer, payout item → payment / refund /
payout. A link to another mirror goes through ``…/gc/<company>/<GoCardless id>/``, a
redirect, so that a list links every row without a query per row. The JSON GoCardless sent
stays on the page, folded away under "As received from GoCardless".
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from core.display import NOTHING, local_date_display, money_display, words
from gocardless.admin_display import (
    WordsLabelMixin,
    change_link,
    in_words,
    item_amount,
    item_units,
    item_vat,
    metadata_list,
    minor_amount,
    mirror_link,
    mirror_url,
    moment,
    raw_block,
)
from gocardless.admin_filters import (
    CurrencyFilter,
    PlanFilter,
    date_period_filter,
    words_filter,
)
from gocardless.models import (
    BillingRequest,
    Customer,
    CustomerBankAccount,
    InstalmentSchedule,
    Mandate,
    Payment,
    Payout,
    PayoutItem,
    PayoutItemsState,
    Refund,
    Subscription,
)
from gocardless.plan_display import SCHEDULE_LABEL, SUBSCRIPTION_LABEL, plan_link
from gocardless.words import (
    PAYOUT_ITEM_TYPE_WORDS,
    SCHEME_WORDS,
    STATUS_WORDS,
)
from tenants.admin_base import TenantScopedAdmin


def _changelist(model_name: str, **params) -> str:
    return f"{reverse(f'admin:gocardless_{model_name}_changelist')}?{urlencode(params)}"


class PageChangeList(ChangeList):
    """Lets the admin read what a page of rows needs in one query per kind of thing (e.g. the
    invoices of the payments shown), never one per row."""

    def get_results(self, request):
        super().get_results(request)
        self.model_admin.page_prefetch(request, list(self.result_list))


class MirrorAdmin(TenantScopedAdmin):
    read_only = True
    audit_changes = False
    list_select_related = ("tenant",)
    search_fields = ("gocardless_id",)
    #: Filters (words filters for codes); fields with choices or booleans may stay plain.
    base_filters: tuple = ()
    #: The change page: fields of this admin (display methods, never a bare model field).
    detail_fields: tuple = ()
    timeline_fields = ("created", "fetched", "synced")

    def get_list_filter(self, request):
        return self.base_filters

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": ("gocardless_id", "tenant", "status_words", *self.detail_fields)}),
            ("When", {"fields": self.timeline_fields}),
            ("Metadata and payload", {"fields": ("metadata_words", "raw_payload")}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return [name for _title, opts in self.get_fieldsets(request, obj)
                for name in opts["fields"]]

    def get_changelist(self, request, **kwargs):
        return PageChangeList

    def page_prefetch(self, request, rows: list) -> None:
        """Read what the rows of one page need (subclasses), in a fixed number of queries."""

    # --- ``gc/<company>/<GoCardless id>/``: a mirror by its GoCardless id -------------------
    def get_urls(self):
        opts = self.model._meta
        own = [path("gc/<int:tenant_id>/<str:gocardless_id>/",
                    self.admin_site.admin_view(self.by_id_view),
                    name=f"{opts.app_label}_{opts.model_name}_by_id")]
        return own + super().get_urls()

    def by_id_view(self, request, tenant_id, gocardless_id):
        """The mirror's page; when it is not mirrored (or not the user's), the list searched
        for the id, which then says there is nothing to show."""
        opts = self.model._meta
        pk = (self.get_queryset(request).filter(tenant_id=tenant_id, gocardless_id=gocardless_id)
              .values_list("pk", flat=True).first())
        if pk is None:
            return HttpResponseRedirect(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
                + f"?q={gocardless_id}")
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[pk]))

    # --- shared columns -------------------------------------------------------------------
    @admin.display(description="Status", ordering="status")
    def status_words(self, obj):
        return in_words(obj.status, STATUS_WORDS.get(self.model._meta.model_name, {}))

    @admin.display(description="Created at GoCardless", ordering="gocardless_created_at")
    def created(self, obj):
        return moment(obj.gocardless_created_at, obj.tenant)

    @admin.display(description="Fetched from GoCardless")
    def fetched(self, obj):
        return moment(obj.fetched_at, obj.tenant)

    @admin.display(description="Last updated here", ordering="synced_at")
    def synced(self, obj):
        return moment(obj.synced_at, obj.tenant)

    @admin.display(description="Metadata")
    def metadata_words(self, obj):
        return metadata_list(obj.metadata)

    @admin.display(description="Payload")
    def raw_payload(self, obj):
        return raw_block(obj.raw)


@admin.register(Customer)
class CustomerAdmin(MirrorAdmin):
    list_display = ("gocardless_id", "tenant", "name", "email", "created", "synced")
    search_fields = ("gocardless_id", "name", "email")
    detail_fields = ("name", "email", "mandates", "bank_accounts")

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        # A customer has no status at GoCardless.
        first = [f for f in fieldsets[0][1]["fields"] if f != "status_words"]
        return [(None, {"fields": first}), *fieldsets[1:]]

    @admin.display(description="Mandates")
    def mandates(self, obj):
        found = Mandate.objects.filter(tenant_id=obj.tenant_id, customer_id=obj.gocardless_id)
        return _id_links("mandate", obj.tenant_id, found) or NOTHING

    @admin.display(description="Bank accounts")
    def bank_accounts(self, obj):
        found = CustomerBankAccount.objects.filter(tenant_id=obj.tenant_id,
                                                   customer_id=obj.gocardless_id)
        return _id_links("customerbankaccount", obj.tenant_id, found) or NOTHING


def _id_links(model_name: str, tenant_id: int, rows):
    return format_html_join(", ", "{}", (
        (mirror_link(model_name, tenant_id, gid),)
        for gid in rows.order_by("gocardless_id").values_list("gocardless_id", flat=True)))


@admin.register(CustomerBankAccount)
class CustomerBankAccountAdmin(MirrorAdmin):
    list_display = ("gocardless_id", "tenant", "customer", "account_holder_name", "currency",
                    "status_words")
    search_fields = ("gocardless_id", "customer_id")
    base_filters = ("enabled", "currency")
    detail_fields = ("customer", "account_holder_name", "currency")

    @admin.display(description="Customer", ordering="customer_id")
    def customer(self, obj):
        return mirror_link("customer", obj.tenant_id, obj.customer_id)


@admin.register(Mandate)
class MandateAdmin(MirrorAdmin):
    list_display = ("gocardless_id", "tenant", "status_words", "scheme_words", "customer",
                    "next_charge", "synced")
    search_fields = ("gocardless_id", "customer_id", "reference")
    base_filters = (words_filter("status", "status", STATUS_WORDS["mandate"]),
                    words_filter("scheme", "scheme", SCHEME_WORDS))
    detail_fields = ("scheme_words", "reference", "customer", "bank_account", "next_charge",
                     "payments", "plans")

    @admin.display(description="Scheme", ordering="scheme")
    def scheme_words(self, obj):
        return in_words(obj.scheme, SCHEME_WORDS)

    @admin.display(description="Customer", ordering="customer_id")
    def customer(self, obj):
        return mirror_link("customer", obj.tenant_id, obj.customer_id)

    @admin.display(description="Bank account")
    def bank_account(self, obj):
        return mirror_link("customerbankaccount", obj.tenant_id, obj.customer_bank_account_id)

    @admin.display(description="Next possible charge date", ordering="next_possible_charge_date")
    def next_charge(self, obj):
        return local_date_display(obj.next_possible_charge_date)

    @admin.display(description="Payments")
    def payments(self, obj):
        url = _changelist("payment", mandate_id__exact=obj.gocardless_id,
                          tenant__id__exact=obj.tenant_id)
        return format_html('<a href="{}">Payments on this mandate</a>', url)

    @admin.display(description="Subscriptions and instalment plans")
    def plans(self, obj):
        links = []
        for model, kind, label in ((Subscription, "subscription", SUBSCRIPTION_LABEL),
                                   (InstalmentSchedule, "instalmentschedule", SCHEDULE_LABEL)):
            rows = model.objects.filter(tenant_id=obj.tenant_id, mandate_id=obj.gocardless_id)
            for gid, name in rows.order_by("gocardless_id").values_list("gocardless_id", "name"):
                url = mirror_url(kind, obj.tenant_id, gid)
                links.append((url, f"{label}: {name or gid}"))
        if not links:
            return "None"
        return format_html_join(", ", '<a href="{}">{}</a>', links)


# The statuses a payment has at GoCardless (PAYMENT_STATUS_WORDS also names payment events
# people read as a status: late_failure_settled, chargeback_settled, ...).
PAYMENT_STATUSES = ("pending_customer_approval", "pending_submission", "submitted", "confirmed",
                    "paid_out", "cancelled", "customer_approval_denied", "failed", "charged_back")


class MandateColumns:
    """A mirror that names a mandate (payments, subscriptions, instalment schedules): its
    mandate and that mandate's customer as links."""

    @admin.display(description="Mandate", ordering="mandate_id")
    def mandate(self, obj):
        return mirror_link("mandate", obj.tenant_id, obj.mandate_id)

    @admin.display(description="GoCardless customer")
    def customer(self, obj):
        customer_id = (Mandate.objects.filter(tenant_id=obj.tenant_id,
                                              gocardless_id=obj.mandate_id)
                       .values_list("customer_id", flat=True).first())
        return mirror_link("customer", obj.tenant_id, customer_id)


@admin.register(Payment)
class PaymentAdmin(MandateColumns, MirrorAdmin):
    """The busiest mirror (100,000s of rows a company): nothing on the list reads the whole
    table but the list and its count (docs/admin-performance.md): the filters offer fixed
    choices, the charge date is a filter of fixed periods (no ``date_hierarchy``: MIN/MAX and
    DISTINCT over the table on every view), ids are searched whole (``__exact``: an index
    lookup; ``=field``, Django's ``iexact``, compares ``UPPER(...)`` and reads every row)."""

    list_display = ("gocardless_id", "tenant", "status_words", "amount_display", "charge_day",
                    "mandate", "payout", "synced")
    search_fields = ("gocardless_id__exact", "mandate_id__exact", "payout_id__exact",
                     "reference__exact")
    base_filters = (words_filter("status", "status", STATUS_WORDS["payment"],
                                 codes=PAYMENT_STATUSES),
                    CurrencyFilter, date_period_filter("charge_date", "charge date"),
                    PlanFilter)
    list_per_page = 50
    detail_fields = ("amount_display", "refunded_display", "charge_day", "reference", "plan",
                     "mandate", "customer", "payout", "refunds")

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return minor_amount(obj.amount, obj.currency)

    @admin.display(description="Created by")
    def plan(self, obj):
        """The GoCardless plan that created it (it carries none of our metadata), else us or
        someone else at GoCardless."""
        if obj.subscription_id or obj.instalment_schedule_id:
            return plan_link(obj, getattr(obj, "mlc_plan_names", None))
        return "Not a subscription or instalment plan" if obj.raw else NOTHING

    @admin.display(description="Refunded")
    def refunded_display(self, obj):
        return minor_amount(obj.amount_refunded, obj.currency)

    @admin.display(description="Charge date", ordering="charge_date")
    def charge_day(self, obj):
        return local_date_display(obj.charge_date)

    @admin.display(description="Payout", ordering="payout_id")
    def payout(self, obj):
        return mirror_link("payout", obj.tenant_id, obj.payout_id)

    @admin.display(description="Refunds")
    def refunds(self, obj):
        found = Refund.objects.filter(tenant_id=obj.tenant_id, payment_id=obj.gocardless_id)
        return _id_links("refund", obj.tenant_id, found) or NOTHING


@admin.register(Payout)
class PayoutAdmin(MirrorAdmin):
    list_display = ("gocardless_id", "tenant", "status_words", "amount_display", "fees_display",
                    "arrival_day", "reference")
    search_fields = ("gocardless_id", "reference")
    base_filters = (words_filter("status", "status", STATUS_WORDS["payout"]), "currency")
    detail_fields = ("amount_display", "fees_display", "arrival_day", "reference", "items",
                     "items_state_words")

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return minor_amount(obj.amount, obj.currency)

    @admin.display(description="Fees deducted", ordering="deducted_fees")
    def fees_display(self, obj):
        return minor_amount(obj.deducted_fees, obj.currency)

    @admin.display(description="Arrival date", ordering="arrival_date")
    def arrival_day(self, obj):
        return local_date_display(obj.arrival_date)

    @admin.display(description="Items")
    def items(self, obj):
        url = _changelist("payoutitem", payout__id__exact=obj.pk)
        return format_html('<a href="{}">The items of this payout</a>', url)

    @admin.display(description="Its lines at GoCardless")
    def items_state_words(self, obj):
        return payout_items_state_words(obj)


def payout_items_state_words(payout) -> str:
    """Whether the payout's lines (payout items) are here, in words."""
    if payout.items_state == PayoutItemsState.UNAVAILABLE:
        return ("No longer available: GoCardless keeps a payout's lines for six months only "
                "(410 Gone); only its amount and the fees it deducted are known")
    if payout.items_state == PayoutItemsState.FETCHED:
        return f"Fetched {moment(payout.items_checked_at, payout.tenant)}"
    return "Not fetched yet"


# GoCardless' payout item types ("refund" is the older name of "payment_refunded": the same
# words, so offered once).
PAYOUT_ITEM_TYPES = tuple(code for code in PAYOUT_ITEM_TYPE_WORDS if code != "refund")


@admin.register(PayoutItem)
class PayoutItemAdmin(WordsLabelMixin, TenantScopedAdmin):
    read_only = True
    audit_changes = False
    list_display = ("position", "payout_link", "type_words", "amount_display", "vat_display",
                    "payment", "refund")
    list_display_links = ("position",)
    list_filter = (words_filter("item_type", "type", PAYOUT_ITEM_TYPE_WORDS,
                                codes=PAYOUT_ITEM_TYPES),)
    list_select_related = ("tenant", "payout")
    search_fields = ("payout__gocardless_id", "payment_id", "refund_id")
    fields = ("payout_link", "position", "type_words", "amount_display", "vat_display",
              "payment", "mandate", "refund", "raw_payload")
    readonly_fields = fields

    def object_label(self, obj) -> str:
        return (f"{words(obj.item_type, PAYOUT_ITEM_TYPE_WORDS)} "
                f"{item_amount(obj.amount, obj.payout.currency)} in payout "
                f"{obj.payout.gocardless_id}")

    @admin.display(description="Payout", ordering="payout")
    def payout_link(self, obj):
        return change_link(obj.payout, obj.payout.gocardless_id)

    @admin.display(description="Type", ordering="item_type")
    def type_words(self, obj):
        return in_words(obj.item_type, PAYOUT_ITEM_TYPE_WORDS)

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return item_amount(obj.amount, obj.payout.currency)

    @admin.display(description="Of which VAT")
    def vat_display(self, obj):
        vat = item_vat(obj.taxes)
        if not vat:
            return NOTHING
        return money_display(item_units(vat, obj.payout.currency), obj.payout.currency)

    @admin.display(description="Payment", ordering="payment_id")
    def payment(self, obj):
        return mirror_link("payment", obj.tenant_id, obj.payment_id)

    @admin.display(description="Mandate")
    def mandate(self, obj):
        return mirror_link("mandate", obj.tenant_id, obj.mandate_id)

    @admin.display(description="Refund", ordering="refund_id")
    def refund(self, obj):
        return mirror_link("refund", obj.tenant_id, obj.refund_id)

    @admin.display(description="As received from GoCardless")
    def raw_payload(self, obj):
        return raw_block(obj.raw)


@admin.register(Refund)
class RefundAdmin(MirrorAdmin):
    list_display = ("gocardless_id", "tenant", "status_words", "amount_display", "payment",
                    "reference", "created")
    search_fields = ("gocardless_id", "payment_id", "reference")
    base_filters = (words_filter("status", "status", STATUS_WORDS["refund"]), "currency")
    detail_fields = ("amount_display", "reference", "payment", "mandate")

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj):
        return minor_amount(obj.amount, obj.currency)

    @admin.display(description="Payment", ordering="payment_id")
    def payment(self, obj):
        return mirror_link("payment", obj.tenant_id, obj.payment_id)

    @admin.display(description="Mandate")
    def mandate(self, obj):
        return mirror_link("mandate", obj.tenant_id, obj.mandate_id)


@admin.register(BillingRequest)
class BillingRequestAdmin(MirrorAdmin):
    list_display = ("gocardless_id", "tenant", "status_words", "customer", "mandate", "created")
    search_fields = ("gocardless_id", "customer_id", "mandate_id")
    base_filters = (words_filter("status", "status", STATUS_WORDS["billingrequest"]),)
    detail_fields = ("customer", "mandate", "authorisation_url")

    @admin.display(description="Customer", ordering="customer_id")
    def customer(self, obj):
        return mirror_link("customer", obj.tenant_id, obj.customer_id)

    @admin.display(description="Mandate", ordering="mandate_id")
    def mandate(self, obj):
        return mirror_link("mandate", obj.tenant_id, obj.mandate_id)
