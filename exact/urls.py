"""Exact Online endpoints: OAuth callback and the webhook receiver."""

app_name = "exact"
urlpatterns: list = []
