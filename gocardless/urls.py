"""GoCardless endpoints: OAuth callback and the webhook receivers."""

from django.urls import path

from gocardless import views

app_name = "gocardless"
urlpatterns: list = [
    path(
        "webhooks/gocardless/<uuid:tenant_uuid>/",
        views.TenantWebhookView.as_view(),
        name="webhook",
    ),
    path("webhooks/gocardless/", views.PartnerWebhookView.as_view(), name="webhook_partner"),
    path("connect/gocardless/callback/", views.oauth_callback, name="oauth_callback"),
]
