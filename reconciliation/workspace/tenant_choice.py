"""Which company's workspace a person sees.

A member sees the active companies they belong to (``tenants.scoping.tenant_roles``, the
same answer the admin's scoping uses); a superuser sees every company. ``?tenant=<slug>``
chooses one and the session remembers it. A slug that is not one of the person's companies
(unknown, or someone else's) changes nothing, and the page says so using only the slug that
was typed: it never tells whether such a company exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tenants.models import Tenant
from tenants.scoping import tenant_roles

SESSION_KEY = "workspace_tenant"
QUERY_KEY = "tenant"


@dataclass
class TenantChoice:
    tenant: Tenant | None
    tenants: list[Tenant] = field(default_factory=list)
    refused_slug: str = ""

    @property
    def several(self) -> bool:
        return len(self.tenants) > 1


def tenants_for(request) -> list[Tenant]:
    """The companies whose workspace ``request.user`` may see, by name (one query)."""
    user = request.user
    tenants = Tenant.objects.order_by("name", "pk")
    if user.is_superuser:
        return list(tenants)
    ids = tenant_roles(user, request=request).keys()
    return list(tenants.filter(pk__in=list(ids))) if ids else []


def tenant_choose(request) -> TenantChoice:
    """The chosen company: asked for now, else remembered, else the first active one."""
    tenants = tenants_for(request)
    by_slug = {t.slug: t for t in tenants}
    by_pk = {t.pk: t for t in tenants}
    asked = (request.GET.get(QUERY_KEY) or "").strip()
    refused = ""
    chosen = None
    if asked:
        chosen = by_slug.get(asked)
        if chosen is None:
            refused = asked[:64]
    if chosen is None:
        chosen = by_pk.get(request.session.get(SESSION_KEY))
    if chosen is None:
        chosen = next((t for t in tenants if t.is_active), tenants[0] if tenants else None)
    if chosen is not None and request.session.get(SESSION_KEY) != chosen.pk:
        request.session[SESSION_KEY] = chosen.pk
    return TenantChoice(tenant=chosen, tenants=tenants, refused_slug=refused)
