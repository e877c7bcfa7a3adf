"""Every tenant-owned admin keeps tenants apart, and viewers read only.

The test walks the admin registry, so a model added later is covered the day it is
registered (and fails here until tests/factories.py can build it).
"""

import pytest
from django.contrib import admin
from django.urls import reverse

from core.audit import model_snapshot
from tenants.admin_base import TenantScopedAdmin
from tests.factories import create_for_tenant

SCOPED = sorted(
    (
        model
        for model, model_admin in admin.site._registry.items()
        if isinstance(model_admin, TenantScopedAdmin)
    ),
    key=lambda m: m._meta.label,
)


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _state(obj):
    fresh = type(obj)._default_manager.filter(pk=obj.pk).first()
    return None if fresh is None else model_snapshot(fresh)


def test_registry_covers_the_tenant_owned_models():
    labels = {m._meta.label for m in SCOPED}
    assert {
        "tenants.Tenant",
        "tenants.Membership",
        "exact.ExactConnection",
        "gocardless.GoCardlessConnection",
        "core.AuditEntry",
    } <= labels


@pytest.mark.parametrize("model", SCOPED, ids=lambda m: m._meta.label)
def test_member_of_a_cannot_reach_objects_of_b(client, model, tenant_a, tenant_b, admin_of_a):
    obj_a = create_for_tenant(model, tenant_a)
    obj_b = create_for_tenant(model, tenant_b)
    before_b = _state(obj_b)
    client.force_login(admin_of_a)

    # list, and the raw-id lookup popup (the same changelist in popup mode)
    for params in ({}, {"_popup": "1"}):
        response = client.get(_url(model, "changelist"), params)
        assert response.status_code == 200
        shown = {o.pk for o in response.context["cl"].result_list}
        assert obj_a.pk in shown
        assert obj_b.pk not in shown

    # open, history, change, delete: B's object behaves as if it did not exist
    for view in ("change", "history", "delete"):
        response = client.get(_url(model, view, obj_b.pk))
        assert response.status_code in (302, 403, 404), view
        assert str(obj_b).encode() not in response.content
    response = client.post(_url(model, "change", obj_b.pk), {"name": "hijacked"})
    assert response.status_code in (302, 403, 404)
    response = client.post(_url(model, "delete", obj_b.pk), {"post": "yes"})
    assert response.status_code in (302, 403, 404)

    # every admin action, aimed at B's object
    request = client.get(_url(model, "changelist")).wsgi_request
    actions = admin.site._registry[model].get_actions(request)
    for name in actions:
        client.post(
            _url(model, "changelist"),
            {"action": name, "_selected_action": [obj_b.pk], "post": "yes", "index": 0},
        )
    assert _state(obj_b) == before_b


def _autocomplete_sources(model):
    return [
        (source, field)
        for source, model_admin in admin.site._registry.items()
        for field in getattr(model_admin, "autocomplete_fields", ())
        if source._meta.get_field(field).related_model is model
    ]


AUTOCOMPLETE_TARGETS = [m for m in SCOPED if _autocomplete_sources(m)]


def test_autocomplete_is_exercised():
    assert AUTOCOMPLETE_TARGETS, "no tenant-owned model is reachable through autocomplete"


@pytest.mark.parametrize("model", AUTOCOMPLETE_TARGETS, ids=lambda m: m._meta.label)
def test_autocomplete_never_offers_objects_of_b(client, model, tenant_a, tenant_b, admin_of_a):
    sources = _autocomplete_sources(model)
    obj_a = create_for_tenant(model, tenant_a)
    obj_b = create_for_tenant(model, tenant_b)
    client.force_login(admin_of_a)
    for source, field in sources:
        response = client.get(
            reverse("admin:autocomplete"),
            {
                "app_label": source._meta.app_label,
                "model_name": source._meta.model_name,
                "field_name": field,
                "term": "",
            },
        )
        assert response.status_code == 200
        ids = {item["id"] for item in response.json()["results"]}
        assert str(obj_a.pk) in ids
        assert str(obj_b.pk) not in ids


@pytest.mark.parametrize("model", SCOPED, ids=lambda m: m._meta.label)
def test_viewer_can_read_but_not_change(client, model, tenant_a, viewer_of_a):
    obj = create_for_tenant(model, tenant_a)
    before = _state(obj)
    client.force_login(viewer_of_a)

    response = client.get(_url(model, "changelist"))
    assert response.status_code == 200
    assert obj.pk in {o.pk for o in response.context["cl"].result_list}
    assert b"PLAINTEXT" not in response.content

    response = client.get(_url(model, "change", obj.pk))
    assert response.status_code == 200
    assert response.context["has_change_permission"] is False
    assert b"PLAINTEXT" not in response.content  # secrets are never shown back

    assert client.post(_url(model, "change", obj.pk), {"name": "x"}).status_code == 403
    assert client.get(_url(model, "add")).status_code == 403
    assert client.post(_url(model, "delete", obj.pk), {"post": "yes"}).status_code == 403
    request = client.get(_url(model, "changelist")).wsgi_request
    for name in admin.site._registry[model].get_actions(request):
        client.post(
            _url(model, "changelist"), {"action": name, "_selected_action": [obj.pk], "post": "yes"}
        )
    assert _state(obj) == before


def test_foreign_key_choices_are_limited_to_own_tenants(client, tenant_a, tenant_b, admin_of_a):
    client.force_login(admin_of_a)
    from exact.models import ExactConnection

    response = client.get(_url(ExactConnection, "add"))
    assert response.status_code == 200
    choices = {
        str(c[0].value) for c in response.context["adminform"].form.fields["tenant"].choices if c[0]
    }
    assert str(tenant_a.pk) in choices
    assert str(tenant_b.pk) not in choices


def test_superuser_sees_every_tenant(client, tenant_a, tenant_b, superuser):
    client.force_login(superuser)
    response = client.get(reverse("admin:tenants_tenant_changelist"))
    assert {t.pk for t in response.context["cl"].result_list} == {tenant_a.pk, tenant_b.pk}


def test_changelists_have_no_n_plus_one(client, tenant_a, superuser, django_assert_max_num_queries):
    from tests.factories import AuditEntryFactory, MembershipFactory

    MembershipFactory.create_batch(3, tenant=tenant_a)
    AuditEntryFactory.create_batch(3, tenant=tenant_a)
    client.force_login(superuser)
    for model in SCOPED:
        client.get(_url(model, "changelist"))  # warm caches (content types, sessions)
        with django_assert_max_num_queries(12) as few:
            client.get(_url(model, "changelist"))
        MembershipFactory.create_batch(5, tenant=tenant_a)
        AuditEntryFactory.create_batch(5, tenant=tenant_a)
        with django_assert_max_num_queries(len(few.captured_queries)):
            client.get(_url(model, "changelist"))
