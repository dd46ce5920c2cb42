"""Matching, fees, balances and order rules over REST.

The default BTC-USDT book: bids 59999.9 (0.5), 59999.4 (0.75), 59998.9 (1) ...; asks 60000.1
(0.5), 60000.6 (0.75), 60001.1 (1) ... The default key holds 100000 USDT, 2 BTC, 30 ETH, and pays
0.1 % as taker and 0.08 % as maker.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from tests.fakeokx import DEFAULT_API_KEY, FakeOkx

from .helpers import RestClient, d

TAKER = Decimal("0.001")
MAKER = Decimal("0.0008")


def balances(venue: FakeOkx) -> dict[str, tuple[Decimal, Decimal]]:
    return venue.balances(DEFAULT_API_KEY)


async def fills_of(rest: RestClient, ord_id: str) -> list[tuple[Decimal, Decimal, Decimal, str, str]]:
    """(px, sz, fee, feeCcy, execType), oldest first."""
    _, answer = await rest.get("trade/fills", {"instId": "BTC-USDT", "ordId": ord_id})
    rows = [(d(f["fillPx"]), d(f["fillSz"]), d(f["fee"]), f["feeCcy"], f["execType"]) for f in answer["data"]]
    return list(reversed(rows))


async def test_market_buy_spends_quote_and_walks_the_book(rest: RestClient, fake_okx: FakeOkx) -> None:
    placed = await rest.place(instId="BTC-USDT", side="buy", ordType="market", sz="60000")
    assert placed["sCode"] == "0"
    first = d("0.5")
    second = ((d("60000") - first * d("60000.1")) / d("60000.6")).quantize(d("0.00000001"), ROUND_DOWN)
    fills = await fills_of(rest, placed["ordId"])
    assert [(px, sz) for px, sz, *_ in fills] == [(d("60000.1"), first), (d("60000.6"), second)]
    assert {(ccy, kind) for *_, ccy, kind in fills} == {("BTC", "T")}
    assert [fee for _, sz, fee, *_ in fills] == [-first * TAKER, -second * TAKER]

    order = await rest.order("BTC-USDT", placed["ordId"])
    notional = first * d("60000.1") + second * d("60000.6")
    assert (order["state"], order["tgtCcy"], d(order["sz"])) == ("filled", "quote_ccy", d("60000"))
    assert d(order["accFillSz"]) == first + second
    assert d(order["avgPx"]) == notional / (first + second)
    assert d(order["fee"]) == -(first + second) * TAKER  # cumulative, in BTC
    assert (d(order["fillPx"]), d(order["fillSz"])) == (d("60000.6"), second)  # the last fill

    usdt, btc = balances(fake_okx)["USDT"], balances(fake_okx)["BTC"]
    assert usdt == (d("100000") - notional, d(0))
    assert btc == (d("2") + (first + second) * (1 - TAKER), d(0))
    # The liquidity it took is gone from the book.
    _, book = await rest.get("market/books", {"instId": "BTC-USDT", "sz": "1"}, private=False)
    assert book["data"][0]["asks"][0][:2] == ["60000.6", str(d("0.75") - second)]


async def test_market_orders_sized_in_base(rest: RestClient, fake_okx: FakeOkx) -> None:
    buy = await rest.place(instId="BTC-USDT", side="buy", ordType="market", sz="0.6", tgtCcy="base_ccy")
    assert [(px, sz) for px, sz, *_ in await fills_of(rest, buy["ordId"])] == [
        (d("60000.1"), d("0.5")),
        (d("60000.6"), d("0.1")),
    ]
    sell = await rest.place(instId="BTC-USDT", side="sell", ordType="market", sz="1")
    fills = await fills_of(rest, sell["ordId"])
    assert [(px, sz, ccy) for px, sz, _, ccy, _ in fills] == [
        (d("59999.9"), d("0.5"), "USDT"),
        (d("59999.4"), d("0.5"), "USDT"),
    ]
    # A sell pays its fee in the quote currency.
    assert [fee for _, _, fee, *_ in fills] == [-d("0.5") * d("59999.9") * TAKER, -d("0.5") * d("59999.4") * TAKER]
    sold = d("0.5") * d("59999.9") + d("0.5") * d("59999.4")
    bought = d("0.5") * d("60000.1") + d("0.1") * d("60000.6")
    assert balances(fake_okx)["USDT"][0] == d("100000") - bought + sold * (1 - TAKER)
    assert balances(fake_okx)["BTC"][0] == d("2") + d("0.6") * (1 - TAKER) - d("1")


async def test_a_limit_order_rests_with_its_funds_frozen_then_fills_as_maker(
    rest: RestClient, fake_okx: FakeOkx
) -> None:
    placed = await rest.place(instId="BTC-USDT", side="buy", ordType="limit", px="59000", sz="0.3", clOrdId="rest1")
    order = await rest.order("BTC-USDT", placed["ordId"])
    assert (order["state"], order["accFillSz"], order["avgPx"], order["fillSz"]) == ("live", "0", "", "0")
    assert balances(fake_okx)["USDT"] == (d("100000") - d("17700"), d("17700"))

    # The market trades through it: it fills at its own price, as a maker.
    fake_okx.set_top_of_book("BTC-USDT", "58900", "1", "58999", "1")
    order = await rest.order("BTC-USDT", placed["ordId"])
    assert (order["state"], order["accFillSz"], order["avgPx"]) == ("filled", "0.3", "59000")
    assert await fills_of(rest, placed["ordId"]) == [(d("59000"), d("0.3"), -d("0.3") * MAKER, "BTC", "M")]
    assert balances(fake_okx)["USDT"] == (d("100000") - d("17700"), d(0))
    assert balances(fake_okx)["BTC"] == (d("2") + d("0.3") * (1 - MAKER), d(0))


async def test_a_marketable_limit_takes_what_crosses_and_rests_the_rest(rest: RestClient, fake_okx: FakeOkx) -> None:
    placed = await rest.place(instId="BTC-USDT", side="buy", ordType="limit", px="60000.6", sz="1.5")
    order = await rest.order("BTC-USDT", placed["ordId"])
    assert (order["state"], order["accFillSz"]) == ("partially_filled", "1.25")
    paid = d("0.5") * d("60000.1") + d("0.75") * d("60000.6")
    frozen = d("0.25") * d("60000.6")
    # The better price of the first level is refunded at once.
    assert balances(fake_okx)["USDT"] == (d("100000") - paid - frozen, frozen)
    _, pending = await rest.get("trade/orders-pending", {"instId": "BTC-USDT"})
    assert [o["ordId"] for o in pending["data"]] == [placed["ordId"]]


async def test_ioc_cancels_its_remainder(rest: RestClient, fake_okx: FakeOkx) -> None:
    placed = await rest.place(instId="BTC-USDT", side="buy", ordType="ioc", px="60000.1", sz="1")
    order = await rest.order("BTC-USDT", placed["ordId"])
    assert (order["state"], order["accFillSz"], order["cancelSource"]) == ("canceled", "0.5", "14")
    assert balances(fake_okx)["USDT"] == (d("100000") - d("0.5") * d("60000.1"), d(0))
    _, pending = await rest.get("trade/orders-pending")
    assert pending["data"] == []


async def test_fok_fills_fully_or_not_at_all(rest: RestClient, fake_okx: FakeOkx) -> None:
    killed = await rest.place(instId="BTC-USDT", side="buy", ordType="fok", px="60000.1", sz="1")
    order = await rest.order("BTC-USDT", killed["ordId"])
    assert (order["state"], order["accFillSz"]) == ("canceled", "0")
    assert await fills_of(rest, killed["ordId"]) == []
    assert balances(fake_okx)["USDT"] == (d("100000"), d(0))
    filled = await rest.place(instId="BTC-USDT", side="buy", ordType="fok", px="60000.6", sz="1")
    assert (await rest.order("BTC-USDT", filled["ordId"]))["state"] == "filled"


async def test_post_only_never_takes(rest: RestClient, fake_okx: FakeOkx) -> None:
    crossing = await rest.place(instId="BTC-USDT", side="buy", ordType="post_only", px="60000.1", sz="0.1")
    assert crossing["sCode"] == "0"
    order = await rest.order("BTC-USDT", crossing["ordId"])
    assert (order["state"], order["accFillSz"], order["cancelSource"]) == ("canceled", "0", "31")
    resting = await rest.place(instId="BTC-USDT", side="sell", ordType="post_only", px="60000.1", sz="0.1")
    assert (await rest.order("BTC-USDT", resting["ordId"]))["state"] == "live"
    assert balances(fake_okx)["BTC"] == (d("1.9"), d("0.1"))


async def test_order_rules(rest: RestClient) -> None:
    async def s_code(**order: str) -> tuple[str, str]:
        status, answer = await rest.post("trade/order", order)
        assert status == 200
        return answer["code"], answer["data"][0]["sCode"]

    base = {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit", "px": "50000"}
    assert await s_code(**base, sz="0.000010001") == ("1", "51121")
    assert await s_code(**base, sz="0.000009") == ("1", "51020")
    assert await s_code(**{**base, "side": "sell"}, sz="3") == ("1", "51008")
    assert await s_code(**base, sz="3") == ("1", "51008")
    assert await s_code(**{**base, "px": "50000.05"}, sz="0.01") == ("1", "51000")
    assert await s_code(**{k: v for k, v in base.items() if k != "px"}, sz="0.01") == ("1", "51204")
    assert await s_code(**{**base, "tdMode": "cross"}, sz="0.01") == ("1", "51010")
    assert await s_code(**{**base, "ordType": "optimal_limit_ioc"}, sz="0.01") == ("1", "51000")
    assert await s_code(**{**base, "instId": "DOGE-USDT"}, sz="0.01") == ("1", "51001")
    assert await s_code(**base, sz="0.01", clOrdId="has-dash") == ("1", "51000")
    assert await s_code(**base, sz="0.01", clOrdId="x" * 33) == ("1", "51000")
    assert await s_code(**{**base, "instId": "ETH-USDT", "px": "2000"}, sz="0.0009") == ("1", "51020")
    assert await s_code(**base, sz="0.01", clOrdId="x" * 32) == ("0", "0")
    status, answer = await rest.post("trade/order", [base])
    assert (status, answer["code"]) == (400, "51000")


async def test_client_order_ids(rest: RestClient, fake_okx: FakeOkx) -> None:
    order = {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit", "px": "50000", "sz": "0.01"}
    first = await rest.place(**{**order, "clOrdId": "Leg1"})
    # Unique among the account's pending orders, on any instrument; case-sensitive.
    _, dup = await rest.post("trade/order", {**order, "clOrdId": "Leg1"})
    assert (dup["code"], dup["data"][0]["sCode"], dup["data"][0]["sMsg"]) == (
        "1",
        "51016",
        "Client order ID already exists.",
    )
    _, dup = await rest.post(
        "trade/order", {**order, "instId": "ETH-USDT", "px": "2000", "sz": "0.01", "clOrdId": "Leg1"}
    )
    assert dup["data"][0]["sCode"] == "51016"
    assert (await rest.place(**{**order, "clOrdId": "leg1"}))["sCode"] == "0"
    # Another account is another namespace.
    fake_okx.add_account("other", "other-secret", "other-pass", {"USDT": "1000"})
    other = rest.as_user("other", "other-secret", "other-pass")
    assert (await other.place(**{**order, "clOrdId": "Leg1"}))["sCode"] == "0"

    # Once terminal it may be reused, and a GET by clOrdId returns the newest order.
    _, canceled = await rest.post("trade/cancel-order", {"instId": "BTC-USDT", "clOrdId": "Leg1"})
    assert canceled["data"][0]["ordId"] == first["ordId"]
    second = await rest.place(**{**order, "clOrdId": "Leg1"})
    assert second["sCode"] == "0" and second["ordId"] != first["ordId"]
    _, by_id = await rest.get("trade/order", {"instId": "BTC-USDT", "clOrdId": "Leg1"})
    assert (by_id["data"][0]["ordId"], by_id["data"][0]["state"]) == (second["ordId"], "live")
    assert (await rest.order("BTC-USDT", first["ordId"]))["state"] == "canceled"


async def test_unknown_and_terminal_orders(rest: RestClient) -> None:
    _, missing = await rest.get("trade/order", {"instId": "BTC-USDT", "clOrdId": "nothing"})
    assert (missing["code"], missing["msg"], missing["data"]) == ("51603", "Order does not exist.", [])
    placed = await rest.place(instId="BTC-USDT", side="buy", ordType="market", sz="0.01", tgtCcy="base_ccy")
    _, elsewhere = await rest.get("trade/order", {"instId": "ETH-USDT", "ordId": placed["ordId"]})
    assert elsewhere["code"] == "51603"
    _, cancel = await rest.post("trade/cancel-order", {"instId": "BTC-USDT", "ordId": placed["ordId"]})
    assert (cancel["code"], cancel["data"][0]["sCode"], cancel["data"][0]["ordId"]) == ("1", "51400", placed["ordId"])
    _, cancel = await rest.post("trade/cancel-order", {"instId": "BTC-USDT", "ordId": "123"})
    assert cancel["data"][0]["sCode"] == "51400"
    status, answer = await rest.get("trade/order", {"instId": "BTC-USDT"})
    assert (status, answer["code"]) == (400, "50015")


async def test_batch_outcomes(rest: RestClient) -> None:
    good = {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit", "px": "50000", "sz": "0.01"}
    bad = {**good, "sz": "1000"}
    _, answer = await rest.post("trade/batch-orders", [good, good])
    assert (answer["code"], answer["msg"], [i["sCode"] for i in answer["data"]]) == ("0", "", ["0", "0"])
    _, answer = await rest.post("trade/batch-orders", [good, bad])
    assert (answer["code"], [i["sCode"] for i in answer["data"]]) == ("2", ["0", "51008"])
    _, answer = await rest.post("trade/batch-orders", [bad, bad])
    assert (answer["code"], answer["msg"]) == ("1", "All operations failed")
    status, answer = await rest.post("trade/batch-orders", [good] * 21)
    assert (status, answer["code"]) == (400, "51000")
    _, pending = await rest.get("trade/orders-pending", {"instId": "BTC-USDT", "limit": "2"})
    ids = [o["ordId"] for o in pending["data"]]
    assert len(ids) == 2 and ids == sorted(ids, reverse=True)  # newest first


async def test_views_need_their_parameters(rest: RestClient) -> None:
    status, answer = await rest.get("trade/fills-history")
    assert (status, answer) == (400, {"code": "50014", "data": [], "msg": "Parameter instType can not be empty."})
    status, answer = await rest.get("market/ticker", {"instId": "NOPE-USDT"}, private=False)
    assert (status, answer["code"]) == (200, "51001")
