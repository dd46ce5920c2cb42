from __future__ import annotations

from django.urls import path

from marketdata.api.views import InstrumentListView, KlineListView, QuoteListView, VenueListView

urlpatterns = [
    path("venues/", VenueListView.as_view(), name="venue-list"),
    path("instruments/", InstrumentListView.as_view(), name="instrument-list"),
    path("quotes/", QuoteListView.as_view(), name="quote-list"),
    path("klines/", KlineListView.as_view(), name="kline-list"),
]
