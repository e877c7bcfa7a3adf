"""Mirrors: map GoCardless's JSON for a resource onto our row (columns + raw JSON).

``mirror_lock`` takes a row lock on the mirror (creating a placeholder row when it is new),
so that everything about one resource (re-fetch, compare, update, signal) is serialised
across processes: two different events for one payment processed at once cannot both see
the old status and both signal, and a slower, older fetch cannot overwrite a newer one.
"""

from __future__ import annotations

from datetime import date, datetime

from django.db import models
from django.utils.dateparse import parse_datetime

from core.money import minor_units_from_api, parse_minor_string
from gocardless.models import (
    BillingRequest,
    Customer,
    CustomerBankAccount,
    InstalmentSchedule,
    Mandate,
    Mirror,
    Payment,
    Payout,
    PayoutItem,
    Refund,
    Subscription,
)

MIRROR_MODELS: dict[str, type[Mirror]] = {
    "customers": Customer,
    "customer_bank_accounts": CustomerBankAccount,
    "mandates": Mandate,
    "payments": Payment,
    "payouts": Payout,
    "refunds": Refund,
    "billing_requests": BillingRequest,
    "subscriptions": Subscription,
    "instalment_schedules": InstalmentSchedule,
}

# A plan's payment that has not been collected yet: what "upcoming" means for an instalment
# schedule (GoCardless lists no upcoming payments for those; a subscription's come with it).
PAYMENT_NOT_YET_COLLECTED = ("pending_customer_approval", "pending_submission", "submitted")


def _date(value) -> date | None:
    return date.fromisoformat(value) if value else None


def _datetime(value) -> datetime | None:
    return parse_datetime(value) if value else None


def _links(data: dict) -> dict:
    return data.get("links") or {}


def _customer(data: dict, links: dict) -> dict:
    name = data.get("company_name") or " ".join(
        p for p in (data.get("given_name"), data.get("family_name")) if p
    )
    return {"email": data.get("email") or "", "name": name[:300]}


def _customer_bank_account(data: dict, links: dict) -> dict:
    return {
        "status": "enabled" if data.get("enabled", True) else "disabled",
        "customer_id": links.get("customer", ""),
        "currency": data.get("currency") or "",
        "account_holder_name": (data.get("account_holder_name") or "")[:300],
        "enabled": bool(data.get("enabled", True)),
    }


def _mandate(data: dict, links: dict) -> dict:
    return {
        "scheme": data.get("scheme") or "",
        "reference": data.get("reference") or "",
        "customer_id": links.get("customer", ""),
        "customer_bank_account_id": links.get("customer_bank_account", ""),
        "next_possible_charge_date": _date(data.get("next_possible_charge_date")),
    }


def _payment(data: dict, links: dict) -> dict:
    return {
        "amount": minor_units_from_api(data.get("amount")),
        "amount_refunded": minor_units_from_api(data.get("amount_refunded")),
        "currency": data.get("currency") or "",
        "charge_date": _date(data.get("charge_date")),
        "reference": data.get("reference") or "",
        "mandate_id": links.get("mandate", ""),
        "payout_id": links.get("payout") or "",
        "subscription_id": links.get("subscription") or "",
        "instalment_schedule_id": links.get("instalment_schedule") or "",
    }


def _payout(data: dict, links: dict) -> dict:
    return {
        "amount": minor_units_from_api(data.get("amount")),
        "deducted_fees": minor_units_from_api(data.get("deducted_fees")),
        "currency": data.get("currency") or "",
        "arrival_date": _date(data.get("arrival_date")),
        "reference": data.get("reference") or "",
    }


def _refund(data: dict, links: dict) -> dict:
    return {
        "amount": minor_units_from_api(data.get("amount")),
        "currency": data.get("currency") or "",
        "reference": data.get("reference") or "",
        "payment_id": links.get("payment", ""),
        "mandate_id": links.get("mandate", ""),
    }


def _billing_request(data: dict, links: dict) -> dict:
    return {
        "customer_id": links.get("customer", ""),
        "mandate_id": links.get("mandate_request_mandate", ""),
    }


def _upcoming(entries) -> list[dict]:
    """GoCardless' forecast, as {"charge_date": "YYYY-MM-DD", "amount": minor units}."""
    return [
        {"charge_date": str(entry.get("charge_date") or ""),
         "amount": minor_units_from_api(entry.get("amount"))}
        for entry in entries or [] if isinstance(entry, dict)
    ]


def _subscription(data: dict, links: dict) -> dict:
    interval = data.get("interval")
    return {
        "mandate_id": links.get("mandate", ""),
        "amount": minor_units_from_api(data.get("amount")),
        "currency": data.get("currency") or "",
        "name": (data.get("name") or "")[:300],
        "interval_unit": data.get("interval_unit") or "",
        "interval": interval if isinstance(interval, int) and interval > 0 else 1,
        "day_of_month": data.get("day_of_month"),
        "start_date": _date(data.get("start_date")),
        "end_date": _date(data.get("end_date")),
        "upcoming_payments": _upcoming(data.get("upcoming_payments")),
    }


def _instalment_schedule(data: dict, links: dict) -> dict:
    # upcoming_payments is derived from the schedule's payments (instalment_schedules_upcoming),
    # which the schedule's own JSON does not describe.
    return {
        "mandate_id": links.get("mandate", ""),
        "currency": data.get("currency") or "",
        "total_amount": minor_units_from_api(data.get("total_amount")),
        "name": (data.get("name") or "")[:300],
        "payment_ids": [str(p) for p in links.get("payments") or []],
    }


# resource_type → its own columns (on top of the common ones; may override ``status``).
COLUMNS = {
    "customers": _customer,
    "customer_bank_accounts": _customer_bank_account,
    "mandates": _mandate,
    "payments": _payment,
    "payouts": _payout,
    "refunds": _refund,
    "billing_requests": _billing_request,
    "subscriptions": _subscription,
    "instalment_schedules": _instalment_schedule,
}


def _columns(resource_type: str, data: dict) -> dict:
    if resource_type not in COLUMNS:
        raise ValueError(f"no mirror for {resource_type!r}")
    common = {
        "status": data.get("status") or "",
        "metadata": data.get("metadata") or {},
        "raw": data,
        "gocardless_created_at": _datetime(data.get("created_at")),
    }
    return {**common, **COLUMNS[resource_type](data, _links(data))}


def mirror_lock(*, tenant, resource_type: str, gocardless_id: str) -> Mirror:
    """The mirror row, locked for this transaction (a blank placeholder when new)."""
    model = MIRROR_MODELS[resource_type]
    rows = model.objects.select_for_update()
    obj = rows.filter(tenant=tenant, gocardless_id=gocardless_id).first()
    if obj is not None:
        return obj
    # INSERT … ON CONFLICT DO NOTHING: if another process is creating the same row, this
    # waits for it, and the locking read below then returns its row (no savepoint needed).
    model.objects.bulk_create(
        [model(tenant=tenant, gocardless_id=gocardless_id)], ignore_conflicts=True
    )
    return rows.get(tenant=tenant, gocardless_id=gocardless_id)


def mirrors_lock(*, tenant, resource_type: str, gocardless_ids: list[str]
                 ) -> tuple[dict[str, Mirror], set[str]]:
    """``mirror_lock`` for many resources of one type at once (event processing, per chunk):
    the rows by GoCardless id, and the ids whose placeholder rows were made here.

    One locking read; when some are new, one INSERT … ON CONFLICT DO NOTHING and one more
    locking read. Rows are locked in id order, so two workers lock in the same order.
    """
    model = MIRROR_MODELS[resource_type]
    ids = sorted(set(gocardless_ids))
    rows = model.objects.select_for_update().filter(tenant=tenant).order_by("gocardless_id")
    found = {obj.gocardless_id: obj for obj in rows.filter(gocardless_id__in=ids)}
    missing = [gid for gid in ids if gid not in found]
    if missing:
        model.objects.bulk_create(
            [model(tenant=tenant, gocardless_id=gid) for gid in missing], ignore_conflicts=True
        )
        found.update((obj.gocardless_id, obj) for obj in rows.filter(gocardless_id__in=missing))
    return found, set(missing)


def mirror_set(*, obj: Mirror, resource_type: str, data: dict) -> str:
    """Copy GoCardless's current state onto the row, without saving; returns the previous
    status."""
    previous = obj.status
    for name, value in _columns(resource_type, data).items():
        setattr(obj, name, value)
    return previous


def mirror_apply(*, obj: Mirror, resource_type: str, data: dict) -> str:
    """Copy GoCardless's current state onto the locked row; returns the previous status."""
    previous = mirror_set(obj=obj, resource_type=resource_type, data=data)
    obj.save()
    return previous


def mirrors_save(objs: list[Mirror]) -> None:
    """Save rows that exist (locked, possibly placeholders) with one statement per model:
    INSERT … ON CONFLICT (id) DO UPDATE of every column, cheaper to build and run than an
    UPDATE per row or ``bulk_update``'s CASE per row and column."""
    by_model: dict[type[Mirror], list[Mirror]] = {}
    for obj in objs:
        by_model.setdefault(type(obj), []).append(obj)
    for model, rows in by_model.items():
        fields = [f.name for f in model._meta.concrete_fields if not f.primary_key]
        model.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=[model._meta.pk.name],
            update_fields=fields,
        )


def mirror_upsert(*, tenant, resource_type: str, data: dict) -> tuple[Mirror, str]:
    """Lock-or-create and apply in one step (for data already fetched, e.g. a list)."""
    obj = mirror_lock(tenant=tenant, resource_type=resource_type, gocardless_id=data["id"])
    return obj, mirror_apply(obj=obj, resource_type=resource_type, data=data)


def payout_items_replace(*, payout: Payout, items: list[dict]) -> int:
    """Payout items have no ids and never change once a payout is paid: replace them all."""
    PayoutItem.objects.filter(payout=payout).delete()
    PayoutItem.objects.bulk_create(
        [
            PayoutItem(
                tenant_id=payout.tenant_id,
                payout=payout,
                position=position,
                item_type=item.get("type") or "",
                amount=parse_minor_string(str(item.get("amount") or "0")),
                # A link GoCardless has no value for may come as null: an instant bank
                # payment (a payment link's) has no mandate ("Unlike Direct Debit, there's
                # no mandate", https://developer.gocardless.com/one-off-payments/instant-bank-payment).
                payment_id=_links(item).get("payment") or "",
                mandate_id=_links(item).get("mandate") or "",
                refund_id=_links(item).get("refund") or "",
                taxes=item.get("taxes") or [],
                raw=item,
            )
            for position, item in enumerate(items)
        ]
    )
    return len(items)


def instalment_schedules_upcoming(*, tenant_id: int, schedule_ids: set[str]) -> int:
    """Derive each schedule's ``upcoming_payments`` from its payments' mirrors: those not yet
    collected, by charge date. Run after the schedule or one of its payments changed; two
    queries and one UPDATE per schedule whose list changed. Returns how many changed."""
    if not schedule_ids:
        return 0
    schedules = list(InstalmentSchedule.objects.filter(tenant_id=tenant_id,
                                                       gocardless_id__in=schedule_ids))
    linked = {pid for s in schedules for pid in s.payment_ids}
    rows = Payment.objects.filter(tenant_id=tenant_id).filter(
        models.Q(instalment_schedule_id__in=schedule_ids) | models.Q(gocardless_id__in=linked)
    ).values_list("gocardless_id", "instalment_schedule_id", "status", "charge_date", "amount")
    pending: dict[str, list[tuple]] = {}
    for pid, schedule_id, status, charge_date, amount in rows:
        if status not in PAYMENT_NOT_YET_COLLECTED or charge_date is None:
            continue
        for schedule in schedules:
            if schedule_id == schedule.gocardless_id or pid in schedule.payment_ids:
                pending.setdefault(schedule.gocardless_id, []).append(
                    (charge_date, pid, amount))
    changed = 0
    for schedule in schedules:
        upcoming = [{"charge_date": day.isoformat(), "amount": amount}
                    for day, _pid, amount in sorted(pending.get(schedule.gocardless_id, []))]
        if upcoming != schedule.upcoming_payments:
            InstalmentSchedule.objects.filter(pk=schedule.pk).update(upcoming_payments=upcoming)
            changed += 1
    return changed
