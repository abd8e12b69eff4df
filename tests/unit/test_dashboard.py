"""The Grafana dashboard in deploy/ queries only metrics the services export."""

import json
import pathlib
import re

from prometheus_client import REGISTRY

import services.common.metrics  # noqa: F401  (registers the metrics)

DASHBOARD = pathlib.Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"


def test_every_query_names_an_exported_metric():
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    exported = {
        family.name + suffix
        for family in REGISTRY.collect()
        for suffix in suffixes.get(family.type, ())
    }
    panels = json.loads(DASHBOARD.read_text())["panels"]
    queried = {name for p in panels for t in p["targets"]
               for name in re.findall(r"\bgongji_[a-z_]+", t["expr"])}  # fmt: skip
    assert queried and queried <= exported, queried - exported
