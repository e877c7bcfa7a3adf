"""The audit trail in the admin: the ground floor's records, seen through the tenant scoping
every tenant-owned model has (core/ cannot hold this: it imports no other project app).

Shown in words (tenants/audit_words.py): the action as a sentence, who did it, the object as
a link to its own page, and the changes labelled by the fields' names as people read them."""

import re

from django.contrib import admin
from django.db.models import Q
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from core.display import NOTHING, local_time_display
from core.models import AuditEntry
from tenants import audit_words
from tenants.admin_base import TenantScopedAdmin


class ActionFilter(admin.SimpleListFilter):
    """The actions tenants/audit_words.py has words for, and the admin's own (``<model>.created``,
    ``.changed``, ``.deleted``) for the models edited here: fixed choices, no ``SELECT
    DISTINCT`` over the trail on every view. An action not offered still filters by link."""

    title = "what happened"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        actions = set(audit_words.ACTION_WORDS)
        for model, other in model_admin.admin_site._registry.items():
            if getattr(other, "audit_changes", False) and not getattr(other, "read_only", False):
                actions |= {f"{model._meta.model_name}.{verb}"
                            for verb in ("created", "changed", "deleted")}
        # One choice per sentence (an action the code and the admin both write, spelled two
        # ways, reads the same); the selected action is always among them.
        shown = {audit_words.action_words(action): action for action in sorted(actions)}
        choices = {action: text for text, action in shown.items()}
        if self.value():
            choices[self.value()] = audit_words.action_words(self.value())
        return sorted(choices.items(), key=lambda pair: pair[1].lower())

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


class ObjectTypeFilter(admin.SimpleListFilter):
    """The kinds of object the product's admin pages show (``object_type`` is a model's
    label; the entries are about those): fixed choices, no query."""

    title = "kind of object"
    parameter_name = "object_type"

    def lookups(self, request, model_admin):
        kinds = {model._meta.label_lower
                 for model, other in model_admin.admin_site._registry.items()
                 if hasattr(other, "audit_changes") and model is not model_admin.model}
        if self.value():
            kinds.add(self.value())
        shown = [(kind, audit_words.object_words(kind)) for kind in kinds]
        return sorted(shown, key=lambda pair: pair[1].lower())

    def queryset(self, request, queryset):
        return queryset.filter(object_type=self.value()) if self.value() else queryset


# A term that is an action code (``booking.confirmed``) or an object's id (``16``): matched
# whole, on an indexed column; anything else is looked for in the notes.
ACTION_CODE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
OBJECT_ID = re.compile(r"^\d+$")


class _Shown:
    """The entry as the change page's breadcrumb and heading name it (``str(entry)`` is the
    engineers' form); everything else is the entry itself."""

    def __init__(self, entry, text):
        self._entry, self._text = entry, text

    def __getattr__(self, name):
        return getattr(self._entry, name)

    def __str__(self):
        return self._text


@admin.register(AuditEntry)
class AuditEntryAdmin(TenantScopedAdmin):
    """The audit trail: read-only for everyone, superusers included."""

    read_only = True
    audit_changes = False
    list_display = ("when", "tenant", "who", "what", "object_link", "message_words")
    list_filter = ("actor_type", ActionFilter, ObjectTypeFilter)
    list_select_related = ("tenant", "actor_user")
    # Searched in get_search_results: codes and ids whole, words in the notes and names.
    search_fields = ("message",)
    # No date_hierarchy: MIN/MAX and DISTINCT DATE_TRUNC over the trail on every view.
    list_per_page = 50
    actions = None
    fields = ("when", "tenant", "who", "what", "object_link", "changes_table", "message_words")
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("tenant", "actor_user")

    def get_search_results(self, request, queryset, search_term):
        """Each term narrows the list: an action code to that action (an index lookup), a
        number to the entries about objects with that id (with the kind of object chosen in
        the filter, an index lookup too); other words to the entries whose note contains them
        or whose person is named so (only this one reads the whole trail)."""
        terms = search_term.split()
        if not terms:
            return queryset, False
        for term in terms:
            if ACTION_CODE.match(term):
                queryset = queryset.filter(action=term)
            elif OBJECT_ID.match(term):
                queryset = queryset.filter(object_id=term)
            else:
                queryset = queryset.filter(Q(message__icontains=term) | Q(actor_label=term))
        return queryset, False

    @staticmethod
    def title_of(entry) -> str:
        return f"{audit_words.action_words(entry.action)}, {when_text(entry)}"

    def render_change_form(self, request, context, add=False, change=False, form_url="",
                           obj=None):
        if obj is not None:
            context["original"] = _Shown(obj, self.title_of(obj))
            context["subtitle"] = self.title_of(obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- columns and fields ----------------------------------------------------------------
    @admin.display(description="When", ordering="created_at")
    def when(self, obj):
        return when_text(obj)

    @admin.display(description="Who", ordering="actor_label")
    def who(self, obj):
        return audit_words.actor_words(obj.actor_type, obj.actor_label, obj.actor_user)

    @admin.display(description="What happened", ordering="action")
    def what(self, obj):
        return audit_words.action_words(obj.action)

    @admin.display(description="About")
    def object_link(self, obj):
        if not obj.object_type:
            return NOTHING
        # "#": an id (a reference to follow), never read as an amount.
        label = f"{audit_words.object_words(obj.object_type)} #{obj.object_id}".strip()
        model = audit_words.model_of(obj.object_type)
        if model is None or model not in self.admin_site._registry or not obj.object_id:
            return label
        try:
            url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change",
                          args=[obj.object_id])
        except NoReverseMatch:
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description="Note")
    def message_words(self, obj):
        return audit_words.text_words(obj.message) or NOTHING

    @admin.display(description="Changes")
    def changes_table(self, obj):
        rows = audit_words.changes(obj)
        if not rows:
            return NOTHING
        body = format_html_join(
            "", "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td></tr>",
            ((row["label"], row["before"], row["after"]) for row in rows),
        )
        return format_html(
            "<table><thead><tr><th>Field</th><th>Before</th><th>After</th></tr></thead>"
            "<tbody>{}</tbody></table>", body)


def when_text(entry) -> str:
    if entry.tenant_id and entry.tenant is not None:
        return local_time_display(entry.created_at, entry.tenant)
    return f"{entry.created_at:%a} {entry.created_at.day} {entry.created_at:%b %Y, %H:%M} UTC"
