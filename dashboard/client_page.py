"""One client's page (``/clients/<id>``): open items, the trust history with the reason of each
change, response times against the client's own target, the due-day trend, the client's observed
standard (the wait at which it chases us, with the chases as evidence) and a timeline of
interactions, obligations and alerts. Rows come from ``dashboard.data.CLIENT_QUERIES``."""

from __future__ import annotations

from html import escape
from typing import Any

from dashboard.charts import PALETTE, Series, bars_and_line
from dashboard.clock import duration
from dashboard.data import Row
from dashboard.render import (
    View,
    as_of,
    cell,
    deadline_span,
    page,
    percent,
    raw,
    status_banner,
    trend,
)
from dashboard.risk import START_LEVEL

RATIO_BUCKETS: tuple[tuple[float | None, str], ...] = (
    (0.25, "≤ 25%"),
    (0.5, "≤ 50%"),
    (0.75, "≤ 75%"),
    (1.0, "≤ 100%"),
    (1.5, "≤ 150%"),
    (2.0, "≤ 200%"),
    (None, "> 200%"),
)
"""Answer time as a share of the client's own target: each bucket holds ratios up to its bound."""


def bucket_of(ratio: float) -> int:
    """Index in ``RATIO_BUCKETS`` of a business-time / target ratio."""
    for i, (bound, _) in enumerate(RATIO_BUCKETS):
        if bound is not None and ratio <= bound:
            return i
    return len(RATIO_BUCKETS) - 1


def render_client(rows: dict[str, list[Row]], view: View, client_id: str) -> str:
    """The page of ``client_id``."""
    words = view.words
    directory = {str(r["client_id"]): r for r in rows["dashboard_clients"]}
    info = directory.get(client_id, {})
    name = str(info.get("name") or client_id)
    owner = str(info.get("owner") or "")
    trust = {str(r["client_id"]): r for r in rows["dashboard_trust_levels"]}
    level = str(trust.get(client_id, {}).get("trust_level") or START_LEVEL)
    attainment = {str(r["client_id"]): r for r in rows["client_attainment"]}.get(client_id, {})
    owner_link = (
        f"<a href='{escape(view.query(owner=owner))}'>{view.person(owner)}</a>" if owner else "–"
    )
    body = [
        f"<p class='meta'><a href='/{escape(view.query())}'>← {escape(words('back'))}</a></p>",
        f"<h1 data-client='{escape(client_id)}'>{escape(name)}</h1>",
        as_of(view),
        status_banner(view, rows["dashboard_freshness"]),
        f"<p>{words('owner')}: {owner_link} · {words('trust')}: "
        f"<span class='lvl-{escape(level)}' data-metric='trust_level' data-client="
        f"'{escape(client_id)}' data-value='{escape(level)}'>{escape(words.trust(level))}</span>"
        f" · {words('attainment')}: "
        f"<span data-metric='attainment' data-value='{raw(attainment.get('attainment'))}'>"
        f"{percent(attainment.get('attainment'))}</span>"
        f" · {words('policy')}: {escape(str(info.get('policy_id') or '–'))}"
        f" · {words('calendar')}: {escape(str(info.get('calendar_id') or '–'))}</p>",
        _open_items(rows["client_obligations"], view),
        "<div class='grid'>",
        _section(words("response_times"), _response_times(rows["client_response_times"], view)),
        _section(words("trend"), trend(rows["dashboard_due_trend"], view)),
        "</div>",
        _section(
            words("observed_standard"),
            _suggestion(rows["client_target_suggestion"], view)
            + _standard(rows["client_chase_standard"], rows["client_chases"], view),
        ),
        _section(words("trust_history"), _trust_history(rows["trust_history"], view)),
        _section(words("timeline"), _timeline(rows["client_timeline"], view)),
    ]
    return page(view, f"{name} — Shinrai", body)


def render_unknown(view: View, client_id: str) -> str:
    """The page for a client id the directory and the facts do not know."""
    words = view.words
    return page(
        view,
        words("unknown_client"),
        [
            f"<p class='meta'><a href='/{escape(view.query())}'>← {escape(words('back'))}</a></p>",
            f"<h1>{escape(words('unknown_client'))}: {escape(client_id)}</h1>",
        ],
        refresh=None,
    )


def _section(title: str, inner: str) -> str:
    return f"<section class='card'><h2>{escape(title)}</h2>{inner}</section>"


def _open_items(rows: list[Row], view: View) -> str:
    words = view.words
    owed = [r for r in rows if r["status"] in ("open", "breached")]
    zone = escape(view.clock.abbreviation(view.window.now))
    if not owed:
        return (
            f"<h2>{escape(words('open_items'))} (0)</h2><p class='meta' id='open-items'>"
            f"{escape(words('none'))}</p>"
        )
    head = (
        f"<tr><th>{words('kind')}</th><th>{words('channel')}</th><th>{words('status')}</th>"
        f"<th>{words('opened')} ({zone})</th><th>{words('deadline')} ({zone})</th></tr>"
    )
    lines = [
        f"<tr data-obligation='{escape(str(r['obligation_id']))}'>"
        f"<td>{escape(words.kind(r['kind']))}</td><td>{escape(words.channel(r['channel']))}</td>"
        f"<td>{escape(words.status(r['status']))}</td>"
        f"<td>{escape(view.clock.short(r['opened_at']))}</td>"
        f"<td class='n' data-metric='open_item_seconds_left' data-value='{raw(r['seconds_left'])}'>"
        f"{deadline_span(view, r['deadline'], r['seconds_left'])}</td></tr>"
        for r in owed
    ]
    return (
        f"<h2>{escape(words('open_items'))} ({len(owed)})</h2>"
        f"<table id='open-items'>{head}{''.join(lines)}</table>"
    )


def _response_times(rows: list[Row], view: View) -> str:
    words = view.words
    counts = [0] * len(RATIO_BUCKETS)
    for r in rows:
        if r["ratio"] is not None:
            counts[bucket_of(float(r["ratio"]))] += 1
    labels = [label for _, label in RATIO_BUCKETS]
    colors = [PALETTE["met"]] * 4 + [PALETTE["breached"]] * 3
    series = [
        Series(label, [float(counts[i]) if j == i else 0.0 for j in range(len(labels))], colors[i])
        for i, label in enumerate(labels)
    ]
    svg = bars_and_line(
        labels,
        series,
        title=f"{words('answers')} / {words('of_target')}",
        width=460,
        height=200,
        label_from=0,
        legend=False,
    )
    cells = "".join(
        f"<tr><td>{escape(label)}</td>"
        + cell(str(counts[i]), "response_bucket", counts[i], label)
        + "</tr>"
        for i, label in enumerate(labels)
    )
    within = sum(counts[:4])
    total = sum(counts)
    share = None if total == 0 else within / total
    return (
        f"{svg}<p class='meta'>{words('answers')}: <span data-metric='answers' "
        f"data-value='{total}'>{total}</span> · ≤ 100% {words('of_target')}: "
        f"<span data-metric='within_target_share' data-value='{raw(share)}'>{percent(share)}"
        f"</span></p><table id='response-times'><tr><th>{words('of_target')}</th>"
        f"<th>{words('answers')}</th></tr>{cells}</table>"
    )


def _trust_history(rows: list[Row], view: View) -> str:
    words = view.words
    if not rows:
        return f"<p class='meta' id='trust-history'>{escape(words('no_trust_change'))}</p>"
    zone = escape(view.clock.abbreviation(view.window.now))
    head = (
        f"<tr><th>{words('at')} ({zone})</th><th>{words('change')}</th>"
        f"<th>{words('reason')}</th></tr>"
    )
    lines = [
        f"<tr data-metric='trust_change' data-value='{escape(str(r['trust_to']))}'>"
        f"<td>{escape(view.clock.stamp(r['at']))}</td>"
        f"<td class='lvl-{escape(str(r['trust_to']))}'>{escape(words.trust(str(r['trust_from'])))}"
        f" → {escape(words.trust(str(r['trust_to'])))}</td>"
        f"<td>{escape(str(r['reason'] or '–'))}</td></tr>"
        for r in reversed(rows)  # newest first, like the timeline
    ]
    return f"<table id='trust-history'>{head}{''.join(lines)}</table>"


def _timeline(rows: list[Row], view: View) -> str:
    words = view.words
    zone = escape(view.clock.abbreviation(view.window.now))
    head = (
        f"<tr><th>{words('at')} ({zone})</th><th>{words('what')}</th>"
        f"<th>{words('channel')}</th><th>{words('kind')}</th></tr>"
    )
    lines = []
    for r in rows:
        if r["source"] == "interaction":
            what = f"{words('interaction')} · {words(str(r['direction']))}"
            if r["staff"]:
                what += f" · {view.people.get(str(r['staff']).lower(), r['staff'])}"
            kind = words.event(r["kind"])
            cls = ""
        else:
            what = words.fact(r["kind"])
            if r["kind"] == "fulfilled":
                what += f" · {words.status(r['outcome'])}"
            elif r["kind"] == "warning" and r["warning_fraction"] is not None:
                what += f" {r['warning_fraction']:.0%}"
            elif r["kind"] == "trust_changed":
                what += f" → {words.trust(str(r['trust_to']))}"
            kind = words.kind(r["obligation_kind"]) if r["obligation_kind"] else ""
            cls = (
                " class='overdue'"
                if r["kind"] == "breached"
                else " class='soon'"
                if r["kind"] == "warning"
                else ""
            )
        lines.append(
            f"<tr data-source='{escape(str(r['source']))}' data-kind='{escape(str(r['kind']))}'>"
            f"<td>{escape(view.clock.short(r['at']))}</td><td{cls}>{escape(what)}</td>"
            f"<td>{escape(words.channel(r['channel']) if r['channel'] else '')}</td>"
            f"<td>{escape(kind)}</td></tr>"
        )
    return (
        f"<p class='meta'>{len(rows)} (≤ 300)</p>"
        f"<table id='timeline'>{head}{''.join(lines)}</table>"
    )


def _standard(standard: list[Row], chases: list[Row], view: View) -> str:
    """The observed standard in one line, beside our target, and the chases it comes from."""
    words = view.words
    if not standard:
        return f"<p class='meta' id='observed-standard'>{escape(words('no_chases'))}</p>"
    r = standard[0]

    def span(metric: str, seconds: Any) -> str:
        shown = "–" if seconds is None else duration(float(seconds))
        return f"<span data-metric='{metric}' data-value='{raw(seconds)}'>{escape(shown)}</span>"

    line = (
        f"<p id='observed-standard'>{words('chases')}: "
        f"<span data-metric='chases' data-value='{raw(r['chases'])}'>{r['chases']}</span> "
        f"({words('before_deadline')}: {r['before_deadline']}) · {words('median')} "
        f"{span('chase_median_wait_seconds', r['median_wait_seconds'])} "
        f"({words('business_time')} "
        f"{span('chase_median_wait_business_seconds', r['median_wait_business_seconds'])})"
        f" · {words('p10')} {span('chase_p10_wait_seconds', r['p10_wait_seconds'])}"
        f" · {words('our_target')} ({words('business_time')}) "
        f"{span('chase_target_business_seconds', r['median_target_business_seconds'])}</p>"
    )
    zone = escape(view.clock.abbreviation(view.window.now))
    head = (
        f"<tr><th>{words('at')} ({zone})</th><th>{words('channel')}</th>"
        f"<th>{words('kind')}</th><th>{words('waited')}</th></tr>"
    )
    lines = [
        f"<tr data-obligation='{escape(str(c['obligation_id']))}' "
        f"data-chase='{escape(str(c['chase_kind']))}'>"
        f"<td>{escape(view.clock.short(c['at']))}</td>"
        f"<td>{escape(words.channel(c['channel']))}</td>"
        f"<td>{escape(words.kind(c['obligation_kind']))}</td>"
        f"<td{' class=overdue' if c['deadline_passed'] else ''}>"
        f"{escape(duration(float(c['waited_calendar_seconds'] or 0)))}"
        f"{' · ' + escape(words('deadline_passed')) if c['deadline_passed'] else ''}</td></tr>"
        for c in chases
    ]
    return f"{line}<table id='chases'>{head}{''.join(lines)}</table>"


def _suggestion(rows: list[Row], view: View) -> str:
    """The target the client's chases suggest (engine.chase), for the owner to accept."""
    if not rows:
        return ""
    words = view.words
    r = rows[0]
    seconds = r["suggested_business_seconds"]
    shown = "–" if seconds is None else duration(float(seconds))
    return (
        f"<p id='target-suggestion'><b>{escape(words('suggested_target'))}: "
        f"<span data-metric='suggested_target_business_seconds' data-value='{raw(seconds)}'>"
        f"{escape(shown)}</span> ({escape(words('business_time'))})</b> · "
        f"{escape(str(r['reason'] or ''))} · <span class='meta'>"
        f"{escape(words('suggestion_note'))}</span></p>"
    )
