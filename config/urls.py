"""The URLs of the whole platform: every app's API under /api/v1/, the admin, the dashboard, health and
metrics."""

from __future__ import annotations

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from arbitragex.views import healthz, metrics_view
from config.dashboard import dashboard

api_v1: list[URLPattern | URLResolver] = [
    path("", include("marketdata.api.urls")),
    path("", include("risk.api.urls")),
    path("", include("trading.api.urls")),
    path("", include("arbitragex.api_urls")),
    path("", include("notifications.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("dashboard/", dashboard, name="dashboard"),
    path("api/v1/", include(api_v1)),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
]

handler404 = "arbitragex.api.json_404"
