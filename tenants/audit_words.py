"""The audit trail in words (issue 15): what an entry's action, actor, object and change diff
say to finance staff, instead of ``collection.attempt_paid_out`` and ``{"collection_hour": 6}``.

Every action the code writes has a sentence here (``grep 'action="'`` and ``audit_record(``
across the project); the generic ones the admin writes for any model (``<model>.created``,
``.changed``, ``.deleted``, ``.status_changed``) are built from the model's verbose name. A
code nobody listed still becomes a sentence (``core.display.sentence``), never the raw code.

Models are looked up through the app registry by name (``customers.customerlink``), so this
module, like the rest of tenants/, imports no app above it.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.dateparse import parse_date, parse_datetime

from core.display import (
    FAILURE_CAUSE_WORDS,
    NOTHING,
    PAYMENT_STATUS_WORDS,
    local_date_display,
    local_time_display,
    money_display,
    sentence,
)
from tenants.models import WEEKDAY_NAMES

# Actions as sentences: what happened, said the way finance staff say it.
ACTION_WORDS: dict[str, str] = {
    # companies and their people (tenants/)
    "tenant.created": "Company created",
    "tenant.changed": "Company settings changed",
    "tenant.activated": "Company activated",
    "tenant.deactivated": "Company deactivated",
    "membership.created": "Person added to the company",
    "membership.changed": "Person's role changed",
    "membership.deleted": "Person removed from the company",
    "secrets.reencrypted": "Stored secrets re-encrypted with the current key",
    # Exact Online
    "exact_connection.created": "Exact Online connection created",
    "exact_connection.changed": "Exact Online connection changed",
    "exact_connection.consent_received": "Exact Online consent received",
    "exact_connection.connected": "Exact Online connected",
    "exact_connection.connect_refused": "Exact Online connection refused",
    "exact_connection.disconnected": "Exact Online disconnected",
    "exact_connection.needs_reauth": "Exact Online needs a new consent",
    "exact_connection.paused": "Exact Online paused (daily API budget spent)",
    "exact_connection.restored": "Exact Online working again",
    "exact_sync.requested": "Exact Online sync requested",
    # GoCardless
    "gocardlessconnection.created": "GoCardless connection created",
    "gocardlessconnection.changed": "GoCardless connection changed",
    "gocardlessconnection.oauth_connected": "GoCardless connected (via GoCardless' sign-in)",
    "gocardlessconnection.token_connected": "GoCardless connected (with an access token)",
    "gocardlessconnection.connect_refused": "GoCardless connection refused",
    "gocardlessconnection.needs_reauth": "GoCardless needs to be connected again",
    "gocardlessconnection.status_changed": "GoCardless connection status changed",
    "gocardlessevent.reprocess_requested": "GoCardless event to be processed again",
    "gocardlessevent.gave_up": "GoCardless event given up after repeated failures",
    "payment.status_changed": "Payment status changed at GoCardless",
    "mandate.status_changed": "Mandate status changed at GoCardless",
    "payout.status_changed": "Payout status changed at GoCardless",
    "refund.status_changed": "Refund status changed at GoCardless",
    # customers and mandates
    "customers.matched": "Customers matched between Exact Online and GoCardless",
    "customerlink.matched": "Customer matched",
    "customerlink.confirmed": "Customer match confirmed by a person",
    "customerlink.ambiguous": "Several GoCardless customers match: a person must choose",
    "customerlink.relinked": "Customer linked to another GoCardless customer",
    "customerlink.unlinked": "Customer unlinked",
    "customerlink.collection_stopped": "Collection stopped for this customer",
    "customerlink.collection_resumed": "Collection resumed for this customer",
    "customerlink.mandate_active": "Mandate active: the customer can be collected from",
    "customerlink.mandate_replaced": "Mandate replaced by a newer one",
    "customerlink.mandate_switched": "Collecting with another mandate of the customer",
    "customerlink.mandate_transferred": "Mandate moved to another bank account",
    "customerlink.invitation_skipped": "Mandate invitation not sent",
    "customerlink.pushed_to_gocardless": "Customer details sent to GoCardless",
    "customerlink.push_failed": "Sending customer details to GoCardless failed",
    "customerlink.exact_reflected": "Mandate written into Exact Online",
    "customerlink.exact_reflection_failed": "Writing the mandate into Exact Online failed",
    "mandateinvitation.created": "Mandate invitation created",
    "mandateinvitation.sent": "Mandate invitation e-mailed",
    "mandateinvitation.reminded": "Mandate invitation reminder e-mailed",
    "mandateinvitation.send_failed": "Mandate invitation e-mail could not be sent",
    "mandateinvitation.completed": "Mandate invitation completed: mandate set up",
    "mandateinvitation.expired": "Mandate invitation expired",
    "mandateinvitation.cancelled": "Mandate invitation cancelled",
    "mandateinvitation.failed": "Mandate invitation failed",
    "customersettings.created": "Customer and mandate settings created",
    "customersettings.changed": "Customer and mandate settings changed",
    # collection
    "collection.preview_created": "Collection preview prepared for approval",
    "collection.preview_approved": "Collection preview approved",
    "collection.approval_not_run": "Approved collection not run",
    "collection.run_queued": "Collection run queued",
    "collection.run_finished": "Collection run finished",
    "collection.run_abandoned": "Collection run abandoned",
    "collection.attempt_created": "Collection attempt prepared",
    "collection.payment_created": "Payment requested at GoCardless",
    "collection.attempt_refused": "Payment refused by GoCardless",
    "collection.attempt_redated": "Charge date moved",
    "collection.attempt_confirmed": "Payment collected",
    "collection.attempt_paid_out": "Payment paid out",
    "collection.attempt_failed_success_plus": "Payment failed; GoCardless Success+ retries it",
    "collection.attempt_retry_scheduled": "Payment failed; retry scheduled",
    "collection.attempt_retry_requested": "Retry requested by a person",
    "collection.attempt_retried": "Payment tried again",
    "collection.attempt_needs_attention": "Payment needs attention",
    "collection.attempt_resolved": "Marked as resolved by a person",
    "collection.attempt_cancelled": "Collection attempt cancelled",
    "collection.attempt_superseded": "Collection attempt superseded (invoice changed in Exact)",
    "collection.needs_attention": "Payments need attention",
    "collection.attention_digest": "Needs-attention summary e-mailed",
    # bookings
    "booking.created": "Booking prepared for Exact Online",
    "booking.confirmed": "Booked in Exact Online",
    "booking.failed": "Booking in Exact Online failed",
    "booking.gave_up": "Booking in Exact Online given up",
    "booking.repost_requested": "Booking to be sent to Exact Online again",
    "bookingsettings.created": "Booking settings created",
    "bookingsettings.changed": "Booking settings changed",
}

# The generic actions every admin save and every mirrored status change writes.
GENERIC_VERBS = {
    "created": "created",
    "changed": "changed",
    "deleted": "deleted",
    "status_changed": "status changed",
}

# Who did it, for the labels the code gives schedules and system work.
ACTOR_WORDS: dict[str, str] = {
    "bookings.sweep": "Booking schedule",
    "collection.run": "Collection schedule",
    "customers.invitations": "Mandate invitation schedule",
    "customers.match": "Customer matching schedule",
    "customers.register": "Customer registration schedule",
    "exact-keepalive": "Exact Online keep-alive schedule",
    "gocardless.events_poll": "GoCardless event check",
    "alerts": "Alerts",
    "bookings": "Bookings",
    "collection": "Collection",
    "collection.exact-check": "Collection check against Exact Online",
    "customers.exact_reflection": "Writing mandates into Exact Online",
    "demo_run": "Demo story",
    "demo_setup": "Demo set-up",
    "exact": "Exact Online",
    "exact-oauth-callback": "Exact Online sign-in",
    "exact.sync": "Exact Online sync",
    "gocardless": "GoCardless",
    "secrets_reencrypt": "Secret re-encryption",
}

# A code-like token: snake_case or dotted (``refer_to_payer``, ``billing_requests.fulfilled``).
_CODE = re.compile(r"(?<![\w@/.:-])[a-z][a-z0-9]*(?:[._][a-z0-9]+)+(?![\w@/:-])")


# Fields whose values are codes (``payment_status``: ``confirmed``), and what a code looks like.
_CODE_KEY = re.compile(r"(status|state|cause|scheme|kind|mode|outcome|reason|type|action)$")
_TOKEN = re.compile(r"[a-z][a-z0-9_]*")


def model_of(object_type: str):
    """``customers.customerlink`` → the model, or None."""
    if not object_type or "." not in object_type:
        return None
    try:
        return apps.get_model(object_type)
    except (LookupError, ValueError):
        return None


def _model_by_name(model_name: str):
    for model in apps.get_models():
        if model._meta.model_name == model_name:
            return model
    return None


def action_words(action: str) -> str:
    """``collection.attempt_paid_out`` → ``Payment paid out``."""
    if not action:
        return ""
    if action in ACTION_WORDS:
        return ACTION_WORDS[action]
    subject, _, verb = action.rpartition(".")
    if subject and verb in GENERIC_VERBS:
        model = _model_by_name(subject)
        name = str(model._meta.verbose_name) if model else sentence(subject)
        return sentence(f"{name} {GENERIC_VERBS[verb]}")
    return sentence(action.replace(".", " "))


def object_words(object_type: str) -> str:
    """``collection.collectionattempt`` → ``Collection attempt``."""
    model = model_of(object_type)
    if model is not None:
        return sentence(str(model._meta.verbose_name))
    return sentence(object_type.replace(".", " ")) if object_type else ""


def actor_words(actor_type: str, label: str, user=None) -> str:
    """A person by their username; a schedule or the system by what it is."""
    if user is not None:
        return user.get_username()
    if label in ACTOR_WORDS:
        return ACTOR_WORDS[label]
    return text_words(label) if label else sentence(actor_type)


def code_words(code: str) -> str:
    """One code in words: a GoCardless status or cause, an action, or a sentence."""
    if code in PAYMENT_STATUS_WORDS:
        return PAYMENT_STATUS_WORDS[code]
    if code in FAILURE_CAUSE_WORDS:
        return FAILURE_CAUSE_WORDS[code]
    if code in ACTION_WORDS:
        return ACTION_WORDS[code]
    return sentence(code.replace(".", " ")).lower()


def text_words(text: str) -> str:
    """A free text (an entry's message) with any code in it put into words:
    ``Payment failed (refer_to_payer)`` → ``Payment failed (Refused by the customer's bank:
    ask the customer)``."""
    if not text:
        return ""
    def shown(match) -> str:
        code = match[0]
        # A dotted word without an underscore (a host name, "e.g") is not one of our codes.
        return code_words(code) if "_" in code or code in ACTION_WORDS else code

    return _CODE.sub(shown, text)


# --- the change diff -----------------------------------------------------------------------


def _field(model, key: str):
    if model is None:
        return None
    try:
        return model._meta.get_field(key)
    except FieldDoesNotExist:
        for field in model._meta.concrete_fields:
            if field.attname == key:
                return field
    return None


def field_label(model, key: str) -> str:
    """The model field's verbose name (``collection_hour`` → ``Collection hour``)."""
    field = _field(model, key)
    if field is not None and getattr(field, "verbose_name", None):
        return sentence(str(field.verbose_name))
    return sentence(key)


def _amount_text(value, snapshot: dict, tenant) -> str:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    currency = snapshot.get("currency")
    if currency:
        return money_display(amount, currency)
    currencies = list(getattr(tenant, "currencies", None) or [])
    if currencies:
        # A company-wide amount (the minimum per invoice) holds in every currency collected.
        return " / ".join(money_display(amount, code) for code in currencies)
    return money_display(amount, "")


def value_words(model, key: str, value, *, snapshot: dict, tenant=None) -> str:
    """One value of a snapshot as a person reads it."""
    field = _field(model, key)
    if value is None or value == "":
        return NOTHING
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if field is not None and field.choices:
        shown = dict(field.flatchoices).get(value)
        if shown is not None:
            return str(shown)
    if isinstance(field, models.DecimalField) or (
        field is None and key.endswith("amount") and isinstance(value, str | int)
    ):
        return _amount_text(value, snapshot, tenant)
    if isinstance(field, models.DateTimeField) and isinstance(value, str):
        moment = parse_datetime(value)
        if moment is not None and tenant is not None:
            return local_time_display(moment, tenant)
    if isinstance(field, models.DateField) and isinstance(value, str):
        day = parse_date(value)
        if day is not None:
            return local_date_display(day)
    if isinstance(value, dt.datetime) and tenant is not None:
        return local_time_display(value, tenant)
    if key == "schedule_weekdays" and isinstance(value, list):
        # Stored as Python's weekday numbers (0 = Monday): a person reads the names.
        return ", ".join(
            WEEKDAY_NAMES[day] if isinstance(day, int) and 0 <= day <= 6 else str(day)
            for day in value
        ) or NOTHING
    if isinstance(value, list):
        return ", ".join(value_words(None, "", item, snapshot={}) for item in value) or NOTHING
    if isinstance(value, dict):
        return "; ".join(
            f"{sentence(str(k))}: {value_words(None, str(k), v, snapshot=value, tenant=tenant)}"
            for k, v in value.items()
        ) or NOTHING
    if isinstance(value, str):
        if _CODE_KEY.search(key) and _TOKEN.fullmatch(value):
            return code_words(value)[:1].upper() + code_words(value)[1:]
        return text_words(value)
    return str(value)


def changes(entry, tenant=None) -> list[dict]:
    """The entry's before/after as rows ``{"label", "before", "after"}``, labelled by the
    fields' verbose names, values in words."""
    model = model_of(entry.object_type)
    before = entry.before if isinstance(entry.before, dict) else {}
    after = entry.after if isinstance(entry.after, dict) else {}
    tenant = tenant if tenant is not None else entry.tenant
    rows = []
    for key in dict.fromkeys([*before, *after]):
        rows.append({
            "label": field_label(model, key),
            "before": (value_words(model, key, before[key], snapshot=before, tenant=tenant)
                       if key in before else ""),
            "after": (value_words(model, key, after[key], snapshot=after, tenant=tenant)
                      if key in after else ""),
        })
    return rows
