"""Signals the venue adapters send about a venue's health; the apps above record and report them.

Adapters sit below the apps (they import only the core), so they say what happened and the apps that
own the rows write them: marketdata keeps ``Venue`` health, notifications tells the operators.
"""

from __future__ import annotations

from django.dispatch import Signal

# A venue answered 418: every call to it is refused until ``until`` (``venues.ratelimit.RateLimiter.ban``).
# kwargs: venue_code (str), until (aware datetime).
venue_banned = Signal()

# The weight used in the venue's current 1-minute window, as last counted (written for the health page
# about once every few seconds per process). kwargs: venue_code (str), used_weight (int).
venue_weight_used = Signal()
