"""The one admin base class every tenant-owned model uses.

A member sees only the tenants they belong to; their role in the object's tenant decides
whether they may view (viewer), change (operator) or configure (admin). The filtering covers
changelists, change/delete views, foreign-key choices, autocomplete, raw-id lookups and
admin actions, because every one of those starts from ``get_queryset`` or a form field
queryset that is scoped here. Superusers see everything.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.core.exceptions import ValidationError
from django.db import models, transaction

from core.audit import Actor, audit_record, model_snapshot, snapshot_diff
from core.display import counted
from core.fields import EncryptedSecretField
from tenants.models import Role, Tenant
from tenants.scoping import (
    role_at_least,
    tenant_id_of,
    tenant_ids_with_role,
    tenant_path_of,
    tenant_roles,
)


class ScopedRawIdWidget(ForeignKeyRawIdWidget):
    """Shows the label of the chosen object only when the user may see it."""

    def __init__(self, rel, admin_site, *, queryset, **kwargs):
        super().__init__(rel, admin_site, **kwargs)
        self.scoped_queryset = queryset

    def label_and_url_for_value(self, value):
        key = self.rel.get_related_field().name
        if not self.scoped_queryset.filter(**{key: value}).exists():
            return "", ""
        return super().label_and_url_for_value(value)


def _secret_form(base_form: type[forms.ModelForm], names: list[str]) -> type[forms.ModelForm]:
    """A form whose secret fields are write-only: never rendered, blank keeps the value."""
    attrs: dict = {}
    for name in names:
        attrs[name] = forms.CharField(
            required=False,
            strip=True,
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
            help_text="Write-only. Leave blank to keep the current value.",
        )
        attrs[f"clear_{name}"] = forms.BooleanField(
            required=False, label=f"Clear {name.replace('_', ' ')}"
        )

    def clean(self):
        cleaned = base_form.clean(self)
        # Popped so the ModelForm never copies a blank into the instance; save_model applies
        # only what the user actually typed (or a deliberate clear).
        self.secret_updates = {}
        for name in names:
            value = cleaned.pop(name, "") or ""
            if cleaned.pop(f"clear_{name}", False):
                self.secret_updates[name] = None
            elif value:
                self.secret_updates[name] = value
        return cleaned

    attrs["clean"] = clean
    return type(f"Secret{base_form.__name__}", (base_form,), attrs)


class TenantScopedAdmin(admin.ModelAdmin):
    """Base admin for every tenant-owned model (see module docstring)."""

    #: Lookup from the model to its tenant; default: the model's ``tenant_path`` or "tenant".
    tenant_path: str | None = None
    #: Minimum role in the object's tenant to add / change / delete; None = superusers only.
    add_role: str | None = Role.OPERATOR
    change_role: str | None = Role.OPERATOR
    delete_role: str | None = Role.ADMIN
    #: Mirrors and logs: nobody adds, edits or deletes them here, not even superusers.
    read_only: bool = False
    #: Minimum role for custom action permissions (``@admin.action(permissions=("x",))``
    #: with a ``has_x_permission`` method); they are allowed on read-only admins too.
    action_roles: dict = {}
    #: Write audit entries for saves and deletes made in the admin.
    audit_changes: bool = True

    list_select_related: tuple | bool = ()
    show_full_result_count = False
    # Django 6's default already; saying it now keeps URLs typed without a scheme on https.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    # --- scoping --------------------------------------------------------------------------
    def get_tenant_path(self) -> str:
        return self.tenant_path or tenant_path_of(self.model) or "tenant"

    def _user_ok(self, request) -> bool:
        user = request.user
        return bool(user and user.is_active and user.is_staff)

    def scope_queryset(self, request, queryset, *, min_role: str = Role.VIEWER, path=None):
        if request.user.is_superuser:
            return queryset
        ids = tenant_ids_with_role(request.user, min_role, request=request)
        return queryset.filter(**{f"{path or self.get_tenant_path()}__in": ids})

    def get_queryset(self, request):
        return self.scope_queryset(request, super().get_queryset(request))

    def _has_role(self, request, obj, role: str | None) -> bool:
        if not self._user_ok(request):
            return False
        if request.user.is_superuser:
            return True
        if role is None:
            return False
        roles = tenant_roles(request.user, request=request)
        if obj is None:
            return any(role_at_least(r, role) for r in roles.values())
        return role_at_least(roles.get(tenant_id_of(obj, self.get_tenant_path())), role)

    def has_action_permission(self, request, permission: str, obj=None) -> bool:
        """For ``has_<permission>_permission`` methods of custom admin actions."""
        return self._has_role(request, obj, self.action_roles[permission])

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._has_role(request, obj, Role.VIEWER)

    def has_add_permission(self, request, obj=None):
        return not self.read_only and self._has_role(request, None, self.add_role)

    def has_change_permission(self, request, obj=None):
        return not self.read_only and self._has_role(request, obj, self.change_role)

    def has_delete_permission(self, request, obj=None):
        return not self.read_only and self._has_role(request, obj, self.delete_role)

    # --- foreign keys, autocomplete and raw-id lookups -----------------------------------
    def _choice_queryset(self, request, related_model, queryset):
        minimum = self.change_role or Role.ADMIN
        if related_model is Tenant:
            return self.scope_queryset(request, queryset, min_role=minimum, path="pk")
        path = tenant_path_of(related_model)
        if path is None:
            return queryset
        return self.scope_queryset(request, queryset, min_role=minimum, path=path)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        queryset = kwargs.get("queryset") or related._default_manager.all()
        queryset = self._choice_queryset(request, related, queryset)
        kwargs["queryset"] = queryset
        if db_field.name in self.raw_id_fields:
            kwargs["widget"] = ScopedRawIdWidget(
                db_field.remote_field, self.admin_site, queryset=queryset
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        related = db_field.related_model
        queryset = kwargs.get("queryset") or related._default_manager.all()
        kwargs["queryset"] = self._choice_queryset(request, related, queryset)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    # --- actions ---------------------------------------------------------------------------
    def get_actions(self, request):
        actions = super().get_actions(request)
        return {
            name: (self._scoped_action(func), name, description)
            for name, (func, name, description) in actions.items()
        }

    def _scoped_action(self, func):
        """Narrow the selection to objects whose tenant grants the action's permission."""
        required = getattr(func, "allowed_permissions", ("change",))
        role = {
            "view": Role.VIEWER,
            "change": self.change_role,
            "delete": self.delete_role,
            "add": self.add_role,
        }

        def action(modeladmin, request, queryset):
            narrowed = queryset
            for permission in required:
                needed = self.action_roles.get(permission, role.get(permission, self.change_role))
                if self.read_only and permission in ("add", "change", "delete"):
                    narrowed = narrowed.none()
                elif needed is None:
                    if not request.user.is_superuser:
                        narrowed = narrowed.none()
                else:
                    narrowed = self.scope_queryset(request, narrowed, min_role=needed)
            skipped = queryset.count() - narrowed.count()
            if skipped:
                self.message_user(
                    request,
                    f"{counted(skipped, 'selected item was', 'selected items were')} skipped: "
                    "your role does not allow this action on them.",
                    messages.WARNING,
                )
            if not narrowed.exists():
                return None
            return func(modeladmin, request, narrowed)

        action.__name__ = getattr(func, "__name__", "action")
        for attr in ("allowed_permissions", "short_description"):
            if hasattr(func, attr):
                setattr(action, attr, getattr(func, attr))
        return action

    # --- secrets: write-only inputs, "set / not set" display -------------------------------
    def secret_field_names(self) -> list[str]:
        return [f.name for f in self.model._meta.fields if isinstance(f, EncryptedSecretField)]

    def get_form(self, request, obj=None, change=False, **kwargs):
        names = self.secret_field_names()
        if names:
            kwargs.setdefault("form", _secret_form(self.form, names))
        form = super().get_form(request, obj, change, **kwargs)
        return _tenant_consistency_form(form, self)

    def _hide_secrets(self, request, obj, names_list):
        """Secret inputs only for those who may change them, each followed by its clear box."""
        secrets = self.secret_field_names()
        if not secrets:
            return names_list
        clears = {f"clear_{n}" for n in secrets}
        if not self.has_change_permission(request, obj):
            return [n for n in names_list if n not in clears and n not in secrets]
        arranged = []
        for name in names_list:
            if name in clears:
                continue
            arranged.append(name)
            if name in secrets and f"clear_{name}" in names_list:
                arranged.append(f"clear_{name}")
        return arranged

    def get_fields(self, request, obj=None):
        return self._hide_secrets(request, obj, list(super().get_fields(request, obj)))

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if self.fieldsets is None:
            return fieldsets
        return [
            (title, {**opts, "fields": self._hide_secrets(request, obj, list(opts["fields"]))})
            for title, opts in fieldsets
        ]

    def get_readonly_fields(self, request, obj=None):
        readonly = list(super().get_readonly_fields(request, obj))
        if self.secret_field_names() and "secrets_status" not in readonly:
            readonly.append("secrets_status")
        return readonly

    @admin.display(description="Secrets")
    def secrets_status(self, obj):
        if obj is None:
            return "-"
        return "; ".join(
            f"{name.replace('_', ' ')}: {'set' if getattr(obj, name) else 'not set'}"
            for name in self.secret_field_names()
        )

    # --- audit -----------------------------------------------------------------------------
    def _tenant_of(self, obj):
        tenant_id = tenant_id_of(obj, self.get_tenant_path())
        return Tenant.objects.filter(pk=tenant_id).first() if tenant_id else None

    def save_model(self, request, obj, form, change):
        for name, value in getattr(form, "secret_updates", {}).items():
            setattr(obj, name, value)
        if not self.audit_changes:
            return super().save_model(request, obj, form, change)
        before = None
        if change:
            previous = type(obj)._default_manager.filter(pk=obj.pk).first()
            before = model_snapshot(previous) if previous is not None else None
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            before, after = snapshot_diff(before, model_snapshot(obj))
            if change and not after:
                return None
            audit_record(
                actor=Actor.for_user(request.user),
                action=f"{obj._meta.model_name}.{'changed' if change else 'created'}",
                tenant=self._tenant_of(obj),
                obj=obj,
                before=before,
                after=after,
                message="via admin",
            )
        return None

    def delete_model(self, request, obj):
        with transaction.atomic():
            tenant = self._tenant_of(obj)
            snapshot = model_snapshot(obj)
            pk = obj.pk
            super().delete_model(request, obj)
            if self.audit_changes:
                audit_record(
                    actor=Actor.for_user(request.user),
                    action=f"{obj._meta.model_name}.deleted",
                    tenant=tenant if tenant is not None and tenant.pk else None,
                    object_type=obj._meta.label_lower,
                    object_id=pk,
                    before=snapshot,
                    message="via admin",
                )

    def save_formset(self, request, form, formset, change):
        """Inline rows (e.g. memberships) are audited like top-level saves."""
        if not self.audit_changes:
            return super().save_formset(request, form, formset, change)
        with transaction.atomic():
            instances = formset.save(commit=False)
            actor = Actor.for_user(request.user)
            for obj in formset.deleted_objects:
                snapshot, pk = model_snapshot(obj), obj.pk
                obj.delete()
                audit_record(
                    actor=actor,
                    action=f"{obj._meta.model_name}.deleted",
                    tenant=self._tenant_of(form.instance),
                    object_type=obj._meta.label_lower,
                    object_id=pk,
                    before=snapshot,
                    message="via admin",
                )
            for obj in instances:
                adding = obj._state.adding
                previous = None if adding else type(obj)._default_manager.filter(pk=obj.pk).first()
                obj.save()
                before, after = snapshot_diff(
                    model_snapshot(previous) if previous else None, model_snapshot(obj)
                )
                audit_record(
                    actor=actor,
                    action=f"{obj._meta.model_name}.{'created' if adding else 'changed'}",
                    tenant=self._tenant_of(form.instance),
                    obj=obj,
                    before=before,
                    after=after,
                    message="via admin",
                )
            formset.save_m2m()
        return None

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


def _tenant_consistency_form(form_class, model_admin: TenantScopedAdmin):
    """Refuse a form that links objects of two different tenants."""

    path = model_admin.get_tenant_path()
    if path == "pk":
        return form_class

    def clean(self):
        cleaned = form_class.clean(self)
        tenants = set()
        for name, value in cleaned.items():
            field = self._meta.model._meta.get_field(name) if _is_model_field(self, name) else None
            if field is None or not field.is_relation or value is None:
                continue
            if isinstance(value, Tenant):
                tenants.add(value.pk)
                continue
            related_path = tenant_path_of(type(value))
            if related_path:
                tenants.add(tenant_id_of(value, related_path))
        if self.instance.pk and path == "tenant" and "tenant" not in cleaned:
            tenants.add(self.instance.tenant_id)
        if len(tenants) > 1:
            raise ValidationError("These objects belong to different companies.")
        return cleaned

    return type(form_class.__name__, (form_class,), {"clean": clean})


def _is_model_field(form, name: str) -> bool:
    try:
        form._meta.model._meta.get_field(name)
    except Exception:
        return False
    return True
