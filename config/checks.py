"""System checks that fail loudly on dangerous configuration.

They run on every manage.py command (runserver, migrate, qcluster, check), so a worker or a
web node with a configuration that could lose secrets or run a task twice refuses to start.
"""

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.db import DatabaseError


@register()
def check_encryption_salt(app_configs, **kwargs):
    if settings.DEBUG or settings.SALT_KEY:
        return []
    return [
        Error(
            "SALT_KEY is not set.",
            hint="Every token and secret at rest is encrypted with keys derived from "
            "SECRET_KEY and SALT_KEY. Set SALT_KEY (and keep it: losing it loses every "
            "stored credential).",
            id="mlc.E001",
        )
    ]


@register()
def check_q_cluster_retry(app_configs, **kwargs):
    q = settings.Q_CLUSTER
    if q.get("retry", 0) > q.get("timeout", 0):
        return []
    return [
        Error(
            f"Q_CLUSTER retry ({q.get('retry')}) must be greater than timeout "
            f"({q.get('timeout')}).",
            hint="django-q2 hands a task to another worker after `retry` seconds; if that is "
            "not longer than `timeout`, a slow task runs twice. Set Q_RETRY > Q_TIMEOUT.",
            id="mlc.E002",
        )
    ]


@register()
def check_exact_app_credentials(app_configs, **kwargs):
    if settings.EXACT_CLIENT_ID and settings.EXACT_CLIENT_SECRET:
        return []
    from django.apps import apps

    connection_model = apps.get_model("exact", "ExactConnection")
    try:
        connected = connection_model.objects.exclude(status="disconnected").exists()
    except DatabaseError:
        # Before the first migrate there is no table and nothing is connected.
        return []
    if not connected:
        return []
    return [
        Error(
            "A tenant is connected to Exact Online but EXACT_CLIENT_ID / EXACT_CLIENT_SECRET "
            "are not set.",
            hint="Without the app credentials no access token can be refreshed, and the "
            "connection breaks within ten minutes.",
            id="mlc.E003",
        )
    ]


@register()
def check_gocardless_webhook_secrets(app_configs, **kwargs):
    """A connected tenant needs a way to verify its webhooks: its own endpoint secret, or the
    partner app's secret plus its organisation id. Without either, every genuine webhook is
    answered 498 and only the polling job keeps it up to date."""
    from django.apps import apps

    from core.fields import SecretDecryptionError

    connection_model = apps.get_model("gocardless", "GoCardlessConnection")
    try:
        connections = list(
            connection_model.objects.filter(status="connected").select_related("tenant")
        )
    except (DatabaseError, SecretDecryptionError):
        return []
    blind = [
        c.tenant.slug
        for c in connections
        if not c.webhook_secret
        and not (settings.GOCARDLESS_WEBHOOK_SECRET and c.organisation_id)
    ]
    if not blind:
        return []
    return [
        Warning(
            f"GoCardless webhooks cannot be verified for: {', '.join(sorted(blind))}.",
            hint="Paste the webhook endpoint secret in the tenant's GoCardless connection, or "
            "set GOCARDLESS_WEBHOOK_SECRET for the partner app. Until then webhooks are "
            "answered 498 and only polling updates these tenants.",
            id="mlc.W004",
        )
    ]


@register()
def check_q_sync_outside_debug(app_configs, **kwargs):
    """Q_SYNC runs every queued task inline, in the process that queued it: in production that
    is the web request (a webhook answer would wait for event processing and GoCardless/Exact
    calls, and a task's failure would become the request's)."""
    if settings.DEBUG or not settings.Q_CLUSTER.get("sync"):
        return []
    return [
        Warning(
            "Q_SYNC is on with DEBUG off: background tasks run inside web requests.",
            hint="Q_SYNC is for tests and debugging. Unset it (or set Q_SYNC=false) and run "
            "`manage.py qcluster` workers.",
            id="mlc.W005",
        )
    ]


@register(deploy=True)
def check_metrics_token(app_configs, **kwargs):
    """/metrics names every tenant with its volumes and failures. Without a token, anyone who
    reaches a web node can read it; the proxy rule that keeps it internal is one typo away."""
    if settings.DEBUG or settings.METRICS_TOKEN:
        return []
    return [
        Warning(
            "METRICS_TOKEN is not set: GET /metrics answers anyone who reaches a web node.",
            hint="Set METRICS_TOKEN to a long random value and give it to Prometheus "
            "(Authorization: Bearer <token>); keep /metrics on the internal network too.",
            id="mlc.W006",
        )
    ]


@register()
def check_stored_secrets_decrypt(app_configs, **kwargs):
    """One stored secret of each kind must decrypt with the configured SECRET_KEY (+ fallbacks)
    and SALT_KEY. A wrong key otherwise passes every check and then fails at the first
    webhook, token refresh or provider call of every tenant."""
    from django.apps import apps

    from core.fields import EncryptedSecretField, SecretDecryptionError

    if not settings.SALT_KEY or not settings.SECRET_KEY:
        return []  # mlc.E001 says it
    unreadable = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if not isinstance(field, EncryptedSecretField):
                continue
            rows = model._default_manager.exclude(**{f"{field.name}__isnull": True}).exclude(
                **{field.name: ""}
            )
            try:
                list(rows.values_list(field.name, flat=True)[:1])
            except SecretDecryptionError:
                unreadable.append(f"{model._meta.label}.{field.name}")
            except DatabaseError:
                return []  # before migrate: nothing stored yet
    if not unreadable:
        return []
    return [
        Error(
            "Stored secrets cannot be decrypted with SECRET_KEY/SALT_KEY: "
            f"{', '.join(unreadable)}.",
            hint="SECRET_KEY or SALT_KEY differs from the one that encrypted them. Restore the "
            "old values, or add the old SECRET_KEY to SECRET_KEY_FALLBACKS (and the old salt "
            "to SALT_KEY as a list) and run `manage.py secrets_reencrypt`.",
            id="mlc.E004",
        )
    ]
