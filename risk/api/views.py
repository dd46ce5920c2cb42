"""Risk API: the risk state of every scope, and the staff actions on the breaker and the daily figures.
Each action goes through ``risk.services``, which writes the audit row with the actor."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from arbitragex.views import IsStaff, StrictBooleanFilter, error_responses
from risk import services
from risk.api.serializers import (
    BreakerOpenSerializer,
    DailyResetResultSerializer,
    DailyResetSerializer,
    RiskStateSerializer,
    ScopeSerializer,
)
from risk.models import RiskState


class RiskStateFilter(filters.FilterSet):
    account = filters.CharFilter(help_text="'global' or an exchange account id.")
    symbol = filters.CharFilter(method=lambda qs, name, value: qs.filter(symbol=value.upper()))
    breaker_open = StrictBooleanFilter()

    class Meta:
        model = RiskState
        fields: list[str] = []


@extend_schema_view(
    get=extend_schema(
        summary="Risk state of every scope",
        tags=["risk"],
        responses={200: RiskStateSerializer(many=True), **error_responses(400)},
    )
)
class RiskStateListView(ListAPIView):
    serializer_class = RiskStateSerializer
    pagination_class = None
    filterset_class = RiskStateFilter

    def get_queryset(self) -> Any:
        return RiskState.objects.order_by("account", "symbol")


class BreakerOpenView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        summary="Open the circuit breaker (staff)",
        tags=["risk"],
        request=BreakerOpenSerializer,
        responses={200: RiskStateSerializer, **error_responses(400, 403)},
    )
    def post(self, request: Request) -> Response:
        body = BreakerOpenSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        row = services.breaker_open(**body.validated_data, actor=request.user)
        return Response(RiskStateSerializer(row).data)


class BreakerCloseView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        summary="Close the circuit breaker (staff)",
        tags=["risk"],
        request=ScopeSerializer,
        responses={200: RiskStateSerializer, **error_responses(400, 403)},
    )
    def post(self, request: Request) -> Response:
        body = ScopeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        row = services.breaker_close(**body.validated_data, actor=request.user)
        return Response(RiskStateSerializer(row).data)


class DailyResetView(APIView):
    permission_classes = [IsStaff]

    @extend_schema(
        summary="Reset the daily risk figures (staff)",
        description="Zeroes the daily PnL of every scope for a new UTC day; idempotent per date. Audited.",
        tags=["risk"],
        request=DailyResetSerializer,
        responses={200: DailyResetResultSerializer, **error_responses(400, 403)},
    )
    def post(self, request: Request) -> Response:
        body = DailyResetSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        day = body.validated_data.get("date") or timezone.now().date()
        changed = services.risk_daily_reset(today=day, actor=request.user)
        return Response(DailyResetResultSerializer({"date": day, "scopes_reset": changed}).data)
