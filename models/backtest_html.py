"""A backtest as one self-contained HTML page: no script, no file or address outside it.

A table of alerts per 1,000 device-days per fault, the known failures when given, then one
section per device that alerted: a small inline SVG chart of each numeric column over time,
alert starts drawn as red lines, and the alerts listed with their reasons.
"""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime

from models.backtest_report import Found, Summary
from models.csvfile import Table

_W, _H, _PAD = 760, 120, 4
_MAX_POINTS = 800
_MAX_DEVICES = 60
_STYLE = (
    "body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:820px}"
    "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;"
    "text-align:left}h2{margin-top:32px}svg{background:#fafafa;border:1px solid #ddd}"
    ".m{color:#555;font-size:12px}"
)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _chart(table: Table, device: str, column: str, alerts: list[Found]) -> str:
    j = table.numeric.index(column)
    pts = [(r.ts, r.values[j]) for r in table.rows if r.device == device]
    pts = [(t, v) for t, v in pts if not math.isnan(v)]
    if len(pts) < 2:
        return ""
    step = max(1, len(pts) // _MAX_POINTS)
    pts = pts[::step]
    t0, t1 = pts[0][0], pts[-1][0]
    lo, hi = min(v for _, v in pts), max(v for _, v in pts)
    span_t, span_v = max(t1 - t0, 1.0), max(hi - lo, 1e-9)

    def x(t: float) -> float:
        return _PAD + (_W - 2 * _PAD) * (t - t0) / span_t

    def y(v: float) -> float:
        return _H - _PAD - (_H - 2 * _PAD) * (v - lo) / span_v

    line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
    marks = "".join(
        f'<line x1="{x(a.start):.1f}" x2="{x(a.start):.1f}" y1="0" y2="{_H}" '
        f'stroke="#d22" stroke-width="1.5"><title>{html.escape(a.fault)}: '
        f"{html.escape(a.reason)}</title></line>"
        for a in alerts
        if t0 <= a.start <= t1 + 86400
    )
    return (
        f'<div class="m">{html.escape(column)}: {lo:.4g} to {hi:.4g}, '
        f"{_when(t0)} to {_when(t1)} UTC</div>"
        f'<svg width="{_W}" height="{_H}" role="img" aria-label="{html.escape(column)}">'
        f'<polyline fill="none" stroke="#36c" stroke-width="1" points="{line}"/>{marks}</svg>'
    )


def report_html(table: Table, summary: Summary, *, title: str) -> str:
    """The whole page."""
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{len(summary.devices)} device(s), {summary.device_days:.1f} device-days, "
        f"{len(summary.alerts)} alert(s).</p>",
        "<h2>Alerts per 1,000 device-days</h2><table><tr><th>fault</th><th>alerts</th>"
        "<th>per 1,000 device-days</th></tr>",
    ]
    for fault, q in summary.per_fault.items():
        out.append(
            f"<tr><td>{html.escape(fault)}</td><td>{q['alerts']:.0f}</td>"
            f"<td>{q['per_1000_device_days']:.2f}</td></tr>"
        )
    out.append("</table>")
    if summary.outages:
        out.append("<h2>Fleet outages</h2><ul>")
        out += [
            f"<li>{_when(o['ts'])} UTC: {html.escape(o['reason'])}</li>" for o in summary.outages
        ]
        out.append("</ul>")
    if summary.events:
        out.append(
            "<h2>Known failures</h2><table><tr><th>device</th><th>fault</th><th>time</th>"
            "<th>warned</th><th>lead h</th><th>reason</th></tr>"
        )
        for e in summary.events["failures"]:
            out.append(
                f"<tr><td>{html.escape(e['device'])}</td><td>{html.escape(e['fault'])}</td>"
                f"<td>{_when(e['time'])}</td><td>{'yes' if e['warned'] else 'no'}</td>"
                f"<td>{'' if e['lead_h'] is None else e['lead_h']}</td>"
                f"<td>{html.escape(e['reason'])}</td></tr>"
            )
        out.append("</table>")
    alerted = sorted({a.device for a in summary.alerts})
    for device in alerted[:_MAX_DEVICES]:
        mine = [a for a in summary.alerts if a.device == device]
        out.append(f"<h2>{html.escape(device or '(one device)')}</h2>")
        out += [_chart(table, device, c, mine) for c in table.numeric]
        out.append("<ul>")
        out += [
            f"<li>{_when(a.start)} UTC <b>{html.escape(a.fault)}</b>: {html.escape(a.reason)}</li>"
            for a in mine
        ]
        out.append("</ul>")
    if len(alerted) > _MAX_DEVICES:
        out.append(f"<p>… and {len(alerted) - _MAX_DEVICES} more devices with alerts.</p>")
    out.append("</body></html>")
    return "\n".join(out)
