"""Rows mirrored before migration 0008 already hold what its new columns say, in their raw
JSON and their items: a payment a plan created names it in ``raw.links``, and a payout whose
items we have was fetched. Without this, such payments would look like anyone's (the
collection and bookings rules read ``subscription_id`` / ``instalment_schedule_id``), and
such payouts would say "not fetched yet" and be asked for their items again."""

from django.db import migrations

BATCH = 1000


def backfill(apps, schema_editor):
    Payment = apps.get_model("gocardless", "Payment")
    Payout = apps.get_model("gocardless", "Payout")
    PayoutItem = apps.get_model("gocardless", "PayoutItem")
    for key, column in (("subscription", "subscription_id"),
                        ("instalment_schedule", "instalment_schedule_id")):
        rows = (Payment.objects.filter(**{column: "", "raw__links__has_key": key})
                .values_list("pk", "raw"))
        changed = []
        for pk, raw in rows.iterator(chunk_size=BATCH):
            value = str(((raw or {}).get("links") or {}).get(key) or "")[:40]
            if value:
                changed.append(Payment(pk=pk, **{column: value}))
            if len(changed) >= BATCH:
                Payment.objects.bulk_update(changed, [column])
                changed = []
        if changed:
            Payment.objects.bulk_update(changed, [column])
    Payout.objects.filter(
        items_state="", pk__in=PayoutItem.objects.values("payout_id")
    ).update(items_state="fetched")


class Migration(migrations.Migration):

    dependencies = [
        ("gocardless", "0008_plans_and_payout_items_state"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
