from __future__ import annotations

import time
from typing import Any

from django.db.models import QuerySet
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from arbitragex.errors import ApplicationError, ErrorCode
from marketdata.api.serializers import (
    InstrumentSerializer,
    KlineQuerySerializer,
    KlineSerializer,
    QuoteQuerySerializer,
    QuoteSerializer,
    VenueSerializer,
)
from marketdata.cache import quotes_for_symbol
from marketdata.klines import klines_range, ms_to_datetime
from marketdata.models import Instrument, Venue

_ERROR = OpenApiResponse(description='Error: {"code": int, "message": str, "detail": ...}')


class VenueFilter(filters.FilterSet):
    venue = filters.CharFilter(field_name="code")

    class Meta:
        model = Venue
        fields = ["venue", "kind", "enabled"]


class InstrumentFilter(filters.FilterSet):
    venue = filters.CharFilter(field_name="venue__code")
    symbol = filters.CharFilter(field_name="symbol", lookup_expr="iexact")

    class Meta:
        model = Instrument
        fields = ["venue", "symbol", "enabled", "status"]


@extend_schema_view(get=extend_schema(summary="Venues", responses={200: VenueSerializer(many=True), 400: _ERROR}))
class VenueListView(ListAPIView):
    serializer_class = VenueSerializer
    filterset_class = VenueFilter
    queryset = Venue.objects.order_by("code")


@extend_schema_view(
    get=extend_schema(
        summary="Instruments (filters and fees)", responses={200: InstrumentSerializer(many=True), 400: _ERROR}
    )
)
class InstrumentListView(ListAPIView):
    serializer_class = InstrumentSerializer
    filterset_class = InstrumentFilter
    queryset = Instrument.objects.select_related("venue").order_by("symbol", "venue__code")


def quotes_latest(*, symbol: str) -> list[dict[str, Any]]:
    """The cached top of book of ``symbol`` on every enabled venue that lists it; a quote past its TTL
    is gone from the cache and so absent here."""
    venues = list(
        Instrument.objects.filter(symbol=symbol, enabled=True, venue__enabled=True)
        .order_by("venue__code")
        .values_list("venue__code", flat=True)
    )
    if not venues:
        raise ApplicationError(ErrorCode.INVALID_PARAMETER, f"symbol: unknown symbol {symbol!r}", {"symbol": symbol})
    now_ms = time.time_ns() // 1_000_000
    rows = []
    for venue, cached in quotes_for_symbol(symbol, venues).items():
        quote = cached.quote
        rows.append(
            {
                "venue": venue,
                "symbol": quote.symbol,
                "bid": quote.bid,
                "bid_qty": quote.bid_qty,
                "ask": quote.ask,
                "ask_qty": quote.ask_qty,
                "exchange_ts": ms_to_datetime(quote.exchange_ts_ms) if quote.exchange_ts_ms is not None else None,
                "received_ts": ms_to_datetime(quote.received_ts_ms),
                "age_ms": max(0, now_ms - quote.received_ts_ms),
            }
        )
    return rows


class QuoteListView(APIView):
    @extend_schema(
        summary="Latest quotes of a symbol, per venue",
        description="From the quote cache: a venue whose quote is older than its 5 s TTL is absent.",
        parameters=[OpenApiParameter("symbol", OpenApiTypes.STR, required=True, description="e.g. BTCUSDT")],
        responses={200: QuoteSerializer(many=True), 400: _ERROR, 401: _ERROR},
    )
    def get(self, request: Request) -> Response:
        query = QuoteQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = quotes_latest(symbol=query.validated_data["symbol"])
        return Response(QuoteSerializer(rows, many=True).data)


class KlineListView(APIView):
    @extend_schema(
        summary="One-minute candles of a venue and symbol, oldest first",
        parameters=[KlineQuerySerializer],
        responses={200: KlineSerializer(many=True), 400: _ERROR, 401: _ERROR},
    )
    def get(self, request: Request) -> Response:
        query = KlineQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        candles: QuerySet[Any] = klines_range(**query.validated_data)
        return Response(KlineSerializer(candles, many=True).data)
