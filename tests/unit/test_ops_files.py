"""The ops files are valid and chart metrics the code really exports."""

import json
import re
from pathlib import Path

import yaml

from app import metrics

ROOT = Path(__file__).resolve().parents[2]


def test_the_grafana_dashboard_only_charts_metrics_that_exist() -> None:
    dashboard = json.loads((ROOT / "ops" / "grafana-dashboard.json").read_text())
    exported = {m._name for m in vars(metrics).values() if hasattr(m, "_name")}
    charted = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for word in re.findall(r"[a-z]+(?:_[a-z]+)+", target["expr"]):
                if word != "histogram_quantile":
                    charted.add(re.sub(r"_(total|bucket|count|sum)$", "", word))
    assert charted <= exported, charted - exported
    assert len(charted) >= 8


def test_the_prometheus_config_scrapes_the_api_metrics() -> None:
    config = yaml.safe_load((ROOT / "ops" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["wallet-api"]["metrics_path"] == "/metrics"
