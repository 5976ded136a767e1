"""HTML for the dashboard page: tables and inline SVG, one small inline script (countdowns).

Every rendered figure also carries its raw value in ``data-value`` (``repr`` of the number, so it
round-trips exactly) with ``data-metric`` and, where it applies, ``data-client``: tests and
scrapers compare the page with the SQL rows without parsing formatted text.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from html import escape
from typing import Any

from dashboard.charts import PALETTE, Series, bars_and_line, stacked_share
from dashboard.data import Row, Window

TRUST_KANJI = {
    "distrust": "不信",
    "anxious": "不安",
    "assured": "安心",
    "credible": "信用",
    "trusted": "信頼",
}
START_LEVEL = "assured"

_STYLE = """
body{font-family:system-ui,-apple-system,"Hiragino Sans","Noto Sans CJK JP",sans-serif;
margin:16px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px} h2{font-size:15px;margin:18px 0 6px}
.meta{color:#666;font-size:12px} table{border-collapse:collapse;background:#fff;font-size:12px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left} td.n{text-align:right}
.grid{display:flex;flex-wrap:wrap;gap:18px} .card{background:#fff;padding:8px;border:1px solid #ddd}
.overdue{color:#c0392b;font-weight:bold} .soon{color:#d35400} .ok{color:#1e8449}
.lvl-distrust,.lvl-anxious{color:#c0392b} .lvl-trusted,.lvl-credible{color:#1e8449}
"""

_SCRIPT = """
(function(){
  var skew = Date.now() - Date.parse(document.body.dataset.now);
  function fmt(s){var neg=s<0;s=Math.abs(Math.round(s));var d=Math.floor(s/86400),
    h=Math.floor(s%86400/3600),m=Math.floor(s%3600/60),x=s%60;
    var t=d?d+'d '+h+'h':h?h+'h '+String(m).padStart(2,'0')+'m':m+'m '+String(x).padStart(2,'0')+'s';
    return (neg?'-':'')+t;}
  function tick(){var now=Date.now()-skew;
    document.querySelectorAll('[data-deadline]').forEach(function(el){
      var left=(Date.parse(el.dataset.deadline)-now)/1000; el.textContent=fmt(left);
      el.className=left<0?'overdue':left<3600?'soon':'ok';});}
  tick(); setInterval(tick,1000);
})();
"""


def duration(seconds: float | None) -> str:
    """A compact human duration: ``2h 05m``, ``3d 4h``, ``12m 30s``, ``-35m 00s``."""
    if seconds is None:
        return "–"
    neg = seconds < 0
    s = round(abs(seconds))
    d, h, m, x = s // 86400, s % 86400 // 3600, s % 3600 // 60, s % 60
    text = f"{d}d {h}h" if d else f"{h}h {m:02d}m" if h else f"{m}m {x:02d}s"
    return ("-" if neg else "") + text


def _number(value: float | None, spec: str, suffix: str = "") -> str:
    """``value`` in the format ``spec`` followed by ``suffix``, or a dash."""
    return "–" if value is None else f"{value:{spec}}{suffix}"


def percent(value: float | None) -> str:
    """``95.2%`` or a dash."""
    return "–" if value is None else f"{value * 100:.1f}%"


def _cell(
    text: str, metric: str, value: Any, client: str | None = None, *, numeric: bool = True
) -> str:
    attrs = f' data-metric="{escape(metric)}" data-value="{escape(_raw(value))}"'
    if client is not None:
        attrs += f' data-client="{escape(client)}"'
    cls = ' class="n"' if numeric else ""
    return f"<td{cls}{attrs}>{escape(text)}</td>"


def _raw(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value) if isinstance(value, float) else str(value)


def _by_client(rows: list[Row]) -> dict[str, Row]:
    return {str(r["client_id"]): r for r in rows}


def render_page(rows: dict[str, list[Row]], window: Window, *, live: bool) -> str:
    """The whole page for the query rows of ``window`` (see ``dashboard.data.PAGE_QUERIES``)."""
    body = [
        f"<h1>Shinrai 信頼 — response SLAs</h1><p class='meta'>as of "
        f"<time data-metric='now' data-value='{window.now.isoformat()}'>"
        f"{window.now:%Y-%m-%d %H:%M:%S} UTC</time> · window {window.since} – {window.until} "
        f"(UTC days, {window.days} d) · named queries: "
        f"<a href='/api'>/api</a>{' · refreshes every 30 s' if live else ''}</p>",
        _clients_table(rows),
        _open_table(rows["open_obligations"]),
        "<div class='grid'>",
        _card("Trend", _trend(rows["dashboard_daily_trend"])),
        "</div><div class='grid'>",
        _card("Breaches and warnings", _alerts(rows["dashboard_recent_alerts"])),
        _card("Owners", _owners(rows["breaches_by_owner"])),
        _card("Silence (reach out before they ask)", _silence(rows["silence_list"])),
        "</div><div class='grid'>",
        _card("Channel mix", _mix(rows["channel_mix"])),
        _card("Phone", _phone(rows["dashboard_phone"])),
        "</div>",
    ]
    refresh = '<meta http-equiv="refresh" content="30">' if live else ""
    return (
        '<!doctype html><html lang="ja"><head><meta charset="utf-8">'
        f"<title>Shinrai dashboard</title>{refresh}<style>{_STYLE}</style></head>"
        f'<body data-now="{window.now.isoformat()}">{"".join(body)}'
        f"<script>{_SCRIPT}</script></body></html>"
    )


def _card(title: str, inner: str) -> str:
    return f"<section class='card'><h2>{escape(title)}</h2>{inner}</section>"


def _clients_table(rows: dict[str, list[Row]]) -> str:
    directory = _by_client(rows["dashboard_clients"])
    attainment = _by_client(rows["client_attainment"])
    trust = _by_client(rows["dashboard_trust_levels"])
    phone = _by_client(rows["dashboard_phone"])
    open_rows: dict[str, list[Row]] = defaultdict(list)
    for r in rows["open_obligations"]:
        open_rows[str(r["client_id"])].append(r)
    ids = sorted(set(directory) | set(attainment) | set(trust) | set(open_rows))
    head = (
        "<tr><th>client</th><th>owner</th><th>trust</th><th>attainment</th><th>p50</th>"
        "<th>p90</th><th>opened</th><th>met</th><th>met late</th><th>breached</th>"
        "<th>open now</th><th>next deadline</th><th>answer rate</th></tr>"
    )
    lines = []
    for cid in ids:
        d = directory.get(cid, {})
        a = attainment.get(cid, {})
        level = str(trust.get(cid, {}).get("trust_level") or START_LEVEL)
        owed = open_rows.get(cid, [])
        pending = [r for r in owed if r["status"] == "open"]
        nxt = min(pending, key=lambda r: r["deadline"]) if pending else None
        lines.append(
            "<tr>"
            f"<td data-client='{escape(cid)}'>{escape(str(d.get('name') or cid))}</td>"
            f"<td>{escape(str(d.get('owner') or ''))}</td>"
            f"<td class='lvl-{escape(level)}' data-metric='trust_level' data-client='{escape(cid)}'"
            f" data-value='{escape(level)}'>{TRUST_KANJI.get(level, '')} {escape(level)}</td>"
            + _cell(percent(a.get("attainment")), "attainment", a.get("attainment"), cid)
            + _cell(
                duration(a.get("p50_business_seconds")), "p50", a.get("p50_business_seconds"), cid
            )
            + _cell(
                duration(a.get("p90_business_seconds")), "p90", a.get("p90_business_seconds"), cid
            )
            + "".join(
                _cell(str(a.get(k, 0)), k, a.get(k, 0), cid)
                for k in ("opened", "met", "met_late", "breached")
            )
            + _cell(str(len(owed)), "open_now", len(owed), cid)
            + (
                f"<td class='n'><span data-deadline='{nxt['deadline'].isoformat()}' "
                f"data-metric='next_deadline' data-client='{escape(cid)}'>"
                f"{duration(nxt['seconds_left'])}</span></td>"
                if nxt is not None
                else "<td class='n'>–</td>"
            )
            + _cell(
                percent(phone.get(cid, {}).get("answer_rate")),
                "answer_rate",
                phone.get(cid, {}).get("answer_rate"),
                cid,
            )
            + "</tr>"
        )
    return f"<h2>Clients</h2><table id='clients'>{head}{''.join(lines)}</table>"


def _open_table(rows: list[Row]) -> str:
    head = (
        "<tr><th>client</th><th>owner</th><th>kind</th><th>channel</th><th>status</th>"
        "<th>opened</th><th>deadline</th><th>time left</th></tr>"
    )
    lines = []
    for r in rows:
        deadline = r["deadline"]
        left = (
            f"<span data-deadline='{deadline.isoformat()}' data-metric='seconds_left' "
            f"data-value='{_raw(r['seconds_left'])}' data-obligation='{escape(r['obligation_id'])}'"
            f">{duration(r['seconds_left'])}</span>"
            if deadline is not None
            else "–"
        )
        lines.append(
            f"<tr data-obligation='{escape(r['obligation_id'])}'>"
            f"<td>{escape(str(r['client_name'] or r['client_id']))}</td>"
            f"<td>{escape(str(r['owner'] or ''))}</td><td>{escape(str(r['kind']))}</td>"
            f"<td>{escape(str(r['channel'] or ''))}</td><td>{escape(str(r['status']))}</td>"
            f"<td>{r['opened_at']:%m-%d %H:%M}</td>"
            f"<td>{'' if deadline is None else f'{deadline:%m-%d %H:%M}'}</td>"
            f"<td class='n'>{left}</td></tr>"
        )
    return f"<h2>Open obligations ({len(rows)})</h2><table id='open'>{head}{''.join(lines)}</table>"


def _trend(rows: list[Row]) -> str:
    labels = [str(r["day"]) for r in rows]
    svg = bars_and_line(
        labels,
        [
            Series("met", [float(r["met"]) for r in rows], PALETTE["met"]),
            Series("met late", [float(r["met_late"]) for r in rows], PALETTE["met_late"]),
            Series("breached", [float(r["breached"]) for r in rows], PALETTE["breached"]),
        ],
        Series("attainment", [r["attainment"] for r in rows], PALETTE["attainment"]),
        title="answers per day (bars) and attainment (line)",
    )
    totals = {k: sum(int(r[k]) for r in rows) for k in ("opened", "breached", "warnings")}
    summary = " · ".join(
        f"<span data-metric='trend_{k}' data-value='{v}'>{k}: {v}</span>" for k, v in totals.items()
    )
    return f"{svg}<p class='meta'>{summary}</p>"


def _fraction(value: float | None) -> str:
    return "" if value is None else f" {value:.0%}"


def _alerts(rows: list[Row]) -> str:
    head = "<tr><th>at</th><th>kind</th><th>client</th><th>owner</th><th>now</th></tr>"
    lines = [
        f"<tr data-metric='alert' data-value='{escape(str(r['kind']))}'>"
        f"<td>{r['at']:%m-%d %H:%M}</td>"
        f"<td class='{'overdue' if r['kind'] == 'breached' else 'soon'}'>{escape(str(r['kind']))}"
        f"{_fraction(r['warning_fraction'])}</td>"
        f"<td>{escape(str(r['client_name'] or r['client_id']))}</td>"
        f"<td>{escape(str(r['owner'] or ''))}</td><td>{escape(str(r['status'] or ''))}</td></tr>"
        for r in rows[:25]
    ]
    return f"<table id='alerts'>{head}{''.join(lines)}</table>"


def _owners(rows: list[Row]) -> str:
    head = "<tr><th>owner</th><th>breaches</th><th>clients breached</th><th>attainment</th></tr>"
    lines = [
        f"<tr><td>{escape(str(r['owner'] or '(unassigned)'))}</td>"
        + _cell(str(r["breaches"]), "owner_breaches", r["breaches"], str(r["owner"]))
        + _cell(str(r["clients_breached"]), "owner_clients", r["clients_breached"], str(r["owner"]))
        + _cell(percent(r["attainment"]), "owner_attainment", r["attainment"], str(r["owner"]))
        + "</tr>"
        for r in rows
    ]
    return f"<table id='owners'>{head}{''.join(lines)}</table>"


def _silence(rows: list[Row]) -> str:
    if not rows:
        return "<p class='meta'>nobody is waiting on us to reach out</p>"
    head = "<tr><th>client</th><th>owner</th><th>silence since</th><th>days</th></tr>"
    lines = [
        f"<tr><td>{escape(str(r['client_name'] or r['client_id']))}</td>"
        f"<td>{escape(str(r['owner'] or ''))}</td><td>{r['last_silence_at']:%m-%d %H:%M}</td>"
        + _cell(
            _number(r["days_since_outbound"], ".1f"),
            "silence_days",
            r["days_since_outbound"],
            str(r["client_id"]),
        )
        + "</tr>"
        for r in rows
    ]
    return f"<table id='silence'>{head}{''.join(lines)}</table>"


def _mix(rows: list[Row]) -> str:
    grouped: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for r in rows:
        grouped[str(r["client_id"])].append((str(r["channel"]), float(r["total"])))
    cells = "".join(
        f"<tr><td>{escape(str(r['client_id']))}</td><td>{escape(str(r['channel']))}</td>"
        + _cell(str(r["total"]), f"mix_{r['channel']}", r["total"], str(r["client_id"]))
        + "</tr>"
        for r in rows
    )
    svg = stacked_share(sorted(grouped.items()), title="interactions by channel")
    return f"{svg}<details><summary>numbers</summary><table id='mix'>{cells}</table></details>"


def _phone(rows: list[Row]) -> str:
    head = (
        "<tr><th>client</th><th>calls</th><th>answered</th><th>abandoned</th><th>missed</th>"
        "<th>answer rate</th><th>abandon rate</th><th>wait p50</th><th>wait p90</th></tr>"
    )
    return f"<table id='phone'>{head}{''.join(_phone_row(r) for r in rows)}</table>"


def _phone_row(r: Row) -> str:
    client = str(r["client_id"])
    counts = [(str(r[k]), f"phone_{k}", r[k]) for k in ("calls", "answered", "abandoned", "missed")]
    rates = [
        (percent(r[f"{k}_rate"]), f"phone_{k}_rate", r[f"{k}_rate"]) for k in ("answer", "abandon")
    ]
    waits = [
        (
            _number(r[f"{p}_answer_wait_seconds"], ".0f", " s"),
            f"phone_{p}_wait",
            r[f"{p}_answer_wait_seconds"],
        )
        for p in ("p50", "p90")
    ]
    cells = "".join(
        _cell(text, metric, value, client) for text, metric, value in counts + rates + waits
    )
    return f"<tr><td>{escape(client)}</td>{cells}</tr>"
