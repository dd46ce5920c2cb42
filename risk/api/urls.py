from __future__ import annotations

from django.urls import path

from risk.api.views import BreakerCloseView, BreakerOpenView, DailyResetView, RiskStateListView

urlpatterns = [
    path("risk/", RiskStateListView.as_view(), name="risk-state-list"),
    path("risk/breaker/open/", BreakerOpenView.as_view(), name="risk-breaker-open"),
    path("risk/breaker/close/", BreakerCloseView.as_view(), name="risk-breaker-close"),
    path("risk/reset-daily/", DailyResetView.as_view(), name="risk-reset-daily"),
]
