from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from trading.api.views import BalanceListView, ExecutionViewSet, OpportunityListView, OrderListView

router = SimpleRouter()
router.register("executions", ExecutionViewSet, basename="execution")

urlpatterns = [
    path("orders/", OrderListView.as_view(), name="order-list"),
    path("opportunities/", OpportunityListView.as_view(), name="opportunity-list"),
    path("balances/", BalanceListView.as_view(), name="balance-list"),
    *router.urls,
]
