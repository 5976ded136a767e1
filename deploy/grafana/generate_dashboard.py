"""Generate deploy/grafana/dashboards/shinrai.json from the named queries (one panel each).

Grafana runs the SAME SQL files as the built-in dashboard; only the ClickHouse parameter
placeholders are replaced by Grafana macros and variables (the plugin does not bind ClickHouse
query parameters):

    {since:Date}             -> toDate($__fromTime)
    {until:Date}             -> toDate($__toTime) + 1        (exclusive end day)
    {since:DateTime64(...)}  -> toDateTime64($__fromTime, 6, 'UTC')
    {until:DateTime64(...)}  -> toDateTime64($__toTime, 6, 'UTC')
    {now:DateTime64(...)}    -> toDateTime64($__toTime, 6, 'UTC')   (the end of the time range)
    {client_id:String}       -> '${client_id}'               (a dashboard variable)

Usage: python deploy/grafana/generate_dashboard.py [--check]  (--check: exit 1 when stale).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
# The named queries ship inside the package (one copy, read by the dashboard and the CLI too).
QUERIES = HERE.parents[1] / "sinks" / "clickhouse" / "sql" / "queries"
OUTPUT = HERE / "dashboards" / "shinrai.json"
DATASOURCE = {"type": "grafana-clickhouse-datasource", "uid": "shinrai-clickhouse"}
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):([^}]+)\}")

# Panel layout and kind per query; queries not listed get a table panel at the end.
PANELS: dict[str, dict[str, Any]] = {
    "dashboard_daily_trend": {"title": "Daily answers and breaches", "type": "timeseries", "w": 24},
    "client_attainment": {"title": "Attainment and response time per client", "w": 24},
    "open_obligations": {"title": "Open obligations (time left at the end of the range)", "w": 24},
    "dashboard_recent_alerts": {"title": "Breaches and warnings", "w": 12},
    "breaches_by_owner": {"title": "Breaches by owner", "w": 12},
    "dashboard_trust_levels": {"title": "Trust level per client", "w": 12},
    "silence_list": {"title": "Silence: reach out before they ask", "w": 12},
    "channel_mix": {"title": "Channel mix", "w": 12},
    "dashboard_phone": {"title": "Phone: answer rate, abandonment, waits", "w": 12},
    "trust_history": {"title": "Trust history of ${client_id}", "w": 12},
    "dashboard_clients": {"title": "Clients", "w": 12},
    "dashboard_due_trend": {"title": "Outcomes by the day obligations fell due (${tz})", "w": 24},
    "client_obligations": {"title": "Obligations of ${client_id}", "w": 12},
    "client_response_times": {"title": "Answer times of ${client_id} vs its target", "w": 12},
    "client_timeline": {"title": "Timeline of ${client_id}", "w": 24},
    "dashboard_freshness": {"title": "Newest stored interaction and fact", "w": 12},
    "client_chase_standard": {"title": "Observed standard: waiting time at chase", "w": 12},
    "client_chases": {"title": "Chases of ${client_id}", "w": 12},
    "client_target_suggestion": {"title": "Target the chases of ${client_id} suggest", "w": 12},
}


def grafana_sql(sql: str) -> str:
    """The named query with its parameters replaced by Grafana macros (see module docstring)."""

    def replace(match: re.Match[str]) -> str:
        name, kind = match.group(1), match.group(2).strip()
        if kind == "Date":
            return {"since": "toDate($__fromTime)", "until": "(toDate($__toTime) + 1)"}[name]
        if kind.startswith("DateTime"):
            edge = "$__fromTime" if name == "since" else "$__toTime"
            return f"toDateTime64({edge}, 6, 'UTC')"
        if kind == "String":
            return "'${" + name + "}'"
        raise ValueError(f"no Grafana mapping for parameter {name}:{kind}")

    return _PARAM.sub(replace, sql)


def build() -> dict[str, Any]:
    """The dashboard JSON model."""
    names = sorted(p.stem for p in QUERIES.glob("*.sql"))
    order = [n for n in PANELS if n in names] + [n for n in names if n not in PANELS]
    panels: list[dict[str, Any]] = []
    x = y = 0
    for i, name in enumerate(order, start=1):
        spec = PANELS.get(name, {"title": name, "w": 12})
        width = int(spec["w"])
        if x + width > 24:
            x, y = 0, y + 9
        kind = spec.get("type", "table")
        sql = grafana_sql((QUERIES / f"{name}.sql").read_text("utf-8"))
        panels.append(
            {
                "id": i,
                "type": kind,
                "title": spec["title"],
                "description": f"Named query sinks/clickhouse/sql/queries/{name}.sql",
                "datasource": DATASOURCE,
                "gridPos": {"x": x, "y": y, "w": width, "h": 9},
                "targets": [
                    {
                        "refId": "A",
                        "datasource": DATASOURCE,
                        "editorType": "sql",
                        "queryType": "timeseries" if kind == "timeseries" else "table",
                        "format": 0 if kind == "timeseries" else 1,
                        "rawSql": sql,
                        "meta": {"namedQuery": name},
                    }
                ],
            }
        )
        x += width
        if x >= 24:
            x, y = 0, y + 9
    return {
        "uid": "shinrai-sla",
        "title": "Shinrai 信頼 — response SLAs",
        "tags": ["shinrai"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-30d", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "client_id",
                    "label": "client",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": "SELECT client_id FROM clients FINAL ORDER BY client_id",
                    "refresh": 1,
                },
                {
                    "name": "tz",
                    "label": "team time zone",
                    "type": "textbox",
                    "query": "Asia/Tokyo",
                    "current": {"text": "Asia/Tokyo", "value": "Asia/Tokyo"},
                },
                {
                    "name": "owner",
                    "label": "owner (empty: everyone)",
                    "type": "textbox",
                    "query": "",
                    "current": {"text": "", "value": ""},
                },
            ]
        },
        "panels": panels,
    }


def render() -> str:
    """The JSON text exactly as it is committed."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUTPUT.is_file() or OUTPUT.read_text("utf-8") != text:
            print(f"{OUTPUT} is stale: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text, "utf-8")
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
