"""GoCardless endpoints: OAuth callback and the webhook receivers."""

app_name = "gocardless"
urlpatterns: list = []
