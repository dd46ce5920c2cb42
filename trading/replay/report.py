"""The replay's report: one self-contained HTML file (inline CSS and SVG, nothing fetched), with the figures
a desk reads first, the plots it would rather look at (PnL over time, capture and legging by pair, the book's
age when orders arrived, the sweep), and the tables behind them."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from arbitragex.money import ZERO
from trading.replay.engine import ReplayExecution, ReplayRun

__all__ = ["SweepPoint", "best_index", "report_html"]

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1d2330;background:#f6f7f9}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.sub{color:#5b6475;margin-bottom:16px}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:10px 14px;min-width:120px}
.card b{display:block;font-size:20px}.card .label{color:#5b6475;font-size:12px}
table{border-collapse:collapse;background:#fff;border:1px solid #dde1e8;margin:6px 0}
th,td{padding:4px 10px;border-bottom:1px solid #eef0f4;text-align:right}th{background:#f0f2f6}
td:first-child,th:first-child{text-align:left}
tr.best td{background:#e7f5ec;font-weight:600}
.pos{color:#137333}.neg{color:#b3261e}
.plots{display:flex;flex-wrap:wrap;gap:16px}
.plot{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:8px}
.note{color:#5b6475;font-size:12px;max-width:1000px}
"""


@dataclass(frozen=True, slots=True)
class SweepPoint:
    overrides: dict[str, Any]
    run: ReplayRun


def _num(value: Any, places: int = 4) -> str:
    """A readable number: at most ``places`` decimals (never more than 8), no exponent."""
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    number = Decimal(str(value)).quantize(Decimal(1).scaleb(-min(places, 8)))
    return f"{number:,f}"


def _signed(value: Decimal, places: int = 4) -> str:
    css = "pos" if value > 0 else "neg" if value < 0 else ""
    text = _num(value, places)
    return f'<span class="{css}">{"+" if value > 0 else ""}{text}</span>'


def best_index(points: Sequence[SweepPoint]) -> int:
    """The grid point of the highest PnL (the first on ties)."""
    return max(range(len(points)), key=lambda i: (points[i].run.summary()["pnl"], -i))


# --- plots ---------------------------------------------------------------------------------------------------


def _axis_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high == low:
        return [low]
    step = (high - low) / (count - 1)
    return [low + step * i for i in range(count)]


def line_chart(
    series: list[tuple[str, list[tuple[float, float]], str]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    width: int = 560,
    height: int = 260,
) -> str:
    """An SVG line chart of (x, y) series: (name, points, colour)."""
    left, right, bottom = 64, 16, 40
    top = 28 + 14 * len(series)  # the legend's rows sit between the title and the plot
    points = [p for _, pts, _ in series for p in pts]
    if not points:
        return _empty(title, width, height)
    xs, ys = [p[0] for p in points], [p[1] for p in points] + [0.0]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = y1 if y1 > y0 else y0 + 1

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y: float) -> float:
        return height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f'<text x="{left}" y="18" font-size="13" font-weight="600">{html.escape(title)}</text>',
    ]
    for y in _axis_ticks(y0, y1):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#eef0f4"/>')
        parts.append(f'<text x="{left - 6}" y="{sy(y) + 4:.1f}" font-size="11" text-anchor="end">{y:,.2f}</text>')
    for x in _axis_ticks(x0, x1):
        parts.append(
            f'<text x="{sx(x):.1f}" y="{height - bottom + 16}" font-size="11" text-anchor="middle">{x:,.1f}</text>'
        )
    if y0 < 0 < y1:
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{sy(0):.1f}" y2="{sy(0):.1f}" stroke="#9aa3b2"/>')
    for index, (name, pts, colour) in enumerate(series):
        if not pts:
            continue
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        parts.append(
            f'<text x="{left}" y="{30 + 14 * index}" font-size="11" fill="{colour}">— {html.escape(name)}</text>'
        )
    parts.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 6}" font-size="11" text-anchor="middle">'
        f"{html.escape(x_label)}</text>"
    )
    parts.append(
        f'<text x="14" y="{(top + height - bottom) / 2}" font-size="11" text-anchor="middle" '
        f'transform="rotate(-90 14 {(top + height - bottom) / 2})">{html.escape(y_label)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(bars: list[tuple[str, float, str]], *, title: str, unit: str, width: int = 560, height: int = 260) -> str:
    """An SVG bar chart: (label, value, colour); negative values hang below the zero line."""
    if not bars:
        return _empty(title, width, height)
    left, right, top, bottom = 64, 16, 28, 56
    values = [v for _, v, _ in bars] + [0.0]
    low, high = min(values), max(values)
    high = high if high > low else low + 1
    slot = (width - left - right) / len(bars)

    def sy(y: float) -> float:
        return height - bottom - (y - low) / (high - low) * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">',
        f'<text x="{left}" y="18" font-size="13" font-weight="600">{html.escape(title)}</text>',
    ]
    for y in _axis_ticks(low, high):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#eef0f4"/>')
        parts.append(f'<text x="{left - 6}" y="{sy(y) + 4:.1f}" font-size="11" text-anchor="end">{y:,.2f}</text>')
    for index, (label, value, colour) in enumerate(bars):
        x = left + slot * index + slot * 0.15
        y_top, y_zero = sy(max(value, 0.0)), sy(min(value, 0.0))
        parts.append(
            f'<rect x="{x:.1f}" y="{min(y_top, sy(0)):.1f}" width="{slot * 0.7:.1f}" '
            f'height="{abs(y_zero - y_top) or 1:.1f}" fill="{colour}"/>'
        )
        parts.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{min(y_top, sy(0)) - 4:.1f}" font-size="11" '
            f'text-anchor="middle">{value:,.2f}</text>'
        )
        parts.append(
            f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom + 16}" font-size="11" '
            f'text-anchor="middle">{html.escape(label)}</text>'
        )
    parts.append(f'<text x="{left}" y="{height - 8}" font-size="11">{html.escape(unit)}</text></svg>')
    return "".join(parts)


def _empty(title: str, width: int, height: int) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"><text x="16" y="18" '
        f'font-size="13" font-weight="600">{html.escape(title)}</text><text x="16" y="{height / 2}" '
        f'font-size="12" fill="#5b6475">nothing to plot: no execution</text></svg>'
    )


# --- the report -----------------------------------------------------------------------------------------------


def _pnl_curve(run: ReplayRun) -> list[tuple[float, float]]:
    total = 0.0
    curve = [(0.0, 0.0)]
    for execution in sorted((e for e in run.executions if e.outcome != "open"), key=lambda e: e.ended_us):
        total += float(execution.pnl)
        curve.append(((execution.ended_us - run.start_us) / 60e6, total))
    return curve


def _quantiles(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    if not ordered:
        return {"p50": None, "p90": None, "p99": None}
    pick = {
        name: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
        for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
    }
    return dict(pick)


def _by_pair(run: ReplayRun) -> dict[str, list[ReplayExecution]]:
    pairs: dict[str, list[ReplayExecution]] = {}
    for execution in run.executions:
        if execution.outcome != "open":
            pairs.setdefault(execution.pair, []).append(execution)
    return dict(sorted(pairs.items()))


def _cards(summary: dict[str, Any]) -> str:
    cards = [
        ("PnL (quote)", _signed(summary["pnl"])),
        ("expected", _num(summary["expected_profit"])),
        ("realised / expected", _num(summary["realised_to_expected"], 3)),
        ("capture (completed / taken)", _num(summary["capture_rate"], 3)),
        ("legging loss / gross", _num(summary["legging_loss_share"], 3)),
        ("taken", _num(summary["taken"])),
        ("declined", _num(sum(summary["declined"].values()))),
        ("fees", _num(summary["fees"])),
    ]
    return (
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{v}</b><span class="label">{k}</span></div>' for k, v in cards)
        + "</div>"
    )


def report_html(*, title: str, source: str, parameters: dict[str, Any], points: Sequence[SweepPoint]) -> str:
    """The whole report: the best grid point in detail, and every point in the sweep table."""
    best = best_index(points)
    run = points[best].run
    summary = run.summary()
    pairs = _by_pair(run)
    palette = ["#1a73e8", "#e8710a", "#188038", "#9334e6", "#d01884", "#12b5cb", "#5f6368"]
    curves = [(f"best: {_label(points[best].overrides)}", _pnl_curve(run), palette[0])]
    curves += [(_label(p.overrides), _pnl_curve(p.run), palette[1 + i % 6]) for i, p in enumerate(points) if i != best][
        :5
    ]
    ages = [age for e in run.executions for age in e.book_ages_ms]
    durations = [(e.ended_us - e.detected_us) / 1000 for e in run.executions if e.outcome != "open"]
    age_q, duration_q = _quantiles(ages), _quantiles(durations)
    plots = [
        line_chart(curves, title="Cumulative PnL", x_label="minutes into the data", y_label="quote asset"),
        bar_chart(
            [
                (pair, float(sum((e.pnl for e in ex), ZERO)), palette[i % 7])
                for i, (pair, ex) in enumerate(pairs.items())
            ],
            title="PnL by venue pair",
            unit="quote asset",
        ),
        bar_chart(
            [
                (pair, 100.0 * sum(e.outcome in ("completed", "repaired") for e in ex) / len(ex), "#188038")
                for pair, ex in pairs.items()
            ],
            title="Capture by pair (completed / taken, %)",
            unit="%",
        ),
        bar_chart(
            [(pair, float(sum((e.legging_loss for e in ex), ZERO)), "#b3261e") for pair, ex in pairs.items()],
            title="Legging loss by pair (repairs and unwinds)",
            unit="quote asset",
        ),
        bar_chart(
            [(name, value or 0.0, "#1a73e8") for name, value in age_q.items()]
            + [(f"end {name}", value or 0.0, "#9334e6") for name, value in duration_q.items()],
            title="Book age at fill, and detection → end (ms)",
            unit="ms",
        ),
        bar_chart(
            [
                (_short(p.overrides), float(p.run.summary()["pnl"]), "#188038" if i == best else "#9aa3b2")
                for i, p in enumerate(points)
            ],
            title="PnL of each grid point",
            unit="quote asset",
        ),
    ]
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><div class='sub'>{html.escape(source)}</div>",
        f"<h2>Best grid point: {html.escape(_label(points[best].overrides))}</h2>",
        _cards(summary),
        "<h2>Plots</h2><div class='plots'>" + "".join(f"<div class='plot'>{p}</div>" for p in plots) + "</div>",
        "<h2>By venue pair</h2>",
        _table(
            [
                "pair",
                "taken",
                "completed",
                "repaired",
                "unwound",
                "failed",
                "capture",
                "expected",
                "PnL",
                "fees",
                "legging loss",
            ],
            [
                [
                    pair,
                    len(ex),
                    sum(e.outcome == "completed" for e in ex),
                    sum(e.outcome == "repaired" for e in ex),
                    sum(e.outcome == "unwound" for e in ex),
                    sum(e.outcome == "failed" for e in ex),
                    _num(Decimal(sum(e.outcome in ("completed", "repaired") for e in ex)) / len(ex), 3),
                    _num(sum((e.expected for e in ex), ZERO)),
                    _signed(sum((e.pnl for e in ex), ZERO)),
                    _num(sum((e.fees for e in ex), ZERO)),
                    _num(sum((e.legging_loss for e in ex), ZERO)),
                ]
                for pair, ex in pairs.items()
            ],
        ),
        "<h2>Latency</h2>",
        _table(
            ["", "p50", "p90", "p99"],
            [
                ["book age when an order arrived (ms)", *[_num(v, 2) for v in age_q.values()]],
                ["detection → execution ended (ms)", *[_num(v, 2) for v in duration_q.values()]],
            ],
        ),
        "<h2>Declined, and why</h2>",
        _table(
            ["code and reason", "opportunities"],
            [[k, v] for k, v in summary["declined"].items()] or [["none declined", 0]],
        ),
        "<h2>Sweep</h2>",
        _sweep_table(points, best),
        "<h2>Parameters</h2>",
        _table(["parameter", "value"], [[k, html.escape(str(v))] for k, v in parameters.items()]),
        "<h2>Executions of the best grid point (first 200)</h2>",
        _table(
            ["detected (s)", "pair", "policy", "quantity", "expected", "outcome", "PnL", "steps"],
            [
                [
                    _num((e.detected_us - run.start_us) / 1e6, 3),
                    e.pair,
                    e.policy + (f" ({e.first_leg} first)" if e.first_leg else ""),
                    _num(e.quantity, 8),
                    _num(e.expected),
                    e.outcome,
                    _signed(e.pnl),
                    "<br>".join(html.escape(s) for s in e.steps),
                ]
                for e in run.executions[:200]
            ],
        ),
        "<p class='note'>The platform's own detection, debouncer, policies, band and cost-aware firing decide; the "
        "harness plays the venues on a virtual clock (docs/replay.md says what is modelled and what is not).</p>",
        "</body></html>",
    ]
    return "".join(out)


def _short(overrides: dict[str, Any]) -> str:
    """A grid point by its values alone, for a plot's axis."""
    return " / ".join(str(v) for v in overrides.values()) or "run"


def _label(overrides: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in overrides.items()) or "the run's settings"


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _sweep_table(points: Sequence[SweepPoint], best: int) -> str:
    headers = [
        "grid point",
        "detected",
        "taken",
        "declined",
        "capture",
        "realised / expected",
        "legging share",
        "fees",
        "PnL",
    ]
    rows = []
    for index, point in enumerate(points):
        s = point.run.summary()
        cells = [
            html.escape(_label(point.overrides)),
            s["detected"],
            s["taken"],
            sum(s["declined"].values()),
            _num(s["capture_rate"], 3),
            _num(s["realised_to_expected"], 3),
            _num(s["legging_loss_share"], 3),
            _num(s["fees"]),
            _signed(s["pnl"]),
        ]
        css = " class='best'" if index == best else ""
        rows.append(f"<tr{css}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
