"""Who may see and do what, per tenant. Selectors used by the admin, views and commands."""

from __future__ import annotations

from tenants.models import ROLE_RANK, Membership, Role

_CACHE_ATTR = "_mlc_tenant_roles"


def tenant_roles(user, *, request=None) -> dict[int, str]:
    """Map tenant id → role for an active user (cached on the request when given)."""
    if request is not None and hasattr(request, _CACHE_ATTR):
        return getattr(request, _CACHE_ATTR)
    roles: dict[int, str] = {}
    if user is not None and user.is_authenticated and user.is_active:
        roles = dict(
            Membership.objects.filter(user=user, tenant__is_active=True).values_list(
                "tenant_id", "role"
            )
        )
    if request is not None:
        setattr(request, _CACHE_ATTR, roles)
    return roles


def role_at_least(role: str | None, minimum: str) -> bool:
    return role is not None and ROLE_RANK[Role(role)] >= ROLE_RANK[Role(minimum)]


def tenant_ids_with_role(user, minimum: str, *, request=None) -> set[int]:
    return {
        tenant_id
        for tenant_id, role in tenant_roles(user, request=request).items()
        if role_at_least(role, minimum)
    }


def tenant_id_of(obj, path: str) -> int | None:
    """Follow a lookup path such as ``tenant`` or ``connection__tenant`` to a tenant id."""
    if path == "pk":
        return obj.pk
    *hops, last = path.split("__")
    for hop in hops:
        obj = getattr(obj, hop, None)
        if obj is None:
            return None
    if last == "tenant":
        return getattr(obj, "tenant_id", None)
    return getattr(getattr(obj, last, None), "pk", None)


def tenant_path_of(model) -> str | None:
    """The lookup from a model to its tenant, or None when the model is not tenant-owned."""
    path = getattr(model, "tenant_path", None)
    if path:
        return path
    field_names = {f.name for f in model._meta.get_fields()}
    return "tenant" if "tenant" in field_names else None
