"""What operators do on the runs screen: *Collect now* and *Approve*, each behind a
confirmation page, and the run page's live progress.

Nothing is collected in the request: the services (``run_start_queued``, ``approval_queue``)
store the run *queued* and queue its task, and the view redirects at once to the run's page,
which follows the run (``progress_view``, polled by ``mlc/progress.js``) and reloads when it
has finished. A service's refusal (a second click, another run under way, collection off)
becomes a message, and so does any other failure: a person's click never ends in a 500.
"""

from __future__ import annotations

import logging

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Sum
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from core.display import counted
from reconciliation.collection.admin.display import (
    admin_url,
    money,
    money_totals,
    scheme_words,
)
from reconciliation.collection.admin.progress import UNDER_WAY, run_next_step, run_progress
from reconciliation.collection.live import live_run_active
from reconciliation.collection.models import Decision, RunKind, RunState, RunTrigger
from reconciliation.collection.runs import RunRefused, approval_queue, run_start_queued
from tenants.models import Role, Tenant
from tenants.scoping import tenant_ids_with_role

logger = logging.getLogger(__name__)


class _CollectNowForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none(), label="Company")

    def __init__(self, *args, tenants, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tenant"].queryset = tenants
        if tenants.count() == 1:
            self.fields["tenant"].initial = tenants.first()


class RunActionsMixin:
    """For ``CollectionRunAdmin``: its ``approve`` action, the approve and collect-now pages
    (own URLs) and their permissions (``action_roles``: operators)."""

    # --- permissions ------------------------------------------------------------------------
    def has_approve_permission(self, request, obj=None):
        return self.has_action_permission(request, "approve", obj)

    def has_collect_permission(self, request, obj=None):
        return self.has_action_permission(request, "collect", obj)

    @staticmethod
    def approvable(run) -> bool:
        return run.kind == RunKind.PREVIEW and run.state == RunState.AWAITING_APPROVAL

    # --- urls and pages ---------------------------------------------------------------------
    def get_urls(self):
        own = [
            path(
                "collect-now/",
                self.admin_site.admin_view(self.collect_now_view),
                name="collection_collectionrun_collect_now",
            ),
            path(
                "<int:pk>/approve/",
                self.admin_site.admin_view(self.approve_view),
                name="collection_collectionrun_approve",
            ),
            path(
                "<int:pk>/progress/",
                self.admin_site.admin_view(self.progress_view),
                name="collection_collectionrun_progress",
            ),
        ]
        return own + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra = {
            "can_approve": obj is not None
            and self.approvable(obj)
            and self.has_approve_permission(request, obj)
        }
        if obj is not None and obj.state in UNDER_WAY:
            extra["progress"] = run_progress(obj)
            extra["progress_live"] = obj.kind == RunKind.LIVE
            extra["progress_url"] = reverse(
                "admin:collection_collectionrun_progress", args=[obj.pk]
            )
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    def progress_view(self, request, pk):
        """The run's progress as JSON; scoped like its page (another company's run: 404)."""
        run = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        return JsonResponse(run_progress(run))

    @admin.action(description="Approve the selected preview…", permissions=("approve",))
    def approve(self, request, queryset):
        """Leads to the confirmation page; nothing is submitted from the changelist."""
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one preview to approve.", messages.WARNING)
            return None
        return HttpResponseRedirect(
            reverse("admin:collection_collectionrun_approve", args=[queryset.get().pk])
        )

    def approve_view(self, request, pk):
        # Scoped queryset first: another company's run is a 404, not a 403 that confirms it.
        run = get_object_or_404(self.get_queryset(request).select_related("tenant"), pk=pk)
        if not self.has_approve_permission(request, run):
            raise PermissionDenied
        change_url = admin_url(run)
        if request.method == "POST":
            return self._approve(request, run, change_url)
        if not self.approvable(run):
            self.message_user(
                request,
                f"Run #{run.pk} is {run.get_state_display().lower()}; only a preview awaiting "
                "approval can be approved.",
                messages.ERROR,
            )
            return HttpResponseRedirect(change_url)
        collect = run.items.filter(decision=Decision.COLLECT)
        return TemplateResponse(
            request,
            "admin/collection/approve.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Approve preview #{run.pk} of {run.tenant}",
                "opts": self.model._meta,
                "run": run,
                "totals": money_totals(run.totals),
                "items": [
                    {
                        "item": item,
                        "amount": money(item.amount, item.currency),
                        "scheme": scheme_words(item.scheme),
                    }
                    for item in collect
                ],
                "skipped": run.skipped,
                "skipped_url": reverse("admin:collection_collectionitem_changelist")
                + f"?run={run.pk}&decision__exact={Decision.SKIP}",
                "change_url": change_url,
            },
        )

    def _approve(self, request, run, change_url):
        # The service re-checks the state under a row lock, so a second click (or a second
        # person) is refused there and becomes a message; nothing is queued twice.
        try:
            live = approval_queue(preview=run, user=request.user)
        except RunRefused as exc:
            run.refresh_from_db()
            again = ""
            if run.state == RunState.AWAITING_APPROVAL:
                when = "that run has finished" if live_run_active(run.tenant) else "that is fixed"
                again = (
                    f" Preview #{run.pk} was not approved; it can be approved again once {when}."
                )
            self.message_user(request, f"{exc}{again}", messages.ERROR)
            return HttpResponseRedirect(change_url)
        except Exception as exc:  # a person's click never ends in a 500
            logger.exception("approving collection preview %s failed", run.pk)
            self.message_user(
                request,
                f"Approving run #{run.pk} failed ({type(exc).__name__}); nothing was sent.",
                messages.ERROR,
            )
            return HttpResponseRedirect(change_url)
        live.refresh_from_db()
        if live.state in UNDER_WAY:
            payments = run.items.filter(decision=Decision.COLLECT).aggregate(n=Sum("parts"))["n"]
            self.message_user(
                request,
                f"Preview #{run.pk} approved: "
                f"{counted(payments or 0, 'payment is', 'payments are')} being sent; "
                "this page shows their progress.",
                messages.SUCCESS,
            )
        else:  # the task already ran (workers that were quicker than this page)
            self._report_live(request, live, f"Preview #{run.pk} approved.")
        return HttpResponseRedirect(admin_url(live))

    def _report_live(self, request, live, prefix: str) -> None:
        link = format_html('<a href="{}">live run #{}</a>', admin_url(live), live.pk)
        if live.state == RunState.COMPLETED:
            level = messages.WARNING if live.errors else messages.SUCCESS
            text = format_html(
                "{} {}: {} created ({}), {}, {} not collected.",
                prefix,
                link,
                counted(live.submitted, "payment"),
                money_totals(live.submitted_totals),
                counted(live.errors, "error"),
                counted(live.skipped, "line"),
            )
        else:
            level = messages.ERROR
            next_step = run_next_step(live)
            text = format_html(
                "{} {} is {}: {}. {} created. {}",
                prefix,
                link,
                live.get_state_display().lower(),
                live.error or "no detail",
                counted(live.submitted, "payment"),
                next_step,
            )
        self.message_user(request, text, level)

    def _report_started(self, request, run, tenant) -> None:
        """One sentence on what Collect now started (or, if the workers were quicker than
        this page, what it did)."""
        run.refresh_from_db()
        if run.kind == RunKind.LIVE and run.state not in UNDER_WAY:
            self._report_live(request, run, f"{tenant}: collected now.")
            return
        if run.kind == RunKind.LIVE:
            text = (
                f"{tenant}: live run #{run.pk} started: the open invoices are being checked "
                "and collected; this page shows its progress."
            )
        elif run.state in UNDER_WAY:
            text = (
                f"{tenant}: preview #{run.pk} is being prepared; this page shows it when it is "
                "ready to approve."
            )
        else:
            text = format_html(
                '{}: <a href="{}">preview #{}</a>: {} to collect ({}), {} not. {}',
                tenant,
                admin_url(run),
                run.pk,
                run.to_collect,
                money_totals(run.totals),
                run.skipped,
                "Review it and approve." if run.state == RunState.AWAITING_APPROVAL else "",
            )
        self.message_user(request, text, messages.SUCCESS)

    def collect_now_view(self, request):
        if not self.has_collect_permission(request):
            raise PermissionDenied
        tenants = Tenant.objects.filter(is_active=True).order_by("name")
        if not request.user.is_superuser:
            tenants = tenants.filter(
                pk__in=tenant_ids_with_role(request.user, Role.OPERATOR, request=request)
            )
        form = _CollectNowForm(request.POST or None, tenants=tenants)
        if request.method == "POST" and form.is_valid():
            tenant = form.cleaned_data["tenant"]
            changelist = reverse("admin:collection_collectionrun_changelist")
            try:
                run = run_start_queued(tenant=tenant, trigger=RunTrigger.USER, user=request.user)
            except RunRefused as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return HttpResponseRedirect(changelist)
            except Exception as exc:  # a person's click never ends in a 500
                logger.exception("collect now for tenant %s failed", tenant.pk)
                self.message_user(
                    request, f"Collect now failed ({type(exc).__name__}).", messages.ERROR
                )
                return HttpResponseRedirect(changelist)
            self._report_started(request, run, tenant)
            return HttpResponseRedirect(admin_url(run))
        return TemplateResponse(
            request,
            "admin/collection/collect_now.html",
            {
                **self.admin_site.each_context(request),
                "title": "Collect now",
                "opts": self.model._meta,
                "form": form,
                "modes": [(t, t.get_collection_mode_display()) for t in tenants],
                "back_url": reverse("admin:collection_collectionrun_changelist"),
            },
        )
