"""Fault points: named places in the code where a test can make this process freeze or die, on purpose.

A crash or a stall "at any point" can only be tested if some points can be hit exactly: a worker frozen
between claiming an order and sending it cannot be produced by a signal sent from outside, which
arrives a few milliseconds too early or too late. ``fault_point("placement.before_send")`` does nothing
unless the setting ``FAULT_POINTS`` (environment ``ARBX_FAULT_POINTS``) names it:

    ARBX_FAULT_POINTS="placement.before_send=stop"        # SIGSTOP this process there, every time
    ARBX_FAULT_POINTS="placement.before_send=stop*1"      # ... the first time only
    ARBX_FAULT_POINTS="placement.before_send=stop@0.05"   # ... with probability 0.05
    ARBX_FAULT_POINTS="placement.after_send=kill"         # SIGKILL it there

A stopped process waits for a SIGCONT from the test, like a worker frozen by the machine or a debugger.
Empty by default: in production the check is one dictionary lookup.
"""

from __future__ import annotations

import logging
import os
import random
import signal
from dataclasses import dataclass
from functools import cache

from django.conf import settings

logger = logging.getLogger(__name__)

ACTIONS = {"stop": signal.SIGSTOP, "kill": signal.SIGKILL}


@dataclass(slots=True)
class FaultPoint:
    action: str
    probability: float
    times_left: int | None = None


def parse(spec: str) -> dict[str, FaultPoint]:
    """``name=action[@probability][*times],...`` into fault points; a malformed entry is an error."""
    points = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        name, _, rest = entry.partition("=")
        rest, _, times = rest.partition("*")
        action, _, probability = rest.partition("@")
        if not name or action not in ACTIONS or (times and not times.isdigit()):
            raise ValueError(f"fault point {entry!r}: expected name=stop|kill[@probability][*times]")
        chance = float(probability) if probability else 1.0
        if not 0 < chance <= 1:
            raise ValueError(f"fault point {entry!r}: the probability must be in (0, 1]")
        points[name.strip()] = FaultPoint(action, chance, int(times) if times else None)
    return points


@cache
def _configured() -> dict[str, FaultPoint]:
    return parse(settings.FAULT_POINTS)


def fault_point(name: str) -> None:
    point = _configured().get(name)
    if point is None or point.times_left == 0:
        return
    if point.probability < 1 and random.random() >= point.probability:  # noqa: S311 (a test's dice)
        return
    if point.times_left is not None:
        point.times_left -= 1
    logger.warning("fault point %s: %s of process %s", name, point.action, os.getpid())
    for handler in logging.getLogger().handlers:
        handler.flush()
    os.kill(os.getpid(), ACTIONS[point.action])
