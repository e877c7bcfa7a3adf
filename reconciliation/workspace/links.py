"""Links from a number on the dashboard to the admin list that explains it.

Each link is a changelist URL with the filters that give exactly the rows the number counts
(the lists are scoped to the user's companies whatever the query says). Tenant filters are
spelled the way each list understands them: the collection lists have a company filter
(``tenant=<pk>``); the others take the field lookup ``tenant__id__exact``.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse


def changelist(model_label: str, **params) -> str:
    """``changelist("gocardless.payment", status__exact="failed")`` → its admin URL."""
    app_label, model_name = model_label.split(".")
    url = reverse(f"admin:{app_label}_{model_name}_changelist")
    query = urlencode({k: _text(v) for k, v in params.items() if v is not None})
    return f"{url}?{query}" if query else url


def change(obj) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


def _text(value) -> str:
    if isinstance(value, list | tuple | set):
        return ",".join(str(v) for v in value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
