"""The admin's front page becomes the finance workspace, without replacing the AdminSite.

``install(admin.site)`` (the app's ``ready()``) sets the site's ``index_template`` and wraps
its ``index`` view: the wrapped view adds the chosen company's dashboard to the context and
calls the original, which still builds the model list ("All lists", below the dashboard)
and renders through the same admin machinery (login required, staff only, never cached).
The site's URLs are built from ``site.index`` when the URLconf is first loaded, which is
after every app's ``ready()``.
"""

from __future__ import annotations

from functools import wraps

from django.utils import timezone

from reconciliation.workspace.dashboard import dashboard_build
from reconciliation.workspace.tenant_choice import tenant_choose

INDEX_TEMPLATE = "workspace/admin_index.html"


def workspace_context(request) -> dict:
    """What the index template needs: the company choice and, for a company, its dashboard."""
    choice = tenant_choose(request)
    context = {"workspace_choice": choice, "workspace": None}
    if choice.tenant is not None:
        context["workspace"] = dashboard_build(tenant=choice.tenant, now=timezone.now())
        context["title"] = choice.tenant.name
    return context


def install(site) -> None:
    if getattr(site, "_workspace_installed", False):
        return
    original = site.index

    @wraps(original)
    def index(request, extra_context=None):
        return original(request, extra_context={**workspace_context(request),
                                                **(extra_context or {})})

    site.index = index
    site.index_template = INDEX_TEMPLATE
    site._workspace_installed = True
