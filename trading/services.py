"""Trading's services: the index. Each capability lives in a module named after what it does; this
module names the entry point of each, so that a caller (the API, the admin, the tasks, another app)
writes ``services.execution_create`` and a reader finds where it lives.

===================  ===========================  ===================================================
capability           module                       entry points
===================  ===========================  ===================================================
executions           ``trading.executions``       ``execution_create``, ``execution_create_from_opportunity``
placement            ``trading.placement``        ``execution_place``
orders               ``trading.orders``           ``order_apply_update`` (every venue answer, stream or poll)
sync                 ``trading.sync``             ``orders_sync_open``, ``instruments_sync``, ``opportunities_expire``
leg failure          ``trading.leg_failure``      ``orders_resolve_timed_out`` (and the repair plan)
finalise             ``trading.finalise``         ``execution_settle``, ``execution_resolve``
reconcile            ``trading.reconcile``        ``reconcile``, ``incidents_resolve``
balances             ``trading.balances``         ``balances_sync``, ``balances_release``
cancel               ``trading.cancel``           ``execution_cancel``
statistics           ``trading.statistics``       ``execution_statistics_report`` (a read), ``trading.rollup``
===================  ===========================  ===================================================

Reads are in ``trading.selectors``; the row locks and their order in ``trading.locks``; what a change
does after its commit (tasks, dashboards, the cache) in ``trading.effects``.
"""

from __future__ import annotations

from trading.balances import balances_release, balances_sync
from trading.cancel import execution_cancel
from trading.executions import execution_create, execution_create_from_opportunity
from trading.finalise import execution_resolve, execution_settle
from trading.leg_failure import orders_resolve_timed_out
from trading.orders import order_apply_update
from trading.placement import execution_place
from trading.reconcile import incidents_resolve, reconcile
from trading.rollup import execution_rollups_refresh
from trading.sync import instruments_sync, opportunities_expire, orders_sync_open

__all__ = [
    "balances_release",
    "balances_sync",
    "execution_cancel",
    "execution_create",
    "execution_create_from_opportunity",
    "execution_place",
    "execution_resolve",
    "execution_rollups_refresh",
    "execution_settle",
    "incidents_resolve",
    "instruments_sync",
    "opportunities_expire",
    "order_apply_update",
    "orders_resolve_timed_out",
    "orders_sync_open",
    "reconcile",
]
