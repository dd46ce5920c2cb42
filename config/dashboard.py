"""The operators' dashboard page (``/dashboard/``).

The page is plain HTML and JavaScript (``config/static/arbitragex/dashboard.js``, no build step,
nothing loaded from outside the platform). Its figures come from the REST API and the WebSocket feed
``/ws/market/``, both authenticated by the admin session, so this view only hands the page what it
cannot ask for itself: the symbols to subscribe to, the venue codes by id (execution events carry
ids), the API routes, whether the user may use the staff controls, and the display precisions of
``arbitragex.display`` (so that the page rounds its figures as the server's pages and messages do).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from arbitragex import display
from marketdata.models import Instrument, Venue

WS_MARKET_PATH = "/ws/market/"  # marketdata.routing; WebSocket routes are not in the HTTP URLconf


def dashboard_config(*, is_staff: bool) -> dict[str, Any]:
    symbols = sorted(set(Instrument.objects.filter(enabled=True, venue__enabled=True).values_list("symbol", flat=True)))
    return {
        "symbols": symbols,
        "venues": {str(pk): code for pk, code in Venue.objects.order_by("code").values_list("pk", "code")},
        "staff": is_staff,
        "ws_path": WS_MARKET_PATH,
        "display": {
            "max_places": display.MAX_PLACES,
            "money_places_fiat": display.MONEY_PLACES_FIAT,
            "money_places_coin": display.MONEY_PLACES_COIN,
            "usd_like": sorted(display.USD_LIKE_ASSETS),
        },
        "api": {
            "quotes": reverse("quote-list"),
            "instruments": reverse("instrument-list"),
            "executions": reverse("execution-list"),
            "statistics": reverse("execution-statistics"),
            "quality": reverse("execution-quality"),
            "opportunities": reverse("opportunity-list"),
            "balances": reverse("balance-list"),
            "risk": reverse("risk-state-list"),
            "breaker_open": reverse("risk-breaker-open"),
            "breaker_close": reverse("risk-breaker-close"),
            "config": reverse("config"),
        },
        "admin": {
            "index": reverse("admin:index"),
            "execution": reverse("admin:trading_tradeexecution_changelist"),
            "logout": reverse("admin:logout"),
        },
    }


@require_GET
@login_required
@ensure_csrf_cookie  # the staff controls send the CSRF token from the cookie
def dashboard(request: HttpRequest) -> HttpResponse:
    config = dashboard_config(is_staff=request.user.is_staff)
    return render(request, "dashboard.html", {"dashboard_config": config})
