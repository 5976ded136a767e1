"""Grafana provisioning: the dashboard JSON is generated from the named queries and is fresh."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from sinks.clickhouse.queries import QUERIES_DIR, names

pytestmark = pytest.mark.unit

GRAFANA = Path(__file__).resolve().parents[3] / "deploy" / "grafana"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_dashboard", GRAFANA / "generate_dashboard.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_dashboard_json_is_not_stale() -> None:
    committed = (GRAFANA / "dashboards" / "shinrai.json").read_text("utf-8")
    assert committed == _generator().render(), (
        "deploy/grafana/dashboards/shinrai.json is stale: "
        "run python deploy/grafana/generate_dashboard.py"
    )


def test_every_named_query_is_a_panel_with_only_grafana_placeholders() -> None:
    model = json.loads((GRAFANA / "dashboards" / "shinrai.json").read_text("utf-8"))
    by_name = {p["targets"][0]["meta"]["namedQuery"]: p for p in model["panels"]}
    assert sorted(by_name) == names()
    for name, panel in by_name.items():
        sql = panel["targets"][0]["rawSql"]
        assert not re.search(r"\{[a-z_]+:[A-Za-z]", sql), name  # no ClickHouse parameters left
        source = (QUERIES_DIR / f"{name}.sql").read_text(encoding="utf-8")
        # Same query: identical once both sides' placeholders are blanked out.
        blank_source = re.sub(r"\{[a-z_]+:[^}]+\}", "?", source)
        blank_grafana = re.sub(
            r"\(toDate\(\$__toTime\) \+ 1\)|toDate\(\$__fromTime\)|"
            r"toDateTime64\(\$__(?:from|to)Time, 6, 'UTC'\)|'\$\{[a-z_]+\}'",
            "?",
            sql,
        )
        assert blank_grafana == blank_source, name
        assert panel["datasource"]["uid"] == "shinrai-clickhouse"
    panels = [p["gridPos"] for p in model["panels"]]
    assert all(g["x"] >= 0 and g["x"] + g["w"] <= 24 for g in panels)


def test_placeholder_mapping() -> None:
    gen = _generator()
    sql = "a >= {since:Date} AND a < {until:Date} AND t <= {now:DateTime64(6, 'UTC')} AND c = {client_id:String}"
    assert gen.grafana_sql(sql) == (
        "a >= toDate($__fromTime) AND a < (toDate($__toTime) + 1) AND "
        "t <= toDateTime64($__toTime, 6, 'UTC') AND c = '${client_id}'"
    )
    with pytest.raises(ValueError, match="no Grafana mapping"):
        gen.grafana_sql("{x:UInt8}")


def test_provisioning_files() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "clickhouse.yaml").read_text())
    (source,) = ds["datasources"]
    assert source["type"] == "grafana-clickhouse-datasource"
    assert source["uid"] == "shinrai-clickhouse"
    assert source["secureJsonData"]["password"] == "${CLICKHOUSE_PASSWORD}"  # never in the file
    assert source["jsonData"]["defaultDatabase"] == "shinrai"
    boards = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "shinrai.yaml").read_text())
    (provider,) = boards["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/shinrai"
