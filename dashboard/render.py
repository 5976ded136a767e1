"""HTML for the dashboard's main page: tables and inline SVG, one small inline script (countdowns).

Every rendered figure also carries its raw value in ``data-value`` (``repr`` of the number, so it
round-trips exactly) with ``data-metric`` and, where it applies, ``data-client``: tests and
scrapers compare the page with the SQL rows without parsing formatted text. Times people read
are in the team's zone (``dashboard.clock``); ``data-value`` of an instant stays ISO-8601 UTC.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from html import escape
from typing import Any
from urllib.parse import quote

from dashboard.charts import PALETTE, Series, bars_and_line, stacked_share
from dashboard.clock import TeamClock, countdown, duration
from dashboard.data import Row, Window
from dashboard.labels import Labels
from dashboard.progress import WorkerProgress
from dashboard.risk import START_LEVEL, ClientRisk, riskiest_first

MIN_DUE = 5
"""A day with fewer obligations due than this has no attainment point on the trend (marked)."""

STYLE = """
body{font-family:system-ui,-apple-system,"Hiragino Sans","Noto Sans CJK JP",sans-serif;
margin:16px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px} h2{font-size:15px;margin:18px 0 6px}
.meta{color:#666;font-size:12px} table{border-collapse:collapse;background:#fff;font-size:12px}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:left} td.n{text-align:right}
.grid{display:flex;flex-wrap:wrap;gap:18px} .card{background:#fff;padding:8px;border:1px solid #ddd}
.overdue{color:#c0392b;font-weight:bold} .soon{color:#d35400} .ok{color:#1e8449}
.lvl-distrust,.lvl-anxious{color:#c0392b} .lvl-trusted,.lvl-credible{color:#1e8449}
.banner{padding:8px 12px;margin:8px 0;border:1px solid #d35400;background:#fff4e5}
.owners a{margin-right:10px} .owners a.sel{font-weight:bold;text-decoration:none;color:#222}
a{color:#1f5fa8}
"""

_SCRIPT = """
(function(){
  var b=document.body.dataset, skew=Date.now()-Date.parse(b.now);
  function fmt(s){s=Math.abs(Math.round(s));var d=Math.floor(s/86400),
    h=Math.floor(s%86400/3600),m=Math.floor(s%3600/60),x=s%60;
    return d?d+'d '+h+'h':h?h+'h '+String(m).padStart(2,'0')+'m':m+'m '+String(x).padStart(2,'0')+'s';}
  function tick(){var now=Date.now()-skew;
    document.querySelectorAll('[data-deadline]').forEach(function(el){
      var left=(Date.parse(el.dataset.deadline)-now)/1000;
      el.textContent=(left<0?b.overdue:b.dueIn)+' '+fmt(left);
      el.className=left<0?'overdue':left<3600?'soon':'ok';});}
  tick(); setInterval(tick,1000);
})();
"""


@dataclass(frozen=True)
class View:
    """How one request wants the page: window, team clock, language, owner filter, worker state."""

    window: Window
    clock: TeamClock
    words: Labels
    live: bool
    owner: str | None = None
    progress: WorkerProgress | None = None
    people: Mapping[str, str] = field(default_factory=dict)
    zone_guessed: bool = False  # no setting and no directory: UTC, and the page says how to set it

    def person(self, email: str | None) -> str:
        """An address as HTML: the staff member's name when the directory knows it."""
        if not email:
            return ""
        name = self.people.get(email.lower())
        if name is None:
            return escape(email)
        return f"<span title='{escape(email)}'>{escape(name)}</span>"

    def query(self, **extra: str) -> str:
        """The query string that keeps this view's window (and ``extra``) on a link."""
        params: dict[str, str] = {}
        if not self.live:
            params["now"] = self.window.now.isoformat().replace("+00:00", "Z")
        params["days"] = str(self.window.days)
        params.update(extra)
        return "?" + "&".join(f"{k}={quote(v)}" for k, v in params.items())


def percent(value: float | None) -> str:
    """``95.2%`` or a dash."""
    return "–" if value is None else f"{value * 100:.1f}%"


def _number(value: float | None, spec: str, suffix: str = "") -> str:
    """``value`` in the format ``spec`` followed by ``suffix``, or a dash."""
    return "–" if value is None else f"{value:{spec}}{suffix}"


def raw(value: Any) -> str:
    """The exact value for a ``data-value`` attribute."""
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return repr(value) if isinstance(value, float) else str(value)


def cell(
    text: str, metric: str, value: Any, client: str | None = None, *, numeric: bool = True
) -> str:
    """A table cell showing ``text`` that carries ``value`` for machines."""
    attrs = f' data-metric="{escape(metric)}" data-value="{escape(raw(value))}"'
    if client is not None:
        attrs += f' data-client="{escape(client)}"'
    cls = ' class="n"' if numeric else ""
    return f"<td{cls}{attrs}>{escape(text)}</td>"


def deadline_span(
    view: View, deadline: datetime | None, seconds_left: float | None, **data: str
) -> str:
    """Local wall time of ``deadline`` plus a live countdown ("in 2h 05m" / "overdue 2h 05m")."""
    if deadline is None:
        return "–"
    attrs = "".join(f' data-{k.replace("_", "-")}="{escape(v)}"' for k, v in data.items())
    cls = "overdue" if (seconds_left or 0) < 0 else "soon" if (seconds_left or 0) < 3600 else "ok"
    words = view.words
    return (
        f"<time datetime='{deadline.isoformat()}' data-local='{escape(view.clock.stamp(deadline))}'>"
        f"{escape(view.clock.short(deadline))}</time> "
        f"<span class='{cls}' data-deadline='{deadline.isoformat()}'{attrs}>"
        f"{escape(countdown(seconds_left, overdue=words('overdue'), due_in=words('due_in')))}"
        "</span>"
    )


def client_link(view: View, client_id: str, name: str | None) -> str:
    """The client's name, linking to its page."""
    href = f"/clients/{quote(client_id, safe='')}{view.query()}"
    return f"<a href='{escape(href)}'>{escape(name or client_id)}</a>"


def page(view: View, title: str, body: list[str], *, refresh: int | None = 30) -> str:
    """A whole HTML document around ``body``."""
    meta = (
        f'<meta http-equiv="refresh" content="{refresh}">'
        if view.live and refresh is not None
        else ""
    )
    words = view.words
    return (
        f'<!doctype html><html lang="{view.words.lang}"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>{meta}<style>{STYLE}</style></head>"
        f'<body data-now="{view.window.now.isoformat()}" data-zone="{escape(view.clock.zone_name)}"'
        f' data-overdue="{escape(words("overdue"))}" data-due-in="{escape(words("due_in"))}">'
        f"{''.join(body)}<script>{_SCRIPT}</script></body></html>"
    )


def as_of(view: View) -> str:
    """The 'as of' line: the instant in the team's zone, the zone named, the window."""
    words, clock, win = view.words, view.clock, view.window
    refresh = f" · {words('refresh')}" if view.live else ""
    return (
        f"<p class='meta'>{words('as_of')} <time data-metric='now' data-value='{win.now.isoformat()}'"
        f" data-zone='{escape(clock.zone_name)}'>{escape(clock.stamp(win.now, seconds=True))}</time>"
        f" · {words('times_in')} <b id='zone'>{escape(clock.label(win.now))}</b>"
        + (f" ({words('zone_hint')})" if view.zone_guessed else "")
        + f" · {words('window')} {win.days} d ({words('utc_days')}) · "
        f"<a href='/api'>/api</a>{refresh}</p>"
    )


def status_banner(view: View, freshness: list[Row]) -> str:
    """Catching up (with how far behind) when the worker says so; else how fresh the data is."""
    words, clock, now = view.words, view.clock, view.window.now
    newest = freshness[0].get("newest_interaction") if freshness else None
    behind = None if newest is None else (now - newest).total_seconds()
    if view.progress is not None and view.progress.catching_up:
        lag = (
            f" {words('processed_to')} {escape(clock.stamp(newest))}"
            f" (<b data-metric='behind_seconds' data-value='{raw(behind)}'>"
            f"{escape(duration(behind))} {words('behind')}</b>)."
            if behind is not None
            else ""
        )
        return (
            f"<div class='banner' id='catching-up'><b>{words('catching_up')}</b> — "
            f"{words('catching_up_text')}{lag} "
            f"<span data-metric='records_behind' data-value='{view.progress.records_behind}'>"
            f"{words('records_queued')}: {view.progress.records_behind}</span></div>"
        )
    if newest is None:
        return ""
    return (
        f"<p class='meta' id='freshness'>{words('data_up_to')}: {escape(clock.stamp(newest))}"
        f" ({escape(duration(behind or 0))})</p>"
    )


def render_page(rows: dict[str, list[Row]], view: View) -> str:
    """The main page for the query rows of ``view`` (see ``dashboard.data.PAGE_QUERIES``)."""
    words = view.words
    directory = {str(r["client_id"]): r for r in rows["dashboard_clients"]}
    keep = _owned(directory, view.owner)
    body = [
        f"<h1>{escape(words('title'))}</h1>",
        as_of(view),
        status_banner(view, rows["dashboard_freshness"]),
        _owner_links(view, rows["dashboard_clients"]),
        _clients_table(rows, view, keep),
        _open_table([r for r in rows["open_obligations"] if keep(r)], view),
        "<div class='grid'>",
        _card(words("trend"), trend(rows["dashboard_due_trend"], view)),
        "</div><div class='grid'>",
        _card(
            words("alerts"), _alerts([r for r in rows["dashboard_recent_alerts"] if keep(r)], view)
        ),
        _card(words("owners"), _owners(rows["breaches_by_owner"], view)),
        _card(words("silence"), _silence([r for r in rows["silence_list"] if keep(r)], view)),
        "</div><div class='grid'>",
        _card(words("mix"), _mix([r for r in rows["channel_mix"] if keep(r)], directory, view)),
        _card(
            words("phone"), _phone([r for r in rows["dashboard_phone"] if keep(r)], directory, view)
        ),
        "</div>",
    ]
    return page(view, "Shinrai dashboard", body)


def _owned(directory: dict[str, Row], owner: str | None) -> Any:
    """A predicate on rows with a client_id: inside the owner filter (always true without one)."""
    if owner is None:
        return lambda row: True
    ids = {cid for cid, r in directory.items() if str(r.get("owner") or "") == owner}
    return lambda row: str(row["client_id"]) in ids


def _owner_links(view: View, clients: list[Row]) -> str:
    owners = sorted({str(r["owner"] or "") for r in clients} - {""})
    words = view.words
    sel = view.owner
    links = [
        f"<a href='{escape(view.query())}' data-owner='' class='{'sel' if sel is None else ''}'>"
        f"{words('all_owners')}</a>"
    ]
    links += [
        f"<a href='{escape(view.query(owner=o))}' data-owner='{escape(o)}' "
        f"class='{'sel' if sel == o else ''}'>{view.person(o)}</a>"
        for o in owners
    ]
    return f"<p class='owners' id='owners-filter'>{words('owner')}: {''.join(links)}</p>"


def _card(title: str, inner: str) -> str:
    return f"<section class='card'><h2>{escape(title)}</h2>{inner}</section>"


def _by_client(rows: list[Row]) -> dict[str, Row]:
    return {str(r["client_id"]): r for r in rows}


def client_risks(rows: dict[str, list[Row]], ids: list[str]) -> list[ClientRisk]:
    """The risk of every client of ``ids`` from the page rows (see ``dashboard.risk``)."""
    directory = _by_client(rows["dashboard_clients"])
    trust = _by_client(rows["dashboard_trust_levels"])
    week = _by_client(rows["breaches_week"])
    owed: dict[str, list[Row]] = defaultdict(list)
    for r in rows["open_obligations"]:
        owed[str(r["client_id"])].append(r)
    out = []
    for cid in ids:
        items = [r for r in owed.get(cid, []) if r["deadline"] is not None]
        nxt = min(items, key=lambda r: r["deadline"]) if items else None
        out.append(
            ClientRisk(
                client_id=cid,
                name=str(directory.get(cid, {}).get("name") or cid),
                overdue=sum(1 for r in items if r["seconds_left"] < 0),
                next_deadline=None if nxt is None else nxt["deadline"],
                next_seconds_left=None if nxt is None else float(nxt["seconds_left"]),
                trust_level=str(trust.get(cid, {}).get("trust_level") or START_LEVEL),
                breaches_week=int(week.get(cid, {}).get("breached") or 0),
            )
        )
    return riskiest_first(out)


def _clients_table(rows: dict[str, list[Row]], view: View, keep: Any) -> str:
    words = view.words
    directory = _by_client(rows["dashboard_clients"])
    attainment = _by_client(rows["client_attainment"])
    phone = _by_client(rows["dashboard_phone"])
    open_count: dict[str, int] = defaultdict(int)
    for r in rows["open_obligations"]:
        open_count[str(r["client_id"])] += 1
    every = set(directory) | set(attainment) | set(_by_client(rows["dashboard_trust_levels"]))
    ids = sorted(cid for cid in every | set(open_count) if keep({"client_id": cid}))
    head = (
        "".join(
            f"<th>{escape(words(k))}</th>"
            for k in (
                "client",
                "owner",
                "overdue_n",
                "next_deadline",
                "trust",
                "breaches_week",
                "attainment",
                "opened",
                "met",
                "met_late",
                "breached",
                "open_now",
                "answer_rate",
            )
        )
        + "<th>p50</th><th>p90</th>"
    )
    lines = []
    for rank, risk in enumerate(client_risks(rows, ids), start=1):
        cid = risk.client_id
        d = directory.get(cid, {})
        a = attainment.get(cid, {})
        level = risk.trust_level
        nxt = (
            deadline_span(
                view,
                risk.next_deadline,
                risk.next_seconds_left,
                metric="next_deadline",
                client=cid,
                value=raw(risk.next_seconds_left),
            )
            if risk.next_deadline is not None
            else "–"
        )
        lines.append(
            f"<tr data-client='{escape(cid)}' data-rank='{rank}'>"
            f"<td>{client_link(view, cid, risk.name)}</td>"
            f"<td>{view.person(d.get('owner'))}</td>"
            + cell(str(risk.overdue), "overdue", risk.overdue, cid)
            + f"<td class='n'>{nxt}</td>"
            f"<td class='lvl-{escape(level)}' data-metric='trust_level' data-client='{escape(cid)}'"
            f" data-value='{escape(level)}'>{escape(words.trust(level))}</td>"
            + cell(str(risk.breaches_week), "breaches_week", risk.breaches_week, cid)
            + cell(percent(a.get("attainment")), "attainment", a.get("attainment"), cid)
            + "".join(
                cell(str(a.get(k, 0)), k, a.get(k, 0), cid)
                for k in ("opened", "met", "met_late", "breached")
            )
            + cell(str(open_count.get(cid, 0)), "open_now", open_count.get(cid, 0), cid)
            + cell(
                percent(phone.get(cid, {}).get("answer_rate")),
                "answer_rate",
                phone.get(cid, {}).get("answer_rate"),
                cid,
            )
            + cell(_dur(a.get("p50_business_seconds")), "p50", a.get("p50_business_seconds"), cid)
            + cell(_dur(a.get("p90_business_seconds")), "p90", a.get("p90_business_seconds"), cid)
            + "</tr>"
        )
    return (
        f"<h2>{escape(words('clients'))}</h2><table id='clients'><tr>{head}</tr>"
        f"{''.join(lines)}</table>"
    )


def _dur(seconds: float | None) -> str:
    return "–" if seconds is None else duration(seconds)


def _open_table(rows: list[Row], view: View) -> str:
    words = view.words
    zone = escape(view.clock.abbreviation(view.window.now))
    head = (
        "".join(
            f"<th>{escape(words(k))}</th>"
            for k in ("client", "owner", "kind", "channel", "status", "opened")
        )
        + f"<th>{escape(words('deadline'))} ({zone})</th>"
    )
    lines = []
    for r in rows:
        oid = str(r["obligation_id"])
        lines.append(
            f"<tr data-obligation='{escape(oid)}'>"
            f"<td>{client_link(view, str(r['client_id']), r['client_name'])}</td>"
            f"<td>{view.person(r['owner'])}</td>"
            f"<td data-kind='{escape(str(r['kind']))}'>{escape(words.kind(r['kind']))}</td>"
            f"<td>{escape(words.channel(r['channel']))}</td>"
            f"<td>{escape(words.status(r['status']))}</td>"
            f"<td>{escape(view.clock.short(r['opened_at']))}</td>"
            f"<td class='n' data-metric='seconds_left' data-value='{raw(r['seconds_left'])}'>"
            f"{deadline_span(view, r['deadline'], r['seconds_left'], obligation=oid)}</td></tr>"
        )
    return (
        f"<h2>{escape(words('open_obligations'))} ({len(rows)})</h2>"
        f"<table id='open'><tr>{head}</tr>{''.join(lines)}</table>"
    )


def trend(rows: list[Row], view: View) -> str:
    """Met / met late / breached bars per local day obligations fell due; attainment as a line
    only on days with at least ``MIN_DUE`` obligations (the others are marked)."""
    words = view.words
    by_day = {r["day"]: r for r in rows}
    days = view.window.local_days()

    def count(day: date, key: str) -> float:
        return float(by_day[day][key]) if day in by_day else 0.0

    graded = [count(d, "due") - count(d, "waived") for d in days]
    few = [0 < g < MIN_DUE for g in graded]
    line = [
        by_day[d]["attainment"] if d in by_day and g >= MIN_DUE else None
        for d, g in zip(days, graded, strict=True)
    ]
    svg = bars_and_line(
        [str(d) for d in days],
        [
            Series(words("met"), [count(d, "met") for d in days], PALETTE["met"]),
            Series(words("met_late"), [count(d, "met_late") for d in days], PALETTE["met_late"]),
            Series(words("breached"), [count(d, "breached") for d in days], PALETTE["breached"]),
        ],
        Series(words("attainment"), line, PALETTE["attainment"]),
        title=words("trend_title"),
        marked=few,
        marked_label=f"{words('few')} (< {MIN_DUE})",
    )
    cells = "".join(
        f"<tr data-day='{r['day']}'><td>{r['day']}</td>"
        + "".join(
            cell(str(r[k]), f"due_{k}", r[k], str(r["day"]))
            for k in ("due", "met", "met_late", "breached")
        )
        + cell(
            percent(r["attainment"]) if r["due"] - r["waived"] >= MIN_DUE else f"{words('few')}",
            "due_attainment",
            r["attainment"],
            str(r["day"]),
        )
        + "</tr>"
        for r in rows
    )
    totals = {k: sum(int(r[k]) for r in rows) for k in ("due", "met", "met_late", "breached")}
    summary = " · ".join(
        f"<span data-metric='trend_{k}' data-value='{v}'>{escape(words(k))}: {v}</span>"
        for k, v in totals.items()
    )
    head = "".join(
        f"<th>{escape(h)}</th>"
        for h in (
            words("day"),
            words("due"),
            words("met"),
            words("met_late"),
            words("breached"),
            words("attainment"),
        )
    )
    return (
        f"{svg}<p class='meta'>{summary}</p>"
        f"<details><summary>{escape(words('numbers'))}</summary><table id='trend'>"
        f"<tr>{head}</tr>{cells}</table></details>"
    )


def _fraction(value: float | None) -> str:
    return "" if value is None else f" {value:.0%}"


def _alerts(rows: list[Row], view: View) -> str:
    words = view.words
    zone = escape(view.clock.abbreviation(view.window.now))
    head = (
        f"<tr><th>{words('at')} ({zone})</th><th>{words('kind')}</th><th>{words('client')}</th>"
        f"<th>{words('owner')}</th><th>{words('now_status')}</th></tr>"
    )
    lines = [
        f"<tr data-metric='alert' data-value='{escape(str(r['kind']))}'>"
        f"<td>{escape(view.clock.short(r['at']))}</td>"
        f"<td class='{'overdue' if r['kind'] == 'breached' else 'soon'}'>"
        f"{escape(words.fact(r['kind']))}{_fraction(r['warning_fraction'])}</td>"
        f"<td>{client_link(view, str(r['client_id']), r['client_name'])}</td>"
        f"<td>{view.person(r['owner'])}</td>"
        f"<td>{escape(words.status(r['status']))}</td></tr>"
        for r in rows[:25]
    ]
    return f"<table id='alerts'>{head}{''.join(lines)}</table>"


def _owners(rows: list[Row], view: View) -> str:
    words = view.words
    head = (
        f"<tr><th>{words('owner')}</th><th>{words('breaches')}</th>"
        f"<th>{words('clients_breached')}</th><th>{words('attainment')}</th></tr>"
    )
    lines = []
    for r in rows:
        owner = str(r["owner"] or "")
        name = (
            f"<a href='{escape(view.query(owner=owner))}'>{view.person(owner)}</a>"
            if owner
            else escape(words("unassigned"))
        )
        lines.append(
            f"<tr><td>{name}</td>"
            + cell(str(r["breaches"]), "owner_breaches", r["breaches"], owner)
            + cell(str(r["clients_breached"]), "owner_clients", r["clients_breached"], owner)
            + cell(percent(r["attainment"]), "owner_attainment", r["attainment"], owner)
            + "</tr>"
        )
    return f"<table id='owners'>{head}{''.join(lines)}</table>"


def _silence(rows: list[Row], view: View) -> str:
    words = view.words
    if not rows:
        return f"<p class='meta'>{escape(words('silence_none'))}</p>"
    zone = escape(view.clock.abbreviation(view.window.now))
    head = (
        f"<tr><th>{words('client')}</th><th>{words('owner')}</th>"
        f"<th>{words('silence_since')} ({zone})</th><th>{words('days')}</th></tr>"
    )
    lines = [
        f"<tr><td>{client_link(view, str(r['client_id']), r['client_name'])}</td>"
        f"<td>{view.person(r['owner'])}</td>"
        f"<td>{escape(view.clock.short(r['last_silence_at']))}</td>"
        + cell(
            _number(r["days_since_outbound"], ".1f"),
            "silence_days",
            r["days_since_outbound"],
            str(r["client_id"]),
        )
        + "</tr>"
        for r in rows
    ]
    return f"<table id='silence'>{head}{''.join(lines)}</table>"


def _name(directory: dict[str, Row], client_id: str) -> str:
    return str(directory.get(client_id, {}).get("name") or client_id)


def _mix(rows: list[Row], directory: dict[str, Row], view: View) -> str:
    words = view.words
    grouped: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for r in rows:
        grouped[_name(directory, str(r["client_id"]))].append(
            (str(r["channel"]), float(r["total"]))
        )
    cells = "".join(
        f"<tr><td>{client_link(view, str(r['client_id']), _name(directory, str(r['client_id'])))}"
        f"</td><td>{escape(words.channel(r['channel']))}</td>"
        + cell(str(r["total"]), f"mix_{r['channel']}", r["total"], str(r["client_id"]))
        + "</tr>"
        for r in rows
    )
    svg = stacked_share(sorted(grouped.items()), title=words("mix_title"))
    return (
        f"{svg}<details><summary>{escape(words('numbers'))}</summary>"
        f"<table id='mix'>{cells}</table></details>"
    )


def _phone(rows: list[Row], directory: dict[str, Row], view: View) -> str:
    words = view.words
    head = (
        "<tr>"
        + "".join(
            f"<th>{escape(words(k))}</th>"
            for k in (
                "client",
                "calls",
                "answered",
                "abandoned",
                "missed",
                "answer_rate",
                "abandon_rate",
                "wait_p50",
                "wait_p90",
            )
        )
        + "</tr>"
    )
    return (
        f"<table id='phone'>{head}{''.join(_phone_row(r, directory, view) for r in rows)}</table>"
    )


def _phone_row(r: Row, directory: dict[str, Row], view: View) -> str:
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
        cell(text, metric, value, client) for text, metric, value in counts + rates + waits
    )
    return f"<tr><td>{client_link(view, client, _name(directory, client))}</td>{cells}</tr>"
