"""django-q2's task queue pages in words (issue 15): durations as "5 ms" / "3,400 ms" /
"12 s" (never a float of seconds), task functions by what they do ("Exact sync", not
``exact.tasks.exact_sync_task``; the dotted path stays in a tooltip for support). django_q's
own admin classes are unregistered and re-registered as subclasses (config is installed after
django_q, so its admin module is imported after theirs), and stay superuser-only.
"""

from __future__ import annotations

from django.contrib import admin
from django.template.defaultfilters import truncatechars
from django.utils.html import format_html
from django_q import admin as q_admin
from django_q.models import Failure, OrmQ, Schedule, Success

from core.display import NOTHING, sentence

# What each queued function does, in the words of the pages that queue it.
TASK_WORDS: dict[str, str] = {
    "exact.tasks.exact_sync_task": "Exact sync",
    "exact.tasks.exact_sync_due_task": "Exact sync of the companies that are due",
    "exact.tasks.exact_keepalive_task": "Exact connection keep-alive",
    "exact.tasks.exact_deliveries_prune_task": "Clean-up of old Exact webhook deliveries",
    "exact.tasks.exact_webhook_resync_task": "Exact sync after a webhook",
    "gocardless.tasks.events_process_task": "Processing GoCardless events",
    "gocardless.tasks.events_poll_task": "Checking GoCardless for new events",
    "gocardless.tasks.events_sweep_task": "Retrying GoCardless events that failed",
    "gocardless.tasks.deliveries_prune_task": "Clean-up of old GoCardless webhook deliveries",
    "reconciliation.bookings.tasks.booking_post_task": "Booking in Exact",
    "reconciliation.bookings.tasks.bookings_company_post_task": (
        "Bookings in Exact (one company's turn)"
    ),
    "reconciliation.bookings.tasks.bookings_sweep_task": "Retrying bookings in Exact",
    "reconciliation.bookings.tasks.repost_batch_task": "Sending bookings to Exact again",
    "reconciliation.bookings.tasks.plan_payments_match_task": "Matching plan payments to invoices",
    "reconciliation.bookings.tasks.plan_payments_sweep_task": "Matching plan payments (sweep)",
    "reconciliation.collection.tasks.runs_due_task": "Collection runs that are due",
    "reconciliation.collection.tasks.queued_run_task": "Collection run",
    "reconciliation.collection.tasks.attempts_check_task": "Checking collection attempts",
    "reconciliation.collection.tasks.attention_digest_task": "Needs-attention e-mail",
    "reconciliation.collection.tasks.new_invoices_task": "Collecting new invoices",
    "reconciliation.customers.tasks.invitations_tick_task": "Mandate invitation reminders",
    "reconciliation.customers.tasks.link_customer_refresh_task": "Refreshing a customer",
    "reconciliation.customers.tasks.link_reflect_task": "Writing a mandate into Exact",
    "reconciliation.customers.tasks.links_push_exact_changes_task":
        "Sending Exact's customer changes to GoCardless",
    "reconciliation.customers.tasks.reflections_sweep_task": "Retrying writes into Exact",
    "reconciliation.customers.tasks.registration_run_task": "Customer registration",
}


def task_words(func: str | None) -> str:
    """``exact.tasks.exact_sync_task`` → ``Exact sync``; an unknown function by its last
    name as a sentence (``foo.tasks.tidy_up_task`` → ``Tidy up``)."""
    if not func:
        return NOTHING
    if func in TASK_WORDS:
        return TASK_WORDS[func]
    name = func.rsplit(".", 1)[-1]
    name = name[:-5] if name.endswith("_task") else name
    return sentence(name)


def duration_words(seconds) -> str:
    """A task's time as people read it: "5 ms", "3,400 ms", "12 s", "2 min 5 s"."""
    if seconds is None:
        return NOTHING
    milliseconds = round(float(seconds) * 1000)
    if milliseconds < 10_000:
        return f"{milliseconds:,} ms"
    whole = round(milliseconds / 1000)
    if whole < 60:
        return f"{whole} s"
    return f"{whole // 60} min {whole % 60} s"


def _task(func: str) -> str:
    return format_html('<span title="{}">{}</span>', func or "", task_words(func))


class SuperuserOnly:
    """The queue's pages are for installation administrators, as before (django_q's own
    admin checks Django permissions, which no company role grants)."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        return request.user.is_active and request.user.is_superuser and allowed

    def has_delete_permission(self, request, obj=None):
        allowed = super().has_delete_permission(request, obj)
        return request.user.is_active and request.user.is_superuser and allowed


class _TaskFields:
    @admin.display(description="Task", ordering="func")
    def task(self, obj):
        return _task(obj.func)

    @admin.display(description="Time taken")
    def took(self, obj):
        return duration_words(obj.time_taken())

    @admin.display(description="Result")
    def result_raw(self, obj):
        if obj.result in (None, ""):
            return NOTHING
        # What the function returned or raised, verbatim for support: folded away.
        return format_html('<details><summary>As recorded by the task queue</summary>'
                           '<pre class="mlc-raw">{}</pre></details>', str(obj.result))

    @admin.display(description="Arguments")
    def arguments(self, obj):
        shown = ", ".join([*(repr(a) for a in obj.args or ()),
                           *(f"{k}={v!r}" for k, v in (obj.kwargs or {}).items())])
        return format_html('<span class="mlc-raw">{}</span>', shown) if shown else NOTHING

    def get_readonly_fields(self, request, obj=None):
        return list(self.fields)


class SuccessAdmin(SuperuserOnly, _TaskFields, q_admin.TaskAdmin):
    list_display = ("name", "group", "task", "cluster", "started", "stopped", "took")
    fields = ("name", "task", "group", "cluster", "started", "stopped", "took", "arguments",
              "result_raw", "attempt_count")


class FailureAdmin(SuperuserOnly, _TaskFields, q_admin.FailAdmin):
    list_display = ("name", "group", "task", "cluster", "started", "stopped", "took",
                    "short_error")
    fields = ("name", "task", "group", "cluster", "started", "stopped", "took", "arguments",
              "result_raw", "attempt_count")

    @admin.display(description="What went wrong")
    def short_error(self, obj):
        first = str(obj.result or "").strip().splitlines()
        text = first[-1] if first else ""
        return format_html('<span class="mlc-raw">{}</span>',
                           truncatechars(text, 100)) if text else NOTHING


class ScheduleAdmin(SuperuserOnly, q_admin.ScheduleAdmin):
    list_display = ("id", "schedule_name", "task", "schedule_type", "every", "repeats_words",
                    "next_run", "get_last_run", "get_success")
    list_display_links = ("id", "schedule_name")

    @admin.display(description="Name", ordering="name")
    def schedule_name(self, obj):
        return format_html('<span title="{}">{}</span>', obj.name or "", task_words(obj.func))

    @admin.display(description="Task", ordering="func")
    def task(self, obj):
        return _task(obj.func)

    @admin.display(description="Every")
    def every(self, obj):
        if obj.schedule_type == Schedule.MINUTES and obj.minutes:
            return f"{obj.minutes} minute{'s' if obj.minutes != 1 else ''}"
        return obj.get_schedule_type_display()

    @admin.display(description="Repeats")
    def repeats_words(self, obj):
        return "Forever" if obj.repeats is not None and obj.repeats < 0 else obj.repeats

    @admin.display(description="Last run")
    def get_last_run(self, obj):
        # django_q shows the run's random name in brackets; say what ran and how it went.
        link = super().get_last_run(obj)
        return link if link is not None else "Not yet"


class QueueAdmin(SuperuserOnly, q_admin.QueueAdmin):
    list_display = ("id", "queued_task", "name", "group", "lock", "task_id")

    @admin.display(description="Task")
    def queued_task(self, obj):
        return _task(obj.func())


def _replace(model, admin_class) -> None:
    if admin.site.is_registered(model):
        admin.site.unregister(model)
        admin.site.register(model, admin_class)


_replace(Success, SuccessAdmin)
_replace(Failure, FailureAdmin)
_replace(Schedule, ScheduleAdmin)
_replace(OrmQ, QueueAdmin)

