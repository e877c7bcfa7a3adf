from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from config.health import healthz
from config.metrics import metrics

admin.site.site_header = "ml-connector"
admin.site.site_title = "ml-connector"
admin.site.index_title = "Exact Online ⇄ GoCardless"

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("", include("exact.urls")),
    path("", include("gocardless.urls")),
]
