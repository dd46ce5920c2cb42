"""Trading API: executions (list, detail, manual create, cancel, statistics), orders, opportunities
and balances. Views translate HTTP to selectors and services and back; nothing else happens here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from arbitragex.views import IsStaff, error_responses
from trading import selectors, services
from trading.api.filters import BalanceFilter, ExecutionFilter, OpportunityFilter, OrderFilter
from trading.api.pagination import ExecutionCursorPagination, OpportunityCursorPagination, OrderCursorPagination
from trading.api.serializers import (
    BalanceSerializer,
    ExecutionCancelSerializer,
    ExecutionCreateSerializer,
    ExecutionDetailSerializer,
    ExecutionSerializer,
    ExecutionStatisticsSerializer,
    OpportunitySerializer,
    OrderSerializer,
    QualityQuerySerializer,
    QualityReportSerializer,
    StatisticsQuerySerializer,
)
from trading.quality import execution_quality
from trading.statistics import execution_statistics_report

STATISTICS_DEFAULT_RANGE = timedelta(days=30)
UUID_PATTERN = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"
EXECUTION_ID = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Execution id.")


@extend_schema_view(
    list=extend_schema(summary="Executions", responses={200: ExecutionSerializer(many=True), **error_responses(400)}),
    retrieve=extend_schema(
        summary="One execution with its orders and fills",
        parameters=[EXECUTION_ID],
        responses={200: ExecutionDetailSerializer, **error_responses(404)},
    ),
)
class ExecutionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ExecutionSerializer
    filterset_class = ExecutionFilter
    pagination_class = ExecutionCursorPagination
    lookup_value_regex = UUID_PATTERN

    def get_permissions(self) -> list[permissions.BasePermission]:
        if self.action in {"create", "cancel"}:
            return [IsStaff()]
        return [permissions.IsAuthenticated()]

    def get_queryset(self) -> Any:
        return selectors.executions_list()

    def paginate_queryset(self, queryset: Any) -> Any:
        page = super().paginate_queryset(queryset)
        if page is not None:
            selectors.executions_names_attach(page)
        return page

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        execution = selectors.execution_get(execution_id=kwargs["pk"])
        return Response(ExecutionDetailSerializer(execution).data)

    @extend_schema(
        summary="Create a manual execution (staff)",
        description=(
            "Runs the same risk checks and transaction as an automatic execution: the kill switch, the breaker, "
            "quote staleness, balances, price band, profit rate, notional and open executions. The quantity and "
            "prices are rounded to the venues' filters. Written to the audit log with the actor."
        ),
        request=ExecutionCreateSerializer,
        responses={201: ExecutionDetailSerializer, **error_responses(400, 403, 409, 422, 501)},
    )
    def create(self, request: Request) -> Response:
        body = ExecutionCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        execution = services.execution_create(
            symbol=data["symbol"],
            buy_venue=data["buy_venue"],
            sell_venue=data["sell_venue"],
            quantity=data["quantity"],
            buy_price=data["buy_price"],
            sell_price=data["sell_price"],
            actor=request.user,
        )
        detail = selectors.execution_detail(execution_id=execution.pk)
        return Response(ExecutionDetailSerializer(detail).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Cancel an execution (staff)",
        description="Cancels the open orders of an execution that is not finished yet. Audited with the actor.",
        parameters=[EXECUTION_ID],
        request=ExecutionCancelSerializer,
        responses={200: ExecutionDetailSerializer, **error_responses(400, 403, 404, 409, 501, 502)},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        body = ExecutionCancelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.execution_cancel(execution_id=pk, actor=request.user, reason=body.validated_data.get("reason", ""))
        detail = selectors.execution_detail(execution_id=pk)
        return Response(ExecutionDetailSerializer(detail).data)

    @extend_schema(
        summary="Execution statistics",
        description=(
            "Totals over executions started in [start, end): counts, expected and actual profit, average profit and "
            "win rate over the settled executions, and fees. With group_by, also per UTC day or per symbol. "
            "Computed in one SQL query."
        ),
        parameters=[StatisticsQuerySerializer],
        responses={200: ExecutionStatisticsSerializer, **error_responses(400)},
    )
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=None)
    def statistics(self, request: Request) -> Response:
        query = StatisticsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        end = params.get("end") or timezone.now()
        start = params.get("start") or _range_start(end)
        report = execution_statistics_report(
            start=start, end=end, symbol=params.get("symbol"), group_by=params.get("group_by")
        )
        return Response(ExecutionStatisticsSerializer(report).data)

    @extend_schema(
        summary="Execution quality per venue pair",
        description=(
            "Over the executions that ended in the last window_s seconds, per venue pair: capture rate (completed / "
            "taken), realised over expected profit, the legging-loss share of gross profit, latency percentiles of "
            "each stage and the paper book's age at fill. Two SQL queries."
        ),
        parameters=[QualityQuerySerializer],
        responses={200: QualityReportSerializer, **error_responses(400)},
    )
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=None)
    def quality(self, request: Request) -> Response:
        query = QualityQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(QualityReportSerializer(execution_quality(window_s=query.validated_data["window_s"])).data)


def _range_start(end: datetime) -> datetime:
    """The default start, ``STATISTICS_DEFAULT_RANGE`` before ``end``; from the earliest date when ``end`` is
    closer than that to year 1 (a subtraction would overflow: a 500 the fuzzing found)."""
    try:
        return end - STATISTICS_DEFAULT_RANGE
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


@extend_schema_view(
    get=extend_schema(summary="Orders", responses={200: OrderSerializer(many=True), **error_responses(400)})
)
class OrderListView(ListAPIView):
    serializer_class = OrderSerializer
    filterset_class = OrderFilter
    pagination_class = OrderCursorPagination

    def get_queryset(self) -> Any:
        return selectors.orders_list()


@extend_schema_view(
    get=extend_schema(
        summary="Detected opportunities, taken or rejected",
        responses={200: OpportunitySerializer(many=True), **error_responses(400)},
    )
)
class OpportunityListView(ListAPIView):
    serializer_class = OpportunitySerializer
    filterset_class = OpportunityFilter
    pagination_class = OpportunityCursorPagination

    def get_queryset(self) -> Any:
        return selectors.opportunities_list()


@extend_schema_view(
    get=extend_schema(
        summary="Account balances",
        description="One row per account and asset (not paginated: the table is accounts x assets).",
        responses={200: BalanceSerializer(many=True), **error_responses(400)},
    )
)
class BalanceListView(ListAPIView):
    serializer_class = BalanceSerializer
    filterset_class = BalanceFilter
    pagination_class = None

    def get_queryset(self) -> Any:
        return selectors.balances_list()
