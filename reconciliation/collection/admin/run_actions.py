"""What operators do on the runs screen: *Collect now* and *Approve*, each behind a
confirmation page, and the message that reports the live run they started.

The services decide (``run_start``, ``run_approve``); these views ask, call and report. A
service's refusal becomes a message, and so does any other failure: a person's click never
ends in a 500.
"""

from __future__ import annotations

import logging

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from reconciliation.collection.admin.display import admin_url, money_totals
from reconciliation.collection.models import CollectionRun, Decision, RunKind, RunState, RunTrigger
from reconciliation.collection.runs import RunRefused, run_approve, run_start
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
        ]
        return own + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        extra = {
            "can_approve": obj is not None
            and self.approvable(obj)
            and self.has_approve_permission(request, obj)
        }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

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
                "items": collect,
                "skipped": run.skipped,
                "skipped_url": reverse("admin:collection_collectionitem_changelist")
                + f"?run={run.pk}&decision__exact={Decision.SKIP}",
                "change_url": change_url,
            },
        )

    def _approve(self, request, run, change_url):
        # The service re-checks the state under a row lock, so a second click (or a second
        # person) is refused there and becomes a message; nothing is submitted twice.
        try:
            live = run_approve(preview=run, user=request.user)
        except RunRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return HttpResponseRedirect(change_url)
        except Exception as exc:  # a person's click never ends in a 500
            logger.exception("approving collection preview %s failed", run.pk)
            live = run.live_runs.order_by("-pk").first()
            if live is not None:  # run_live stored its failure before re-raising
                self._report_live(request, live, f"Preview #{run.pk} approved.")
            else:
                self.message_user(
                    request,
                    f"Approving run #{run.pk} failed ({type(exc).__name__}).",
                    messages.ERROR,
                )
            return HttpResponseRedirect(change_url)
        self._report_live(request, live, f"Preview #{run.pk} approved.")
        return HttpResponseRedirect(admin_url(live))

    def _report_live(self, request, live, prefix: str) -> None:
        link = format_html('<a href="{}">live run #{}</a>', admin_url(live), live.pk)
        if live.state == RunState.COMPLETED:
            level = messages.WARNING if live.errors else messages.SUCCESS
            text = format_html(
                "{} {}: {} payment(s) created ({}), {} error(s), {} line(s) not collected.",
                prefix,
                link,
                live.submitted,
                money_totals(live.submitted_totals),
                live.errors,
                live.skipped,
            )
        else:
            level = messages.ERROR
            # run_approve puts a preview back to "awaiting approval" when nothing was sent;
            # otherwise the rest needs a fresh preview. Say which, so nobody guesses.
            preview = CollectionRun.objects.filter(pk=live.preview_id).first()
            if preview is not None and preview.state == RunState.AWAITING_APPROVAL:
                next_step = "Nothing was sent; the preview can be approved again."
            elif preview is not None and preview.state == RunState.SUPERSEDED:
                next_step = "Nothing was sent; approve the newer preview."
            else:
                next_step = "Use Collect now for a fresh preview once the cause is fixed."
            text = format_html(
                "{} {} is {}: {}. {} payment(s) created. {}",
                prefix,
                link,
                live.get_state_display().lower(),
                live.error or "no detail",
                live.submitted,
                next_step,
            )
        self.message_user(request, text, level)

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
                run = run_start(tenant=tenant, trigger=RunTrigger.USER, user=request.user)
            except RunRefused as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return HttpResponseRedirect(changelist)
            except Exception as exc:  # a person's click never ends in a 500
                logger.exception("collect now for tenant %s failed", tenant.pk)
                self.message_user(
                    request, f"Collect now failed ({type(exc).__name__}).", messages.ERROR
                )
                return HttpResponseRedirect(changelist)
            if run.kind == RunKind.LIVE:
                self._report_live(request, run, f"{tenant}: collected now.")
            else:
                self.message_user(
                    request,
                    format_html(
                        '{}: <a href="{}">preview #{}</a>: {} to collect ({}), {} not. {}',
                        tenant,
                        admin_url(run),
                        run.pk,
                        run.to_collect,
                        money_totals(run.totals),
                        run.skipped,
                        "Review it and approve." if run.state == RunState.AWAITING_APPROVAL else "",
                    ),
                    messages.SUCCESS,
                )
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
