/*
 * ArbitrageX dashboard (templates/dashboard.html). Plain JavaScript, no build step, nothing loaded
 * from outside the platform.
 *
 * Data: the REST API (/api/v1/...) for the state at load time and for periodic refreshes, and the
 * WebSocket feed /ws/market/ for live quotes, opportunities and execution events. Both use the admin
 * session. When the socket drops, the page says so (top bar and banner), reconnects with exponential
 * backoff and jitter, and reloads the REST state once the feed is back.
 *
 * Numbers: the server sends exact decimal strings; the page computes on them exactly (scaled BigInts:
 * spreads, cumulative PnL) and rounds only what it shows, half-even, on the same integers, as the
 * server's arbitragex.display does: prices at the instrument's tick size, quantities at its step size
 * (both from GET instruments/), money at its asset's precision (2 places for USD-like assets, 8 for
 * coins), spreads and rates in basis points to 2 places, never trailing zeros. A shown figure keeps the
 * exact value as its tooltip. Floats are used for one thing: the pixel position of a point on the chart.
 */
(function () {
  "use strict";

  const cfg = JSON.parse(document.getElementById("dashboard-config").textContent);
  const $ = (selector, root) => (root || document).querySelector(selector);

  const MAX_OPPORTUNITIES = 20;
  const MAX_EXECUTIONS = 25;
  const QUOTE_STALE_MS = 5000; // the quote cache's TTL: older than this, the venue went quiet
  const PING_EVERY_MS = 10000;
  const FEED_STALE_MS = 15000; // no message at all (not even a pong) for this long: "stale"
  const FEED_DEAD_MS = 25000; // ... and for this long: drop the socket and reconnect
  const BACKOFF_MAX_MS = 30000;
  const TERMINAL = new Set(["COMPLETED", "FAILED", "UNWOUND", "NEEDS_ATTENTION"]);

  // ---------------------------------------------------------------------------------------------
  // Decimal strings: exact arithmetic on scaled BigInts, display cuts with string operations.
  // ---------------------------------------------------------------------------------------------

  const DECIMAL = /^([+-]?)(\d+)(?:\.(\d*))?$/;

  function decParse(text) {
    if (text === null || text === undefined) return null;
    const match = DECIMAL.exec(String(text).trim());
    if (!match) return null;
    const fraction = match[3] || "";
    const n = BigInt(match[2] + fraction);
    return { n: match[1] === "-" ? -n : n, scale: fraction.length };
  }

  function decAlign(a, b) {
    const scale = Math.max(a.scale, b.scale);
    return [a.n * 10n ** BigInt(scale - a.scale), b.n * 10n ** BigInt(scale - b.scale), scale];
  }

  function decAdd(a, b) {
    const [x, y, scale] = decAlign(a, b);
    return { n: x + y, scale };
  }

  function decSub(a, b) {
    const [x, y, scale] = decAlign(a, b);
    return { n: x - y, scale };
  }

  // The same value with the fewest decimals ("0.01000000" -> 0.01).
  function decNormalize(d) {
    let { n, scale } = d;
    while (scale > 0 && n % 10n === 0n) {
      n /= 10n;
      scale -= 1;
    }
    return { n, scale };
  }

  // The integer quotient x / y rounded half-even (to the nearest; a tie to the even one).
  function divRoundHalfEven(x, y) {
    if (y < 0n) {
      x = -x;
      y = -y;
    }
    let q = x / y; // truncated toward zero
    const r = x - q * y;
    const twice = (r < 0n ? -r : r) * 2n;
    if (twice > y || (twice === y && q % 2n !== 0n)) q += x < 0n ? -1n : 1n;
    return q;
  }

  // Round to at most `places` decimals, half-even.
  function decRound(d, places) {
    if (d.scale <= places) return d;
    return { n: divRoundHalfEven(d.n, 10n ** BigInt(d.scale - places)), scale: places };
  }

  // a / b rounded half-even to `places` decimals (exact: on the integers, never through a float).
  function decDivRound(a, b, places) {
    if (b.n === 0n) return null;
    return { n: divRoundHalfEven(a.n * 10n ** BigInt(b.scale + places), b.n * 10n ** BigInt(a.scale)), scale: places };
  }

  // The nearest multiple of `step` (a tick or step size), half-even, shown with the step's decimals; a
  // step finer than MAX_PLACES, or none, rounds to MAX_PLACES decimals.
  function decToStep(d, step) {
    if (!step || step.n <= 0n) return decRound(d, MAX_PLACES);
    const unit = decNormalize(step);
    if (unit.scale > MAX_PLACES) return decRound(d, MAX_PLACES);
    const [x, y] = decAlign(d, unit);
    return { n: divRoundHalfEven(x, y) * unit.n, scale: unit.scale };
  }

  function decCmp(a, b) {
    const [x, y] = decAlign(a, b);
    return x < y ? -1 : x > y ? 1 : 0;
  }

  // Move the decimal point: decShift(d, 4) multiplies by 10^4 (a rate as basis points).
  function decShift(d, places) {
    const scale = d.scale - places;
    return scale >= 0 ? { n: d.n, scale } : { n: d.n * 10n ** BigInt(-scale), scale: 0 };
  }

  function decString(d) {
    if (d === null) return null;
    const negative = d.n < 0n;
    let digits = (negative ? -d.n : d.n).toString();
    if (d.scale > 0) {
      digits = digits.padStart(d.scale + 1, "0");
      const whole = digits.slice(0, digits.length - d.scale);
      const fraction = digits.slice(digits.length - d.scale).replace(/0+$/, "");
      digits = fraction ? `${whole}.${fraction}` : whole;
    }
    return negative && digits !== "0" ? `-${digits}` : digits;
  }

  // ---------------------------------------------------------------------------------------------
  // Figures as a person reads them (arbitragex.display): at the instrument's increments, the asset's
  // precision, in bps; "—" for no value, the text as sent when it is not a decimal.
  // ---------------------------------------------------------------------------------------------

  const MAX_PLACES = cfg.display.max_places;
  const USD_LIKE = new Set(cfg.display.usd_like);
  const instruments = new Map(); // "venue|symbol" -> {tick, step, base, quote}
  const symbolAssets = new Map(); // symbol -> {base, quote}
  let deskAsset = null; // the quote asset every instrument shares, if they share one

  function instrumentOf(venue, symbol) {
    return instruments.get(`${venue}|${symbol}`) || null;
  }

  function quoteAssetOf(symbol) {
    const assets = symbolAssets.get(symbol);
    return assets ? assets.quote : null;
  }

  function shown(text, format) {
    if (text === null || text === undefined || text === "") return "—";
    const d = decParse(text);
    return d === null ? String(text) : decString(format(d));
  }

  function showPrice(text, venue, symbol) {
    const instrument = instrumentOf(venue, symbol);
    return shown(text, (d) => decToStep(d, instrument && instrument.tick));
  }

  function showQty(text, venue, symbol) {
    const instrument = instrumentOf(venue, symbol);
    return shown(text, (d) => decToStep(d, instrument && instrument.step));
  }

  function moneyPlaces(asset) {
    return asset && USD_LIKE.has(String(asset).toUpperCase()) ? cfg.display.money_places_fiat : cfg.display.money_places_coin;
  }

  // An amount of `asset` at its precision (8 places at most when the asset is not known), without a unit.
  function showMoney(text, asset) {
    return shown(text, (d) => decRound(d, asset ? moneyPlaces(asset) : MAX_PLACES));
  }

  // A rate (0.0012 is 12 bps) in basis points to 2 places.
  function showBps(text) {
    return shown(text, (d) => decRound(decShift(d, 4), 2));
  }

  // A ratio (0 to 1) in percent to 2 places.
  function showPercent(text) {
    return shown(text, (d) => decRound(decShift(d, 2), 2));
  }

  function unit(asset) {
    return asset ? ` ${asset}` : "";
  }

  async function instrumentsLoad() {
    const rows = await api(cfg.api.instruments);
    instruments.clear();
    symbolAssets.clear();
    const quoteAssets = new Set();
    for (const row of rows) {
      instruments.set(`${row.venue}|${row.symbol}`, {
        tick: decParse(row.tick_size),
        step: decParse(row.step_size),
        base: row.base_asset,
        quote: row.quote_asset,
      });
      if (!symbolAssets.has(row.symbol)) symbolAssets.set(row.symbol, { base: row.base_asset, quote: row.quote_asset });
      quoteAssets.add(row.quote_asset);
    }
    deskAsset = quoteAssets.size === 1 ? [...quoteAssets][0] : null;
  }

  function signOf(text) {
    const d = decParse(text);
    if (d === null || d.n === 0n) return 0;
    return d.n < 0n ? -1 : 1;
  }

  // ---------------------------------------------------------------------------------------------
  // DOM helpers. API values only ever go into textContent, never into HTML.
  // ---------------------------------------------------------------------------------------------

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "className") node.className = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  function flash(node) {
    node.classList.remove("flash");
    void node.offsetWidth; // restart the CSS animation
    node.classList.add("flash");
  }

  // Set a cell's text (and full value as its tooltip); flash it when the value changed.
  function setCell(node, text, full) {
    const shown = text === null || text === undefined ? "—" : String(text);
    if (node.textContent === shown) return;
    const hadValue = node.textContent !== "";
    node.textContent = shown;
    if (full !== undefined && full !== null && String(full) !== shown) node.title = String(full);
    else node.removeAttribute("title");
    if (hadValue) flash(node);
  }

  // A profit or loss: its shown figure, the exact value as the tooltip, coloured by its sign.
  function pnlCell(node, text, asset, withUnit) {
    const figure = showMoney(text, asset);
    setCell(node, figure === "—" || !withUnit ? figure : `${figure}${unit(asset)}`, text);
    node.classList.toggle("pos", signOf(text) > 0);
    node.classList.toggle("neg", signOf(text) < 0);
  }

  function utcTime(value) {
    if (value === null || value === undefined || value === "") return "—";
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    return date.toISOString().slice(11, 19);
  }

  function utcDateTime(value) {
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    return date.toISOString().slice(0, 19).replace("T", " ");
  }

  function notice(text, kind) {
    const node = el("div", { className: `notice ${kind || "info"}`, role: "alert", text });
    $("#notices").append(node);
    setTimeout(() => node.remove(), kind === "error" ? 10000 : 5000);
  }

  // ---------------------------------------------------------------------------------------------
  // HTTP: session auth; writes send the CSRF token from the cookie.
  // ---------------------------------------------------------------------------------------------

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function withQuery(path, params) {
    const url = new URL(path, window.location.origin);
    for (const [name, value] of Object.entries(params || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
    }
    return url.pathname + url.search;
  }

  async function api(path, { method = "GET", body } = {}) {
    const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRFToken"] = csrfToken();
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    let payload = null;
    try {
      payload = await response.json();
    } catch (error) {
      payload = null;
    }
    if (!response.ok) {
      const message = payload && payload.message ? payload.message : `HTTP ${response.status}`;
      const error = new Error(message);
      error.status = response.status;
      throw error;
    }
    return payload;
  }

  // Run `load` now and every `everyMs`; a failure is shown once per outage, not on every attempt.
  function every(everyMs, name, load) {
    let failing = false;
    const run = async () => {
      try {
        await load();
        failing = false;
      } catch (error) {
        if (!failing) notice(`${name}: ${error.message}`, "error");
        failing = true;
      }
    };
    run();
    return setInterval(run, everyMs);
  }

  // ---------------------------------------------------------------------------------------------
  // Quotes and spreads
  // ---------------------------------------------------------------------------------------------

  const quotes = new Map(); // symbol -> Map(venue -> {bid, bid_qty, ask, ask_qty, receivedAt})
  const quoteRows = new Map(); // "symbol|venue" -> {tr, cells}
  const symbolBodies = new Map(); // symbol -> {tbody, spread}

  function symbolBody(symbol) {
    let entry = symbolBodies.get(symbol);
    if (entry) return entry;
    const spread = el("td", { colspan: "7", className: "spread" });
    const tbody = el("tbody", { "data-symbol": symbol }, el("tr", { className: "symbol-row" }, spread));
    const table = $("#quotes-table");
    const later = [...symbolBodies.keys()].filter((other) => other > symbol).sort()[0];
    table.insertBefore(tbody, later ? symbolBodies.get(later).tbody : null);
    entry = { tbody, spread };
    symbolBodies.set(symbol, entry);
    $("#quotes-empty").hidden = true;
    return entry;
  }

  function quoteRow(symbol, venue) {
    const key = `${symbol}|${venue}`;
    let row = quoteRows.get(key);
    if (row) return row;
    const cells = {};
    const tr = el("tr", { "data-venue": venue, className: "quote-row" });
    for (const name of ["venue", "bid", "bid_qty", "ask", "ask_qty", "venue_spread", "age"]) {
      cells[name] = el("td", { className: name === "venue" ? "venue" : `num ${name.replace("_", "-")}` });
      tr.append(cells[name]);
    }
    cells.venue.textContent = venue;
    const { tbody } = symbolBody(symbol);
    const rows = [...tbody.querySelectorAll("tr.quote-row")];
    const next = rows.find((other) => other.dataset.venue > venue);
    tbody.insertBefore(tr, next || null);
    row = { tr, cells };
    quoteRows.set(key, row);
    return row;
  }

  function quoteUpdate(quote, receivedAt) {
    if (!quotes.has(quote.symbol)) quotes.set(quote.symbol, new Map());
    quotes.get(quote.symbol).set(quote.venue, {
      bid: quote.bid,
      bid_qty: quote.bid_qty,
      ask: quote.ask,
      ask_qty: quote.ask_qty,
      receivedAt,
    });
    const { cells } = quoteRow(quote.symbol, quote.venue);
    const { venue, symbol } = quote;
    setCell(cells.bid, showPrice(quote.bid, venue, symbol), quote.bid);
    setCell(cells.bid_qty, showQty(quote.bid_qty, venue, symbol), quote.bid_qty);
    setCell(cells.ask, showPrice(quote.ask, venue, symbol), quote.ask);
    setCell(cells.ask_qty, showQty(quote.ask_qty, venue, symbol), quote.ask_qty);
    const bid = decParse(quote.bid);
    const ask = decParse(quote.ask);
    const venueSpread = bid && ask ? decString(decSub(ask, bid)) : null;
    setCell(cells.venue_spread, showPrice(venueSpread, venue, symbol), venueSpread);
    spreadUpdate(quote.symbol);
    ageUpdate();
  }

  // The cross-venue spread of a symbol: the best bid anywhere against the best ask anywhere.
  function spreadUpdate(symbol) {
    const { spread } = symbolBody(symbol);
    let bestBid = null;
    let bestAsk = null;
    const now = Date.now();
    for (const [venue, q] of quotes.get(symbol) || []) {
      if (now - q.receivedAt > QUOTE_STALE_MS) continue;
      const bid = decParse(q.bid);
      const ask = decParse(q.ask);
      if (bid && (!bestBid || decCmp(bid, bestBid.value) > 0)) bestBid = { venue, value: bid, text: q.bid };
      if (ask && (!bestAsk || decCmp(ask, bestAsk.value) < 0)) bestAsk = { venue, value: ask, text: q.ask };
    }
    spread.replaceChildren(el("span", { className: "symbol", text: symbol }));
    if (!bestBid || !bestAsk || bestBid.venue === bestAsk.venue) {
      spread.append(el("span", { className: "muted", text: " no cross-venue spread (fewer than two live venues)" }));
      return;
    }
    const gross = decSub(bestBid.value, bestAsk.value);
    const rate = decDivRound(decShift(gross, 4), bestAsk.value, 2); // basis points of the ask, half-even
    const positive = gross.n > 0n;
    // A difference of two prices: at the finer of the two venues' ticks (it is exact there).
    const ticks = [instrumentOf(bestAsk.venue, symbol), instrumentOf(bestBid.venue, symbol)].map((i) => (i && i.tick ? decNormalize(i.tick).scale : MAX_PLACES));
    const grossShown = decString(decRound(gross, Math.min(MAX_PLACES, Math.max(...ticks))));
    spread.append(
      el("span", {
        text: ` buy ${bestAsk.venue} @ ${showPrice(bestAsk.text, bestAsk.venue, symbol)} → sell ${bestBid.venue} @ ${showPrice(bestBid.text, bestBid.venue, symbol)}: `,
      }),
      el("strong", {
        className: `spread-value ${positive ? "pos" : "neg"}`,
        text: `${grossShown} (${decString(rate)} bps gross)`,
        title: `${decString(gross)} (${decString(decDivRound(decShift(gross, 4), bestAsk.value, 8))} bps)`,
      }),
    );
  }

  function ageUpdate() {
    const now = Date.now();
    for (const [symbol, venues] of quotes) {
      for (const [venue, q] of venues) {
        const row = quoteRows.get(`${symbol}|${venue}`);
        if (!row) continue;
        const age = Math.max(0, now - q.receivedAt);
        row.cells.age.textContent = age < 60000 ? `${(age / 1000).toFixed(1)} s` : `${Math.floor(age / 60000)} min`;
        row.tr.classList.toggle("stale", age > QUOTE_STALE_MS);
      }
    }
  }

  async function quotesLoad() {
    const now = Date.now();
    await Promise.all(
      cfg.symbols.map(async (symbol) => {
        const rows = await api(withQuery(cfg.api.quotes, { symbol }));
        for (const row of rows) quoteUpdate(row, now - (row.age_ms || 0));
      }),
    );
    for (const symbol of cfg.symbols) symbolBody(symbol);
  }

  // ---------------------------------------------------------------------------------------------
  // Opportunities
  // ---------------------------------------------------------------------------------------------

  const opportunityRows = new Map(); // id -> tr (opportunities the handler could not record have no id)

  function opportunityShow(o, { live }) {
    const tbody = $("#opps-table tbody");
    const quote = quoteAssetOf(o.symbol);
    const cells = [
      el("td", { text: utcTime(o.ts !== undefined ? o.ts : o.detected_at) }),
      el("td", { text: o.symbol }),
      el("td", {
        className: "route",
        text: `${o.buy_venue} ${showPrice(o.buy_price, o.buy_venue, o.symbol)} → ${o.sell_venue} ${showPrice(o.sell_price, o.sell_venue, o.symbol)}`,
        title: `${o.buy_price} → ${o.sell_price}`,
      }),
      el("td", { className: "num qty", text: showQty(o.quantity, o.buy_venue, o.symbol), title: o.quantity }),
      el("td", { className: `num net ${signOf(o.net_rate) >= 0 ? "pos" : "neg"}`, text: showBps(o.net_rate), title: o.net_rate }),
      el("td", { className: "num profit", text: showMoney(o.estimated_profit, quote), title: o.estimated_profit }),
      el(
        "td",
        { title: o.reject_reason || null },
        el("span", { className: `badge s-${(o.status || "unrecorded").toLowerCase()}`, text: o.status || "unrecorded" }),
      ),
    ];
    const tr = el("tr", { "data-id": o.id === null ? null : String(o.id) }, ...cells);
    const existing = o.id !== null && o.id !== undefined ? opportunityRows.get(o.id) : null;
    if (existing) existing.replaceWith(tr);
    else if (live) tbody.prepend(tr);
    else tbody.append(tr);
    if (o.id !== null && o.id !== undefined) opportunityRows.set(o.id, tr);
    if (live) flash(tr);
    while (tbody.rows.length > MAX_OPPORTUNITIES) {
      const last = tbody.rows[tbody.rows.length - 1];
      if (last.dataset.id) opportunityRows.delete(Number(last.dataset.id));
      last.remove();
    }
    $("#opps-empty").hidden = tbody.rows.length > 0;
  }

  async function opportunitiesLoad() {
    const page = await api(withQuery(cfg.api.opportunities, { limit: MAX_OPPORTUNITIES }));
    $("#opps-table tbody").replaceChildren();
    opportunityRows.clear();
    for (const o of page.results || []) opportunityShow(o, { live: false });
    $("#opps-empty").hidden = (page.results || []).length > 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Executions
  // ---------------------------------------------------------------------------------------------

  const executions = new Map(); // id -> {data, legs, tr, cells}

  function executionRow(id) {
    let entry = executions.get(id);
    if (entry) return entry;
    const cells = {};
    const tr = el("tr", { "data-id": id });
    for (const name of ["started", "symbol", "route", "quantity", "expected", "actual", "status", "legs"]) {
      const numeric = ["quantity", "expected", "actual"].includes(name);
      cells[name] = el("td", { className: numeric ? `num ${name}` : name });
      tr.append(cells[name]);
    }
    entry = { data: { id }, legs: new Map(), tr, cells };
    executions.set(id, entry);
    return entry;
  }

  function executionRender(entry) {
    const d = entry.data;
    setCell(entry.cells.started, d.started_at ? utcDateTime(d.started_at) : "—");
    setCell(entry.cells.symbol, d.symbol || "—");
    setCell(entry.cells.route, `${d.buy_venue || "?"} → ${d.sell_venue || "?"}`);
    const quote = d.quote_asset || quoteAssetOf(d.symbol);
    setCell(entry.cells.quantity, showQty(d.quantity, d.buy_venue, d.symbol), d.quantity);
    pnlCell(entry.cells.expected, d.expected_profit, quote, false);
    pnlCell(entry.cells.actual, d.actual_profit, quote, false);
    const status = d.status || "?";
    const badge = entry.cells.status.firstChild;
    if (!badge || badge.textContent !== status) {
      entry.cells.status.replaceChildren(el("span", { className: `badge s-${status.toLowerCase()}`, text: status }));
      if (badge) flash(entry.cells.status);
    }
    const legVenue = (o) => (o.leg === "S" || o.side === "SELL" ? d.sell_venue : d.buy_venue);
    const legs = [...entry.legs.values()].map((o) => `${o.side || o.leg} ${o.status}${o.filled_qty ? ` ${showQty(o.filled_qty, legVenue(o), d.symbol)}` : ""}`);
    setCell(entry.cells.legs, legs.join(" · "));
  }

  function executionsPlace() {
    const tbody = $("#executions-table tbody");
    const ordered = [...executions.values()].sort((a, b) =>
      String(b.data.started_at || "").localeCompare(String(a.data.started_at || "")),
    );
    ordered.forEach((entry, index) => {
      if (index >= MAX_EXECUTIONS) {
        entry.tr.remove();
        executions.delete(entry.data.id);
        return;
      }
      if (tbody.rows[index] !== entry.tr) tbody.insertBefore(entry.tr, tbody.rows[index] || null);
    });
    $("#executions-empty").hidden = executions.size > 0;
  }

  function venueCode(id) {
    if (id === null || id === undefined) return null;
    return cfg.venues[String(id)] || `#${id}`;
  }

  // An {"type": "execution"} event: a status change (with the execution's figures) or an order change.
  function executionEvent(message) {
    if (!message.id) return;
    const known = executions.has(message.id);
    if (!known && !message.status) {
      later("executions", executionsLoad, 1000); // an order of an execution this page has not seen
      return;
    }
    const entry = executionRow(message.id);
    if (message.status) {
      const d = entry.data;
      d.status = message.status;
      for (const name of ["symbol", "quantity", "expected_profit", "actual_profit", "started_at", "completed_at"]) {
        if (message[name] !== undefined) d[name] = message[name];
      }
      if (message.buy_venue_id !== undefined) d.buy_venue = venueCode(message.buy_venue_id);
      if (message.sell_venue_id !== undefined) d.sell_venue = venueCode(message.sell_venue_id);
      if (TERMINAL.has(message.status)) {
        later("pnl", pnlLoad, 1500);
        later("risk", riskLoad, 1500);
        later("balances", balancesLoad, 1500);
      }
    }
    if (message.order) entry.legs.set(`${message.order.leg}${message.order.attempt || 0}`, message.order);
    executionRender(entry);
    executionsPlace();
    if (!known) flash(entry.tr);
  }

  async function executionsLoad() {
    const page = await api(withQuery(cfg.api.executions, { limit: MAX_EXECUTIONS }));
    for (const row of page.results || []) {
      const entry = executionRow(row.id);
      Object.assign(entry.data, row);
      executionRender(entry);
    }
    executionsPlace();
  }

  // ---------------------------------------------------------------------------------------------
  // Cumulative PnL chart (inline SVG)
  // ---------------------------------------------------------------------------------------------

  const PNL_DAYS = 30;
  let pnlSeries = null;

  // Per execution when every settled execution of the range fits in one page; else per UTC day.
  async function pnlLoad() {
    const start = new Date(Date.now() - PNL_DAYS * 86400000);
    const [statistics, page] = await Promise.all([
      api(withQuery(cfg.api.statistics, { group_by: "day", start: start.toISOString() })),
      api(withQuery(cfg.api.executions, { started_after: start.toISOString(), limit: 500 })),
    ]);
    let points;
    if (!page.next) {
      points = (page.results || [])
        .filter((e) => e.actual_profit !== null && e.actual_profit !== undefined)
        .map((e) => ({ at: e.completed_at || e.updated_at || e.started_at, delta: e.actual_profit, label: e.symbol }))
        .sort((a, b) => String(a.at).localeCompare(String(b.at)));
    } else {
      points = (statistics.groups || []).map((g) => ({
        at: `${g.key}T23:59:59Z`,
        delta: g.total_actual_profit,
        label: `${g.settled} settled`,
      }));
    }
    let total = { n: 0n, scale: 0 };
    const series = [];
    for (const point of points) {
      const delta = decParse(point.delta);
      if (delta === null) continue;
      total = decAdd(total, delta);
      series.push({ t: new Date(point.at).getTime(), value: decString(total), delta: point.delta, label: point.label });
    }
    pnlSeries = { series, start: start.getTime(), end: Date.now(), statistics, perExecution: !page.next };
    pnlRender();
  }

  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attributes, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function pnlRender() {
    if (!pnlSeries) return;
    const box = $("#pnl-chart-box");
    const { series, statistics } = pnlSeries;
    const width = Math.max(320, Math.floor(box.clientWidth || 640));
    const height = 240;
    const pad = { left: 90, right: 96, top: 16, bottom: 28 };
    const last = series.length ? series[series.length - 1] : null;

    // Always at least two points: zero where the series starts, the points, then flat to now.
    const firstT = series.length ? Math.min(series[0].t, pnlSeries.end) : pnlSeries.start;
    const t0 = series.length ? firstT - Math.max(60000, (pnlSeries.end - firstT) * 0.05) : pnlSeries.start;
    const t1 = Math.max(pnlSeries.end, last ? last.t : pnlSeries.end);
    const values = [0, ...series.map((p) => Number(p.value))];
    let lo = Math.min(...values);
    let hi = Math.max(...values);
    if (hi === lo) {
      hi += 1;
      lo -= 1;
    }
    const span = hi - lo;
    hi += span * 0.08;
    lo -= span * 0.08;
    const x = (t) => pad.left + ((t - t0) / Math.max(1, t1 - t0)) * (width - pad.left - pad.right);
    const y = (v) => pad.top + ((hi - v) / (hi - lo)) * (height - pad.top - pad.bottom);

    const chart = svg("svg", {
      id: "pnl-chart",
      width: String(width),
      height: String(height),
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": `Cumulative actual profit: ${last ? last.value : "0"}`,
      "data-points": String(series.length),
    });
    const zeroY = y(0);
    chart.append(
      svg("rect", { x: pad.left, y: pad.top, width: width - pad.left - pad.right, height: height - pad.top - pad.bottom, class: "plot" }),
      svg("line", { x1: pad.left, x2: width - pad.right, y1: zeroY, y2: zeroY, class: "zero" }),
      svg("text", { x: pad.left - 8, y: zeroY + 4, class: "axis", "text-anchor": "end" }, "0"),
    );
    // The extremes are labelled with the exact cumulative strings of the points that reach them.
    if (series.length) {
      const top = series.reduce((a, b) => (decCmp(decParse(b.value), decParse(a.value)) > 0 ? b : a));
      const bottom = series.reduce((a, b) => (decCmp(decParse(b.value), decParse(a.value)) < 0 ? b : a));
      for (const p of new Set([top, bottom])) {
        if (Math.abs(y(Number(p.value)) - zeroY) < 14) continue;
        chart.append(
          svg("line", { x1: pad.left, x2: width - pad.right, y1: y(Number(p.value)), y2: y(Number(p.value)), class: "grid" }),
          svg("text", { x: pad.left - 8, y: y(Number(p.value)) + 4, class: "axis", "text-anchor": "end" }, showMoney(p.value, deskAsset)),
        );
      }
    }
    // A step line: the cumulative profit changes when an execution settles and stays until the next.
    let d = `M${x(t0).toFixed(1)},${zeroY.toFixed(1)}`;
    let previousY = zeroY;
    for (const p of series) {
      const px = x(p.t).toFixed(1);
      const py = y(Number(p.value)).toFixed(1);
      d += ` H${px} V${py}`;
      previousY = py;
    }
    d += ` H${x(t1).toFixed(1)}`;
    const area = `${d} V${zeroY.toFixed(1)} H${x(t0).toFixed(1)} Z`;
    const positive = last ? signOf(last.value) >= 0 : true;
    chart.append(
      svg("path", { d: area, class: `pnl-area ${positive ? "pos" : "neg"}` }),
      svg("path", { d, class: `pnl-line ${positive ? "pos" : "neg"}` }),
    );
    if (series.length <= 200) {
      for (const p of series) {
        const dot = svg("circle", { cx: x(p.t).toFixed(1), cy: y(Number(p.value)).toFixed(1), r: "3", class: "pnl-point" });
        dot.append(svg("title", {}, `${utcDateTime(p.t)} UTC ${p.label || ""}: ${showMoney(p.delta, deskAsset)} → ${showMoney(p.value, deskAsset)}${unit(deskAsset)}`));
        chart.append(dot);
      }
    }
    chart.append(
      svg("text", { x: width - pad.right + 8, y: Number(previousY) + 4, class: `last ${positive ? "pos" : "neg"}` }, showMoney(last ? last.value : "0", deskAsset)),
      svg("text", { x: pad.left, y: height - 8, class: "axis" }, `${utcDateTime(t0).slice(0, 16)} UTC`),
      svg("text", { x: width - pad.right, y: height - 8, class: "axis", "text-anchor": "end" }, "now"),
    );
    if (!series.length) {
      chart.append(
        svg("text", { x: width / 2, y: zeroY - 12, class: "empty-note", "text-anchor": "middle" }, `No settled execution in the last ${PNL_DAYS} days`),
      );
    }
    box.replaceChildren(chart);

    const summary = $("#pnl-summary");
    summary.replaceChildren(
      el("span", { text: "Total " }),
      el("strong", { className: positive ? "pos" : "neg", text: showMoney(last ? last.value : "0", deskAsset), title: last ? last.value : "0", id: "pnl-total" }),
      el("span", { className: "unit", text: unit(deskAsset) }),
      el("span", { className: "muted", text: ` · ${series.length} ${pnlSeries.perExecution ? "settled execution" : "day"}${series.length === 1 ? "" : "s"}` }),
      el("span", { className: "muted", text: ` · ${statistics.total} started, ${statistics.completed} completed, ${statistics.failed} failed` }),
      el("span", { className: "muted", text: statistics.win_rate !== null ? ` · win rate ${showPercent(statistics.win_rate)} %` : "" }),
      el("span", { className: "muted", text: ` · fees ${showMoney(statistics.total_fees, deskAsset)}${unit(deskAsset)}` }),
    );
  }

  // ---------------------------------------------------------------------------------------------
  // Balances
  // ---------------------------------------------------------------------------------------------

  async function balancesLoad() {
    const rows = await api(cfg.api.balances);
    rows.sort((a, b) => (a.venue + a.account + a.asset).localeCompare(b.venue + b.account + b.asset));
    const tbody = $("#balances-table tbody");
    const previous = new Map([...tbody.rows].map((tr) => [tr.dataset.key, tr]));
    const fresh = rows.map((row) => {
      const key = `${row.account}|${row.asset}`;
      const tr = previous.get(key) || el("tr", { "data-key": key }, ...Array.from({ length: 7 }, (_, i) => el("td", { className: i > 2 ? "num" : "" })));
      const cells = tr.cells;
      setCell(cells[0], row.venue);
      setCell(cells[1], row.account);
      setCell(cells[2], row.asset);
      setCell(cells[3], showMoney(row.free, row.asset), row.free);
      setCell(cells[4], showMoney(row.locked, row.asset), row.locked);
      setCell(cells[5], showMoney(row.reserved, row.asset), row.reserved);
      setCell(cells[6], showMoney(row.available, row.asset), row.available);
      return tr;
    });
    tbody.replaceChildren(...fresh);
    $("#balances-empty").hidden = rows.length > 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Execution quality per venue pair (the last hour)
  // ---------------------------------------------------------------------------------------------

  function showMs(value) {
    return value === null || value === undefined ? "—" : `${Number(value).toFixed(1)} ms`;
  }

  function showRatio(text) {
    return text === null || text === undefined ? "—" : `${showPercent(text)} %`;
  }

  async function qualityLoad() {
    const report = await api(withQuery(cfg.api.quality, { window_s: 3600 }));
    const tbody = $("#quality-table tbody");
    const rows = report.pairs.map((p) => {
      const latency = p.latency_ms;
      return el("tr", { "data-pair": `${p.buy_venue}>${p.sell_venue}` },
        el("td", { text: `${p.buy_venue} → ${p.sell_venue}` }),
        el("td", { className: "num", text: String(p.taken) }),
        el("td", { className: "num", text: showRatio(p.capture_rate) }),
        el("td", { className: "num", text: p.realised_to_expected === null ? "—" : showRatio(p.realised_to_expected) }),
        el("td", { className: "num", text: showRatio(p.legging_loss_share) }),
        el("td", { className: "num", text: `${showMs(latency.detect_to_submit.p50)} / ${showMs(latency.detect_to_submit.p99)}` }),
        el("td", { className: "num", text: showMs(latency.submit_to_ack.p50) }),
        el("td", { className: "num", text: showMs(p.book_age_ms.p99) }),
      );
    });
    tbody.replaceChildren(...rows);
    $("#quality-empty").hidden = rows.length > 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Breaker and kill switch, with the staff controls
  // ---------------------------------------------------------------------------------------------

  const risk = { tradingEnabled: null, breakerOpen: null };

  function pill(node, state, text) {
    node.dataset.state = state;
    node.textContent = text;
  }

  async function riskLoad() {
    const [scopes, config] = await Promise.all([api(cfg.api.risk), api(cfg.api.config)]);
    const desk = scopes.find((s) => s.account === "global" && s.symbol === "");
    const others = scopes.filter((s) => s !== desk && s.breaker_effective).map((s) => s.scope);
    const killKey = config.find((entry) => entry.key === "trading_enabled");
    risk.tradingEnabled = killKey ? killKey.value === true : null;
    risk.breakerOpen = desk ? desk.breaker_effective : false;

    const tradingText = risk.tradingEnabled ? "Trading ON" : "Trading OFF (kill switch)";
    pill($("#kill-pill"), risk.tradingEnabled ? "ok" : "bad", risk.tradingEnabled ? "trading on" : "trading off");
    pill($("#kill-state"), risk.tradingEnabled ? "ok" : "bad", tradingText);
    pill($("#breaker-pill"), risk.breakerOpen ? "bad" : "ok", risk.breakerOpen ? "breaker open" : "breaker closed");
    pill($("#breaker-state"), risk.breakerOpen ? "bad" : "ok", risk.breakerOpen ? "OPEN" : "closed");
    let note = "";
    if (risk.breakerOpen) {
      note = desk.breaker_reason || "no reason given";
      if (desk.breaker_until) note += `, until ${utcDateTime(desk.breaker_until)} UTC`;
    }
    $("#breaker-note").textContent = note;
    pnlCell($("#risk-daily-pnl"), desk ? desk.daily_pnl : null, deskAsset, true);
    const equity = desk ? showMoney(desk.current_equity, deskAsset) : "—";
    setCell($("#risk-equity"), equity === "—" ? equity : `${equity}${unit(deskAsset)}`, desk ? desk.current_equity : null);
    setCell($("#risk-losses"), desk ? String(desk.consecutive_losses) : "—");
    setCell($("#risk-others"), others.length ? others.join(", ") : "none");

    if (cfg.staff) {
      const kill = $("#kill-toggle");
      kill.hidden = risk.tradingEnabled === null;
      kill.textContent = risk.tradingEnabled ? "Turn trading off" : "Turn trading on";
      kill.className = `staff-only ${risk.tradingEnabled ? "danger" : "safe"}`;
      const breaker = $("#breaker-toggle");
      breaker.hidden = false;
      breaker.textContent = risk.breakerOpen ? "Close the breaker" : "Open the breaker";
      breaker.className = `staff-only ${risk.breakerOpen ? "safe" : "danger"}`;
    }
  }

  async function staffAction(button, question, perform, done) {
    if (!window.confirm(question)) return;
    button.disabled = true;
    try {
      await perform();
      notice(done, "ok");
    } catch (error) {
      notice(`Refused: ${error.message}`, "error");
    } finally {
      button.disabled = false;
      riskLoad().catch(() => {});
    }
  }

  function controlsSetUp() {
    if (!cfg.staff) {
      $("#controls-hint").textContent = "Staff users can switch trading and the breaker here.";
      return;
    }
    $("#controls-hint").textContent = "Each change asks for confirmation and is written to the audit log under your name.";
    $("#kill-toggle").addEventListener("click", (event) => {
      const enable = !risk.tradingEnabled;
      staffAction(
        event.currentTarget,
        enable
          ? "Turn trading ON? New executions may start again."
          : "Turn trading OFF (kill switch)? No new execution starts; running ones finish.",
        () => api(cfg.api.config, { method: "PATCH", body: { trading_enabled: enable } }),
        enable ? "Trading is on." : "Kill switch engaged: trading is off.",
      );
    });
    $("#breaker-toggle").addEventListener("click", (event) => {
      const open = !risk.breakerOpen;
      staffAction(
        event.currentTarget,
        open
          ? "OPEN the desk breaker? No new execution starts until it is closed."
          : "CLOSE the desk breaker? Trading may resume.",
        () =>
          open
            ? api(cfg.api.breaker_open, { method: "POST", body: { reason: "manual (dashboard)" } })
            : api(cfg.api.breaker_close, { method: "POST", body: {} }),
        open ? "Breaker opened." : "Breaker closed.",
      );
    });
  }

  // ---------------------------------------------------------------------------------------------
  // The live feed: subscribe, heartbeat, reconnect with backoff, visible state
  // ---------------------------------------------------------------------------------------------

  const feed = { socket: null, attempt: 0, timer: null, retryAt: 0, lastMessageAt: 0, lastPingAt: 0, state: "connecting", everLive: false };

  function feedState(state) {
    feed.state = state;
    const node = $("#conn-state");
    const now = Date.now();
    const texts = {
      connecting: "connecting…",
      live: "● live",
      stale: `stale: no data for ${Math.round((now - feed.lastMessageAt) / 1000)} s`,
      reconnecting: `reconnecting in ${Math.max(0, Math.ceil((feed.retryAt - now) / 1000))} s (attempt ${feed.attempt})`,
      "signed-out": "signed out: reload the page",
    };
    node.dataset.state = state;
    node.textContent = texts[state] || state;
    document.body.classList.toggle("feed-down", state !== "live");
  }

  function feedLive() {
    const reconnected = feed.everLive && feed.attempt > 0;
    feed.attempt = 0;
    feed.everLive = true;
    feedState("live");
    // Whatever happened while the socket was down is only in the database: reload it.
    if (reconnected) refreshAll();
  }

  function feedMessage(message) {
    switch (message.type) {
      case "subscribed":
        feedLive();
        break;
      case "quote":
        quoteUpdate(message, Date.now());
        break;
      case "opportunity":
        opportunityShow(message, { live: true });
        break;
      case "execution":
        executionEvent(message);
        break;
      case "error":
        notice(`Live feed: ${message.message}`, "error");
        break;
      default:
        break;
    }
  }

  function connect() {
    clearTimeout(feed.timer);
    feedState(feed.attempt ? "reconnecting" : "connecting");
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    let socket;
    try {
      socket = new WebSocket(`${scheme}://${window.location.host}${cfg.ws_path}`);
    } catch (error) {
      reconnectLater();
      return;
    }
    feed.socket = socket;
    socket.onopen = () => {
      feed.lastMessageAt = feed.lastPingAt = Date.now();
      if (cfg.symbols.length) socket.send(JSON.stringify({ type: "subscribe", symbols: cfg.symbols }));
      else feedLive(); // nothing to subscribe to: execution events come to every connection
    };
    socket.onmessage = (event) => {
      feed.lastMessageAt = Date.now();
      if (feed.state === "stale") feedState("live");
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      feedMessage(message);
    };
    socket.onclose = (event) => {
      if (feed.socket !== socket) return; // a socket this page already gave up on
      feed.socket = null;
      if (event.code === 4401) {
        feedState("signed-out");
        return;
      }
      reconnectLater();
    };
  }

  function reconnectLater() {
    feed.attempt += 1;
    const ceiling = Math.min(BACKOFF_MAX_MS, 1000 * 2 ** Math.min(feed.attempt - 1, 5));
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2); // "equal jitter"
    feed.retryAt = Date.now() + delay;
    feedState("reconnecting");
    clearTimeout(feed.timer);
    feed.timer = setTimeout(connect, delay);
  }

  // Drop the socket as the network would (used by the reconnect test, handy from the console).
  function feedDrop() {
    if (feed.socket) feed.socket.close();
  }

  function heartbeat() {
    const now = Date.now();
    const socket = feed.socket;
    if (socket && socket.readyState === WebSocket.OPEN) {
      const silent = now - feed.lastMessageAt;
      if (silent > FEED_DEAD_MS) {
        feed.socket = null;
        socket.close();
        reconnectLater();
        return;
      }
      if (silent > FEED_STALE_MS) feedState("stale");
      if (now - feed.lastPingAt > PING_EVERY_MS) {
        socket.send('{"type":"ping"}');
        feed.lastPingAt = now;
      }
    } else if (feed.state === "reconnecting") {
      feedState("reconnecting"); // the countdown
    }
    ageUpdate();
    for (const symbol of quotes.keys()) spreadUpdate(symbol);
  }

  // ---------------------------------------------------------------------------------------------
  // Start
  // ---------------------------------------------------------------------------------------------

  const pending = new Map();
  function later(name, load, delayMs) {
    if (pending.has(name)) return;
    pending.set(
      name,
      setTimeout(() => {
        pending.delete(name);
        load().catch((error) => notice(`${name}: ${error.message}`, "error"));
      }, delayMs),
    );
  }

  function refreshAll() {
    for (const [name, load] of [
      ["instruments", instrumentsLoad],
      ["quotes", quotesLoad],
      ["executions", executionsLoad],
      ["opportunities", opportunitiesLoad],
      ["pnl", pnlLoad],
      ["balances", balancesLoad],
      ["quality", qualityLoad],
      ["risk", riskLoad],
    ]) {
      load().catch((error) => notice(`${name}: ${error.message}`, "error"));
    }
  }

  async function start() {
    if (!cfg.symbols.length) $("#quotes-empty").textContent = "No enabled instrument: add one in the admin.";
    controlsSetUp();
    // The increments and assets every figure is shown with, before the first figure; without them
    // (the request failed), figures are shown to 8 places until the next full refresh.
    await instrumentsLoad().catch((error) => notice(`instruments: ${error.message}`, "error"));
    quotesLoad().catch((error) => notice(`quotes: ${error.message}`, "error"));
    every(5000, "risk", riskLoad);
    every(15000, "balances", balancesLoad);
    every(15000, "quality", qualityLoad);
    every(60000, "PnL", pnlLoad);
    // The socket brings execution and opportunity changes; while it is down, poll instead.
    executionsLoad().catch((error) => notice(`executions: ${error.message}`, "error"));
    opportunitiesLoad().catch((error) => notice(`opportunities: ${error.message}`, "error"));
    setInterval(() => {
      if (feed.state !== "live") {
        executionsLoad().catch(() => {});
        opportunitiesLoad().catch(() => {});
      }
    }, 10000);
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(pnlRender, 150);
    });
    setInterval(heartbeat, 1000);
    connect();
  }

  window.arbxDashboard = {
    feed, feedDrop, refreshAll, decString, decParse, decRound, decToStep, decDivRound,
    showPrice, showQty, showMoney, showBps, showPercent,
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
