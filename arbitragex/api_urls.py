from __future__ import annotations

from django.urls import path

from arbitragex.views import ConfigView, TokenView

urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="auth-token"),
    path("config/", ConfigView.as_view(), name="config"),
]
