"""WebSockets ``/ws/v5/public``, ``/ws/v5/private`` and ``/ws/v5/business`` (demo: ``/demo/ws/v5/...``,
standing for wspap.okx.com).

Public channels: ``books`` (a 400-level snapshot with prevSeqId -1, then diffs every
``books_interval`` whose prevSeqId is the previous seqId; an empty diff with prevSeqId == seqId
after ``books_heartbeat`` seconds without change), ``books5``, ``bbo-tbt``, ``tickers`` and
``trades``. Private channels (after ``login``): ``orders`` (a push per state change and per fill)
and ``account`` (balance details on change). Trading operations ``order``, ``batch-orders`` and
``cancel-order`` on the private endpoint. The text ``ping`` is answered with ``pong``; a
connection with nothing pushed to it, or without a subscription, for ``idle_timeout`` seconds is
cut.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import hmac
import logging
import secrets
import time
from collections import deque
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import WSMsgType, web

from tests.fakevenue.book import LevelChange, OrderBook, Side
from tests.fakevenue.streams import Outbox

from . import errors, render
from .errors import OkxError
from .faults import FaultKind
from .models import Account, Fill, Order, PublicTrade
from .numbers import num
from .rest import failure_item, micros
from .signing import sign, ws_login_prehash

if TYPE_CHECKING:
    from .engine import Engine
    from .venue import FakeOkx

log = logging.getLogger(__name__)

ENDPOINTS = ("public", "private", "business")
PUBLIC_CHANNELS = ("books", "books5", "bbo-tbt", "tickers", "trades")
PRIVATE_CHANNELS = ("orders", "account")
TRADE_OPS = ("order", "batch-orders", "cancel-order")
MAX_SKEW_S = 30
BOOKS_DEPTH = 400
CHECKSUM_DEPTH = 25
# subscribe + unsubscribe + login requests a connection may send per hour.
OPS_PER_HOUR = 480
WRONG_URL_FOR_OP = (
    "The current operation is not supported by this URL. Please use the correct WebSocket URL for the operation."
)
MAINTENANCE_NOTICE = "The connection will soon be closed for a service upgrade. Please reconnect."


def arg_key(arg: dict[str, Any]) -> str:
    return orjson.dumps(arg, option=orjson.OPT_SORT_KEYS).decode()


def book_checksum(book: OrderBook) -> int:
    """The legacy CRC32 over "b1px:b1sz:a1px:a1sz:..." of the top 25 levels, as a signed int32."""
    _, bids, asks = book.snapshot(CHECKSUM_DEPTH)
    parts: list[str] = []
    for index in range(max(len(bids), len(asks))):
        if index < len(bids):
            parts += [num(bids[index][0]), num(bids[index][1])]
        if index < len(asks):
            parts += [num(asks[index][0]), num(asks[index][1])]
    value = binascii.crc32(":".join(parts).encode())
    return value - (1 << 32) if value >= 1 << 31 else value


class Connection(Outbox):
    def __init__(
        self,
        hub: WsHub,
        ws: web.WebSocketResponse,
        transport: asyncio.BaseTransport | None,
        endpoint: str,
        demo: bool,
    ) -> None:
        super().__init__(ws, transport)
        self.hub = hub
        self.endpoint = endpoint
        self.demo = demo
        self.conn_id = secrets.token_hex(4)
        self.subs: dict[str, dict[str, Any]] = {}
        self.account: Account | None = None
        self.book_seq: dict[str, int] = {}  # instId -> the last books seqId sent
        self.last_push = time.monotonic()
        self.unsubscribed_since: float | None = time.monotonic()
        self.op_times: deque[float] = deque()
        self.held: tuple[str, str] | None = None  # a reordered private push waiting for the next one
        self._held_timer: asyncio.TimerHandle | None = None

    def put(self, text: str, key: str = "") -> None:
        self.last_push = time.monotonic()
        super().put(text, key)

    def delay_for(self, key: str) -> float:
        target, _, channel = key.partition(":")
        return self.hub.venue.faults.latency(target, channel) if channel else 0.0

    def send(self, payload: dict[str, Any], key: str = "") -> None:
        self.put(orjson.dumps(payload).decode(), key)

    def event(self, event: str, *, request_id: Any = None, **fields: Any) -> None:
        payload: dict[str, Any] = {}
        if request_id is not None:
            payload["id"] = request_id
        payload["event"] = event
        payload.update(fields)
        payload["connId"] = self.conn_id
        self.send(payload)

    def error(self, code: str, msg: str, request_id: Any = None) -> None:
        self.event("error", request_id=request_id, code=code, msg=msg)

    def subscribed(self, channel: str) -> Iterator[dict[str, Any]]:
        return (arg for arg in self.subs.values() if arg.get("channel") == channel)

    def hold(self, text: str, key: str, release_after: float) -> None:
        self.held = (text, key)
        self._held_timer = asyncio.get_running_loop().call_later(release_after, self.release_held)

    def release_held(self) -> None:
        if self._held_timer is not None:
            self._held_timer.cancel()
            self._held_timer = None
        if self.held is not None:
            text, key = self.held
            self.held = None
            self.put(text, key)


class WsHub:
    def __init__(self, venue: FakeOkx) -> None:
        self.venue = venue
        self.connections: set[Connection] = set()
        self.books_interval = 0.1
        self.books_heartbeat = 60.0
        self.idle_timeout = 30.0
        self.books_checksum = False
        self.maintenance_close_code = 1012
        self._pending_books: dict[str, dict[tuple[Side, Decimal], Decimal]] = {}
        self._dirty_books5: set[str] = set()
        self._dirty_tickers: set[str] = set()
        self._last_bbo: dict[str, Any] = {}
        self._last_books_push: dict[str, float] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._closers: set[asyncio.Task[None]] = set()

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(self._flush_loop()))

    async def stop(self) -> None:
        for task in [*self._tasks, *self._closers]:
            task.cancel()
        for task in [*self._tasks, *self._closers]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await asyncio.gather(*(c.close(1001) for c in list(self.connections)), return_exceptions=True)

    def drop(self, endpoint: str | None = None) -> int:
        """Cut connections (of one endpoint: public, private, business) without a close frame."""
        dropped = [c for c in list(self.connections) if endpoint is None or c.endpoint == endpoint]
        for conn in dropped:
            conn.abort()
            self.connections.discard(conn)
        return len(dropped)

    def announce_maintenance(self, close_after: float) -> None:
        """Notice 64008 to every connection, then close them ``close_after`` seconds later."""
        loop = asyncio.get_running_loop()
        for conn in list(self.connections):
            conn.event("notice", code="64008", msg=MAINTENANCE_NOTICE)
            task = loop.create_task(self._close_after(conn, close_after))
            self._closers.add(task)
            task.add_done_callback(self._closers.discard)

    async def _close_after(self, conn: Connection, delay: float) -> None:
        await asyncio.sleep(delay)
        # Let the notice (and anything queued before it) reach the client first.
        deadline = time.monotonic() + 1.0
        while not conn.queue.empty() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.02)
        await conn.close(self.maintenance_close_code)
        self.connections.discard(conn)

    # --- the endpoint ---------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        venue = self.venue
        endpoint = request.match_info["endpoint"]
        demo = request.path.startswith("/demo/")
        if endpoint not in ENDPOINTS:
            raise web.HTTPNotFound()
        venue.log_request("WS", request.path, dict(request.query), None, "ws")
        if venue.faults.active("rest", request.path, FaultKind.MAINTENANCE) is not None:
            return web.json_response(errors.maintenance().body(), status=503)
        try:
            venue.rate.hit(("ws/connect", (request.remote or "127.0.0.1",), 1))
        except OkxError as exc:
            return web.json_response(exc.body(), status=exc.status)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = Connection(self, ws, request.transport, endpoint, demo)
        self.connections.add(conn)
        watchdog = asyncio.get_running_loop().create_task(self._watch(conn))
        pending: set[asyncio.Task[None]] = set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                if msg.data == "ping":
                    conn.put("pong")
                    continue
                # Operations run concurrently, so a delayed answer does not hold back the others.
                task = asyncio.get_running_loop().create_task(self.on_message(conn, msg.data))
                pending.add(task)
                task.add_done_callback(pending.discard)
        finally:
            for task in pending:
                task.cancel()
            watchdog.cancel()
            conn.closed = True
            conn.task.cancel()
            self.connections.discard(conn)
        return ws

    async def _watch(self, conn: Connection) -> None:
        """Cut a connection with nothing pushed, or no subscription, for idle_timeout seconds."""
        idle = self.idle_timeout
        step = max(0.02, min(1.0, idle / 10))
        while not conn.closed:
            await asyncio.sleep(step)
            now = time.monotonic()
            quiet = now - conn.last_push >= idle
            bare = conn.unsubscribed_since is not None and now - conn.unsubscribed_since >= idle
            if quiet or bare:
                log.info("fake okx: cutting idle websocket %s", conn.conn_id)
                conn.abort()
                self.connections.discard(conn)
                return

    async def on_message(self, conn: Connection, text: str) -> None:
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            conn.error("60012", f"Invalid request: {text}")
            return
        if not isinstance(message, dict):
            conn.error("60012", f"Invalid request: {text}")
            return
        op = message.get("op")
        request_id = message.get("id")
        args = message.get("args")
        api_key = conn.account.api_key if conn.account else None
        self.venue.log_request("WS", str(op), {"args": orjson.dumps(args).decode()}, api_key, "ws_op")
        answered = False
        for fault in self.venue.faults.take("ws_op", str(op)):
            if fault.kind == FaultKind.LATENCY:
                await asyncio.sleep(fault.delay)
                continue
            if fault.kind == FaultKind.DROP:
                if fault.process:
                    self._run_op(conn, op, request_id, args, text, silent=True)
                conn.abort()
                self.connections.discard(conn)
                return
            if fault.executes_request:
                self._run_op(conn, op, request_id, args, text, silent=True)
            if op in TRADE_OPS:
                if fault.kind == FaultKind.ORDER_ERROR:
                    items = [_failure(a, fault.order_error(), self.venue.now_ms(), op) for a in _dicts(args)]
                    self._op_reply(conn, op, request_id, items, "1", "")
                else:
                    error = fault.error()
                    self._op_reply(conn, op, request_id, [], error.code, error.msg)
            else:
                error = fault.error()
                conn.error(error.code, error.msg, request_id)
            answered = True
        if not answered:
            self._run_op(conn, op, request_id, args, text)

    def _run_op(self, conn: Connection, op: Any, request_id: Any, args: Any, text: str, silent: bool = False) -> None:
        if op in ("subscribe", "unsubscribe", "login"):
            if silent:
                return
            if not self._count_op(conn):
                conn.error("60014", "Requests too frequent", request_id)
            elif not isinstance(args, list) or not args or not all(isinstance(a, dict) for a in args):
                conn.error("60012", f"Invalid request: {text}", request_id)
            elif op == "login":
                self._login(conn, args)
            elif op == "subscribe":
                for arg in args:
                    self._subscribe(conn, arg, request_id, text)
            else:
                for arg in args:
                    self._unsubscribe(conn, arg, request_id)
        elif op in TRADE_OPS:
            self._trade(conn, str(op), request_id, args, silent)
        elif not silent:
            conn.error("60019", f"Invalid op: {op}", request_id)

    def _count_op(self, conn: Connection) -> bool:
        now = time.monotonic()
        while conn.op_times and conn.op_times[0] <= now - 3600:
            conn.op_times.popleft()
        if len(conn.op_times) >= OPS_PER_HOUR:
            return False
        conn.op_times.append(now)
        return True

    # --- login ----------------------------------------------------------------------------------

    def _login(self, conn: Connection, args: list[dict[str, Any]]) -> None:
        arg = args[0]
        key, passphrase, timestamp, signature = (
            str(arg.get(k) or "") for k in ("apiKey", "passphrase", "timestamp", "sign")
        )
        if not (key and passphrase and timestamp and signature):
            conn.error("60009", "Login failed.")
            return
        account = self.venue.engine.accounts.get(key)
        if account is None:
            conn.error("60005", "Invalid apiKey")
            return
        if not timestamp.isdigit():
            conn.error("60004", "Invalid timestamp")
            return
        if abs(self.venue.now_ms() // 1000 - int(timestamp)) > MAX_SKEW_S:
            conn.error("60006", "Timestamp request expired")
            return
        if not hmac.compare_digest(passphrase, account.passphrase):
            conn.error("60024", "Wrong passphrase")
            return
        if account.demo != conn.demo:
            # A demo key on the live endpoint (or the reverse) is unknown there.
            conn.error("60032", "API key doesn't exist.")
            return
        if not hmac.compare_digest(sign(account.secret, ws_login_prehash(timestamp)), signature):
            conn.error("60009", "Login failed.")
            return
        if conn.account is not None and conn.account.api_key != account.api_key:
            conn.error("60031", "The WebSocket endpoint does not allow multiple or repeated logins.")
            return
        conn.account = account
        conn.event("login", code="0", msg="")

    # --- subscriptions --------------------------------------------------------------------------

    def _subscribe(self, conn: Connection, arg: dict[str, Any], request_id: Any, text: str) -> None:
        channel = arg.get("channel")
        if not isinstance(channel, str) or not channel:
            conn.error("60012", f"Invalid request: {text}", request_id)
            return
        engine = self.venue.engine
        inst_id = arg.get("instId")
        wrong = (
            f"Wrong URL or channel:{channel},instId:{inst_id or ''} doesn't exist. "
            "Please use the correct URL, channel and parameters referring to API document."
        )
        if channel in PUBLIC_CHANNELS:
            if conn.endpoint != "public" or inst_id not in engine.instruments:
                conn.error("60018", wrong, request_id)
                return
        elif channel in PRIVATE_CHANNELS:
            if conn.endpoint != "private":
                conn.error("60018", wrong, request_id)
                return
            if conn.account is None:
                conn.error("60011", "Please log in", request_id)
                return
            if channel == "orders":
                if arg.get("instType") not in ("SPOT", "ANY", "MARGIN", "SWAP", "FUTURES", "OPTION"):
                    conn.error("60012", f"Invalid request: {text}", request_id)
                    return
                if inst_id is not None and inst_id not in engine.instruments:
                    conn.error("60018", wrong, request_id)
                    return
        else:
            conn.error("60018", wrong, request_id)
            return
        conn.subs[arg_key(arg)] = dict(arg)
        conn.unsubscribed_since = None
        conn.event("subscribe", request_id=request_id, arg=arg)
        self._initial_push(conn, arg)

    def _unsubscribe(self, conn: Connection, arg: dict[str, Any], request_id: Any) -> None:
        conn.subs.pop(arg_key(arg), None)
        if arg.get("channel") == "books":
            conn.book_seq.pop(str(arg.get("instId")), None)
        if not conn.subs and conn.unsubscribed_since is None:
            conn.unsubscribed_since = time.monotonic()
        conn.event("unsubscribe", request_id=request_id, arg=arg)

    def _initial_push(self, conn: Connection, arg: dict[str, Any]) -> None:
        channel = arg["channel"]
        inst_id = arg.get("instId")
        if channel == "books":
            self._send_books_snapshot(conn, inst_id)
        elif channel == "books5":
            self._send(conn, "books5", inst_id, self._books5(inst_id))
        elif channel == "bbo-tbt":
            self._send(conn, "bbo-tbt", inst_id, self._bbo(inst_id))
        elif channel == "tickers":
            self._send(conn, "tickers", inst_id, self.venue.ticker_json(inst_id))
        elif channel == "orders":
            count = sum(1 for c in self.connections if c.account is conn.account and any(c.subscribed("orders")))
            conn.send(
                {"event": "channel-conn-count", "channel": "orders", "connCount": str(count), "connId": conn.conn_id}
            )
        elif channel == "account":
            assert conn.account is not None
            account = conn.account
            ccys = [arg["ccy"]] if arg.get("ccy") else [c for c, b in account.balances.items() if b.cash != 0]
            self._push_account(conn, arg, account, ccys, "snapshot")

    # --- public pushes --------------------------------------------------------------------------

    def _subscribers(self, channel: str, inst_id: str) -> list[Connection]:
        return [
            c
            for c in self.connections
            if not c.closed and any(a.get("instId") == inst_id for a in c.subscribed(channel))
        ]

    def _send(self, conn: Connection, channel: str, inst_id: str, data: dict[str, Any], **extra: Any) -> None:
        faults = self.venue.faults
        silent = faults.active("ws_public", channel, FaultKind.SILENT)
        if silent is not None:
            faults.consume(silent)
            return
        drop = faults.active("ws_public", channel, FaultKind.DROP)
        if drop is not None:
            faults.consume(drop)
            conn.abort()
            self.connections.discard(conn)
            return
        conn.send({"arg": {"channel": channel, "instId": inst_id}, **extra, "data": [data]}, f"ws_public:{channel}")

    def _send_books_snapshot(self, conn: Connection, inst_id: str) -> None:
        # Changes not pushed yet go to the other subscribers first, so the new one's diffs start
        # exactly after its snapshot.
        pending = self._pending_books.pop(inst_id, None)
        if pending:
            self._send_books_update(inst_id, pending)
            self._last_books_push[inst_id] = time.monotonic()
        book = self.venue.engine.books[inst_id]
        seq_id, bids, asks = book.snapshot(BOOKS_DEPTH)
        data = {
            "asks": render.book_levels(asks),
            "bids": render.book_levels(bids),
            "ts": str(self.venue.now_ms()),
            "checksum": book_checksum(book) if self.books_checksum else 0,
            "prevSeqId": -1,
            "seqId": seq_id,
        }
        conn.book_seq[inst_id] = seq_id
        self._send(conn, "books", inst_id, data, action="snapshot")

    def _books5(self, inst_id: str) -> dict[str, Any]:
        book = self.venue.engine.books[inst_id]
        seq_id, bids, asks = book.snapshot(5)
        return {
            "asks": render.book_levels(asks),
            "bids": render.book_levels(bids),
            "instId": inst_id,
            "ts": str(self.venue.now_ms()),
            "seqId": seq_id,
        }

    def _bbo(self, inst_id: str) -> dict[str, Any]:
        book = self.venue.engine.books[inst_id]
        bid, ask = book.top()
        return {
            "asks": render.book_levels([ask] if ask else []),
            "bids": render.book_levels([bid] if bid else []),
            "ts": str(self.venue.now_ms()),
            "seqId": book.last_update_id,
        }

    def on_book_change(self, inst_id: str, seq_id: int, changes: list[LevelChange]) -> None:
        pending = self._pending_books.setdefault(inst_id, {})
        for change in changes:
            pending[(change.side, change.price)] = change.qty
        self._dirty_books5.add(inst_id)
        top = self.venue.engine.books[inst_id].top()
        if self._last_bbo.get(inst_id) != top:
            self._last_bbo[inst_id] = top
            self._dirty_tickers.add(inst_id)
            # bbo-tbt is tick by tick: every change of the top goes out at once.
            for conn in self._subscribers("bbo-tbt", inst_id):
                self._send(conn, "bbo-tbt", inst_id, self._bbo(inst_id))

    def on_trade(self, trade: PublicTrade) -> None:
        self._dirty_tickers.add(trade.inst_id)
        for conn in self._subscribers("trades", trade.inst_id):
            self._send(conn, "trades", trade.inst_id, self.venue.public_trade_json(trade, ws=True))

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.books_interval)
            try:
                self.flush()
            except Exception:  # pragma: no cover - keep the streams alive, log the bug
                log.exception("fake okx: flush failed")

    def flush(self) -> None:
        now = time.monotonic()
        pending, self._pending_books = self._pending_books, {}
        for inst_id, changes in pending.items():
            self._send_books_update(inst_id, changes)
            self._last_books_push[inst_id] = now
        for inst_id in self.venue.engine.books:
            if inst_id in pending:
                continue
            last = self._last_books_push.setdefault(inst_id, now)
            if now - last >= self.books_heartbeat:
                self._send_books_update(inst_id, {})
                self._last_books_push[inst_id] = now
        dirty5, self._dirty_books5 = self._dirty_books5, set()
        for inst_id in dirty5:
            for conn in self._subscribers("books5", inst_id):
                self._send(conn, "books5", inst_id, self._books5(inst_id))
        tickers, self._dirty_tickers = self._dirty_tickers, set()
        for inst_id in tickers:
            for conn in self._subscribers("tickers", inst_id):
                self._send(conn, "tickers", inst_id, self.venue.ticker_json(inst_id))

    def _send_books_update(self, inst_id: str, changes: dict[tuple[Side, Decimal], Decimal]) -> None:
        book = self.venue.engine.books[inst_id]
        seq_id = book.last_update_id
        asks = sorted((p, q) for (side, p), q in changes.items() if side == "ask")
        bids = sorted(((p, q) for (side, p), q in changes.items() if side == "bid"), reverse=True)
        checksum = book_checksum(book) if self.books_checksum else 0
        faults = self.venue.faults
        for conn in self._subscribers("books", inst_id):
            prev = conn.book_seq.get(inst_id)
            if prev is None or (changes and prev == seq_id):
                continue  # no snapshot yet, or the snapshot already holds these changes
            gap = faults.active("ws_public", "books", FaultKind.SEQ_GAP)
            if gap is not None:
                faults.consume(gap)
                prev += 1  # as if an update had been lost on the way
            data = {
                "asks": render.book_levels(asks),
                "bids": render.book_levels(bids),
                "ts": str(self.venue.now_ms()),
                "checksum": checksum,
                "prevSeqId": prev,
                "seqId": seq_id,
            }
            conn.book_seq[inst_id] = seq_id
            self._send(conn, "books", inst_id, data, action="update")

    # --- private pushes -------------------------------------------------------------------------

    def _private_conns(self, account: Account) -> list[Connection]:
        return [c for c in self.connections if not c.closed and c.account is account]

    def on_order(self, order: Order, fill: Fill | None, state: str) -> None:
        account = self.venue.engine.accounts.get(order.api_key)
        if account is None:
            return
        conns = self._private_conns(account)
        if not conns:
            return
        data = render.order_push(order, fill, state, self.venue.last_price(order.inst_id))
        for conn in conns:
            for arg in conn.subscribed("orders"):
                if arg.get("instType") not in ("SPOT", "ANY"):
                    continue
                if arg.get("instId") not in (None, order.inst_id):
                    continue
                frame = {"arg": {**arg, "uid": account.uid}, "data": [data]}
                self._deliver_private(conn, "orders", orjson.dumps(frame).decode())

    def on_balance(self, account: Account, ccys: set[str]) -> None:
        for conn in self._private_conns(account):
            for arg in conn.subscribed("account"):
                wanted = sorted(c for c in ccys if not arg.get("ccy") or arg["ccy"] == c)
                if wanted:
                    self._push_account(conn, arg, account, wanted, "event_update")

    def _push_account(
        self, conn: Connection, arg: dict[str, Any], account: Account, ccys: list[str], event_type: str
    ) -> None:
        frame = {
            "arg": {**arg, "uid": account.uid},
            "eventType": event_type,
            "curPage": 1,
            "lastPage": True,
            "data": [self.venue.balance_json(account, ccys, ws=True)],
        }
        self._deliver_private(conn, "account", orjson.dumps(frame).decode())

    def _deliver_private(self, conn: Connection, channel: str, text: str) -> None:
        faults = self.venue.faults
        key = f"ws_private:{channel}"
        for kind in (FaultKind.SILENT, FaultKind.DROP, FaultKind.DUPLICATE, FaultKind.REORDER):
            fault = faults.active("ws_private", channel, kind)
            if fault is None:
                continue
            faults.consume(fault)
            if kind == FaultKind.SILENT:
                return
            if kind == FaultKind.DROP:
                conn.abort()
                self.connections.discard(conn)
                return
            if kind == FaultKind.DUPLICATE:
                conn.put(text, key)
                conn.put(text, key)
                conn.release_held()
                return
            if conn.held is None:
                conn.hold(text, key, fault.delay or 1.0)
                return
        conn.put(text, key)
        conn.release_held()

    # --- trading --------------------------------------------------------------------------------

    def _trade(self, conn: Connection, op: str, request_id: Any, args: Any, silent: bool) -> None:
        def reply(items: list[dict[str, Any]], code: str, msg: str) -> None:
            if not silent:
                self._op_reply(conn, op, request_id, items, code, msg)

        if conn.endpoint != "private":
            reply([], "60028", WRONG_URL_FOR_OP)
            return
        if conn.account is None:
            reply([], "60011", "Please log in")
            return
        batch = op == "batch-orders"
        if (
            not isinstance(args, list)
            or not args
            or not all(isinstance(a, dict) for a in args)
            or (not batch and len(args) != 1)
            or len(args) > 20
        ):
            reply([], "60013", "Invalid args")
            return
        engine = self.venue.engine
        user = conn.account.api_key
        try:
            if op == "cancel-order":
                self.venue.rate.hit(("trade/cancel-order", (user, _inst_of(engine, args[0])), 1))
                items, failures = self.venue.cancel_orders(conn.account, args)
            else:
                rule = "trade/order" if len(args) == 1 else "trade/batch-orders"
                per_inst: dict[str, int] = {}
                for arg in args:
                    inst = _inst_of(engine, arg)
                    per_inst[inst] = per_inst.get(inst, 0) + 1
                self.venue.rate.hit(*[(rule, (user, inst), n) for inst, n in per_inst.items()])
                items, failures = self.venue.place_orders(conn.account, args)
        except OkxError as exc:
            reply([], exc.code, exc.msg)
            return
        code = "0" if failures == 0 else ("1" if failures == len(items) else "2")
        reply(items, code, "")

    def _op_reply(
        self, conn: Connection, op: str, request_id: Any, items: list[dict[str, Any]], code: str, msg: str
    ) -> None:
        now = self.venue.now_ms()
        payload: dict[str, Any] = {"id": request_id, "op": op, "code": code, "msg": msg, "data": items}
        payload["inTime"] = micros(now)
        payload["outTime"] = micros(now)
        conn.send(payload)


def _dicts(args: Any) -> list[dict[str, Any]]:
    return [a for a in args if isinstance(a, dict)] if isinstance(args, list) else []


def _failure(args: dict[str, Any], error: errors.OrderError, now_ms: int, op: str) -> dict[str, Any]:
    return failure_item(args, error, now_ms, cancel=op == "cancel-order")


def _inst_of(engine: Engine, args: dict[str, Any]) -> str:
    """The instId an order op counts against (WebSocket orders may name it by instIdCode)."""
    if args.get("instId"):
        return str(args["instId"])
    code = args.get("instIdCode")
    try:
        return str(engine.by_code.get(int(code), code))
    except (TypeError, ValueError):
        return str(code)
