from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    """No models: a dashboard over the other apps' data, installed as the admin's index page
    without replacing the AdminSite class (``admin_index.install``)."""

    name = "reconciliation.workspace"
    label = "workspace"
    verbose_name = "Finance workspace"

    def ready(self) -> None:
        from django.contrib import admin

        from reconciliation.workspace import (
            company_admin,
            customer_admin,
            payments_admin,
            payout_admin,
        )
        from reconciliation.workspace.admin_index import install

        install(admin.site)
        company_admin.install(admin.site)
        # GoCardless' payments list and payout page, with reconciliation's customers,
        # invoices and bookings on them.
        payments_admin.install(admin.site)
        payout_admin.install(admin.site)
        # The customer link's page becomes the customer page (every app's data about one
        # customer). ready() runs after the admin's autodiscovery, so the replacement sticks.
        customer_admin.install(admin.site)
