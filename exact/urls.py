"""Exact Online endpoints: OAuth callback, division picker and the webhook receiver."""

from django.urls import path

from exact import views

app_name = "exact"
urlpatterns = [
    path("connect/exact/callback/", views.oauth_callback, name="oauth-callback"),
    path("connect/exact/division/", views.division_choose, name="division-choose"),
    # App-wide: routed by the event's division (exact/views.py).
    path("webhooks/exact/", views.ExactWebhookView.as_view(), name="webhook-app"),
    path(
        "webhooks/exact/<uuid:tenant_uuid>/",
        views.ExactWebhookView.as_view(),
        name="webhook",
    ),
]
