"""The Grafana dashboard and the Prometheus alert rules in contrib/ load, and ask only for
metrics a live server exposes.

Grafana is not installable here: the dashboard's structure is checked against what Grafana's
import needs (panels with unique ids on a 24-column grid, Prometheus targets, the variables
they use). Every PromQL expression, of the dashboard and of the rules, is parsed by a PromQL
parser (``promql-parser``) and by ``promtool`` (Prometheus's own), and each metric and label
name it selects must be in a real ``/metrics`` scrape of a server that served phones over
HTTP and TFTP and answered REST calls.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_settings, start_server
from tests.provisioning.test_http_pipeline import UA
from tests.provisioning.tftp_client import tftp_get

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "contrib" / "grafana" / "provisor-dashboard.json"
RULES = ROOT / "contrib" / "prometheus" / "provisor-alerts.yml"
RULES_TEST = Path(__file__).parent / "data" / "provisor-alerts.test.yml"
#: series Prometheus itself adds to every target
SYNTHETIC = {"up": set[str](), "scrape_duration_seconds": set[str]()}
TARGET_LABELS = {"job", "instance"}
#: Grafana's variables, as Grafana substitutes them before sending a query
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$job": "provisor", "$instance": ".*"}
PANEL_TYPES = {"row", "timeseries", "stat", "gauge", "bargauge", "table", "text", "heatmap"}


def _dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def _panels(dash: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in dash["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))  # a collapsed row keeps its panels inside
    return out


def _dashboard_exprs(dash: dict[str, Any]) -> list[str]:
    exprs = []
    for panel in _panels(dash):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(name, value)
            assert "$" not in expr, f"unknown Grafana variable in {target['expr']}"
            exprs.append(expr)
    return exprs


def _rule_exprs() -> list[str]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule["expr"] for group in doc["groups"] for rule in group["rules"]]


def test_dashboard_structure_is_importable() -> None:
    dash = _dashboard()
    assert dash["title"] and re.fullmatch(r"[\w-]{1,40}", dash["uid"])
    assert isinstance(dash["schemaVersion"], int) and dash["schemaVersion"] >= 36
    assert {"from", "to"} <= set(dash["time"])
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = _panels(dash)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids)
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        assert panel["type"] in PANEL_TYPES, panel["type"]
        assert panel["title"]
        grid = panel["gridPos"]
        assert grid["w"] >= 1 and grid["h"] >= 1 and grid["x"] >= 0 and grid["y"] >= 0
        assert grid["x"] + grid["w"] <= 24, panel["title"]  # Grafana's grid is 24 wide
        mine = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        targets = panel["targets"]
        assert targets and len({t["refId"] for t in targets}) == len(targets)
        for target in targets:
            assert target["expr"].strip()
            used = set(re.findall(r"\$(\w+)", target["expr"] + target.get("legendFormat", "")))
            assert used <= set(variables) | {"__rate_interval"}, used
    # the panels the issue asks for are there, each on its metric
    exprs = "\n".join(_dashboard_exprs(dash))
    for needed in (
        "sum by (status) (rate(provisor_phone_requests_total",
        "sum by (plugin) (rate(provisor_phone_requests_total",
        "sum by (cache) (rate(provisor_phone_requests_total",
        "provisor_render_seconds_bucket",
        "provisor_devices_auto_created_total",
        "provisor_phone_refusals_total",
        "provisor_phone_bans_total",
        "provisor_tftp_transfers_total",
        "provisor_tftp_bytes_total",
        "provisor_rest_requests_total",
        "provisor_database_query_seconds_bucket",
        "provisor_auth_seconds_bucket",
        "provisor_operations_total",
    ):
        assert needed in exprs, needed


def _selected(expr: str) -> tuple[set[str], set[str]]:
    """Metric names and label names an expression selects or groups by."""
    names: set[str] = set()
    labels: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"a selector without a metric name in {expr}"
            names.add(node.name)
            labels.update(m.name for m in node.matchers.matchers)
        elif isinstance(node, promql_parser.MatrixSelector):
            visit(node.vector_selector)
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            labels.update(node.modifier.labels)

    promql_parser.walk(promql_parser.parse(expr), visit)
    assert names, expr
    return names, labels


async def _exposed(tmp_path: Path, database_url: str) -> dict[str, set[str]]:
    """Every sample name of a live server's /metrics, with the label names seen on it; the
    server first serves phones over HTTP and TFTP, answers REST calls and runs an operation,
    so that every labelled family has samples to read its labels from."""
    srv = await start_server(
        make_settings(tmp_path, database_url, **{"provisioning.tftp_enabled": True})
    )
    try:
        r = await srv.phone.get("/tp/common.cfg", headers={"User-Agent": UA})
        assert r.status_code == 200
        data = await tftp_get("127.0.0.1", srv.running.ports["tftp"], "001122334455.cfg")
        assert data
        [device] = (await srv.api.get("/0.2/dev_mgr/devices")).json()["devices"]
        # a long operation (it fails: no synchronize service in the tests)
        r = await srv.api.post("/0.2/dev_mgr/synchronize", json={"id": device["id"]})
        assert r.status_code == 201, r.text
        assert "fail" in (await srv.api.get(r.headers["location"])).json()["status"]
        async with httpx.AsyncClient(base_url=srv.rest_url, timeout=10) as anonymous:
            text = (await anonymous.get("/metrics")).text
    finally:
        await srv.close()
    exposed: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        # a family without samples yet still names its series
        kinds = {
            "counter": ["_total"],
            "histogram": ["_bucket", "_count", "_sum"],
            "summary": ["", "_count", "_sum"],
        }.get(family.type, [""])
        for suffix in kinds:
            exposed.setdefault(family.name + suffix, set())
        for sample in family.samples:
            exposed.setdefault(sample.name, set()).update(sample.labels)
    return exposed


async def test_every_expression_names_exposed_metrics(tmp_path: Path, database_url: str) -> None:
    exposed = {**SYNTHETIC, **await _exposed(tmp_path, database_url)}
    assert "provisor_phone_requests_total" in exposed and "provisor_auth_seconds_bucket" in exposed
    exprs = _dashboard_exprs(_dashboard()) + _rule_exprs()
    assert len(exprs) > 30
    for expr in exprs:
        names, labels = _selected(expr)
        unknown = names - set(exposed)
        assert not unknown, f"{expr}: no such metric on /metrics: {sorted(unknown)}"
        known_labels = TARGET_LABELS.union(*(exposed[n] for n in names))
        assert labels <= known_labels, f"{expr}: no such label {sorted(labels - known_labels)}"


def test_an_unknown_metric_is_caught() -> None:
    """The check above can fail: a misspelt name is not among the exposed ones."""
    names, labels = _selected('sum by (statu) (rate(provisor_phone_request_total{job="x"}[5m]))')
    assert names == {"provisor_phone_request_total"} and labels == {"statu", "job"}


def _promtool() -> str:
    found = shutil.which("promtool")
    local = ROOT / ".venv" / "opt" / "prometheus" / "usr" / "bin" / "promtool"
    if found is None and local.is_file():
        found = str(local)
    if found is None:
        pytest.skip("promtool not installed (scripts/test.sh extracts Debian's prometheus)")
    return found


def test_promtool_accepts_rules_and_dashboard_queries(tmp_path: Path) -> None:
    promtool = _promtool()
    checked = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(_rule_exprs())} rules found" in checked.stdout
    # every dashboard query as a recording rule: Prometheus's own parser reads each one
    queries = tmp_path / "dashboard-queries.yml"
    rules = [
        {"record": f"provisor:dashboard_query_{i}", "expr": e}
        for i, e in enumerate(_dashboard_exprs(_dashboard()))
    ]
    queries.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run(
        [promtool, "check", "rules", str(queries)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # and the alerts fire on what they watch (promtool's rule unit tests)
    unit = tmp_path / "alerts.test.yml"
    unit.write_text(RULES_TEST.read_text().replace("RULES", str(RULES)))
    tested = subprocess.run(
        [promtool, "test", "rules", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # a broken query is refused: the check can fail
    queries.write_text(
        yaml.safe_dump({"groups": [{"name": "d", "rules": [{"record": "a:b", "expr": "sum(("}]}]})
    )
    refused = subprocess.run(
        [promtool, "check", "rules", str(queries)], capture_output=True, text=True, timeout=60
    )
    assert refused.returncode != 0
