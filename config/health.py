"""GET /healthz: database and broker reachability plus a per-tenant connection summary.

Answers 503 when the database is down (nothing works then), 200 otherwise with
"status": "ok" or "degraded". Errors are reported by class name only, because exception
texts can carry connection strings.
"""

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from tenants.models import Tenant


def _database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return {"ok": False, "vendor": connection.vendor, "error": type(exc).__name__}
    return {"ok": True, "vendor": connection.vendor}


def _broker() -> dict:
    from django_q.brokers import get_broker

    try:
        broker = get_broker()
        broker.ping()
        return {"ok": True, "type": broker.info().split()[0].lower(), "queued": broker.queue_size()}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}


def _connection_status(tenant: Tenant, accessor: str) -> str:
    try:
        return getattr(tenant, accessor).status
    except Exception:  # RelatedObjectDoesNotExist: never configured
        return "not_configured"


def _tenants() -> list[dict]:
    tenants = Tenant.objects.select_related("exact_connection", "gocardless_connection").order_by(
        "slug"
    )
    return [
        {
            "slug": tenant.slug,
            "active": tenant.is_active,
            "exact": _connection_status(tenant, "exact_connection"),
            "gocardless": _connection_status(tenant, "gocardless_connection"),
        }
        for tenant in tenants
    ]


@require_GET
def healthz(request):
    database = _database()
    if not database["ok"]:
        return JsonResponse({"status": "error", "database": database}, status=503)
    broker = _broker()
    try:
        tenants = _tenants()
    except DatabaseError as exc:
        return JsonResponse(
            {"status": "error", "database": {"ok": False, "error": type(exc).__name__}},
            status=503,
        )
    needs_attention = any(
        t["active"] and "needs_reauth" in (t["exact"], t["gocardless"]) for t in tenants
    )
    status = "ok" if broker["ok"] and not needs_attention else "degraded"
    return JsonResponse(
        {"status": status, "database": database, "broker": broker, "tenants": tenants}
    )
