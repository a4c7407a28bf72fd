"""docs/metrics.md is generated from lepton_core.metrics_names and must not drift from it."""

from __future__ import annotations

from pathlib import Path

from lepton_core import metrics_names as mn

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def test_metrics_page_matches_the_registry() -> None:
    assert DOC.read_text(encoding="utf-8") == mn.render_markdown(), (
        "docs/metrics.md is stale: run `python -m lepton_core.metrics_names --write`"
    )


def test_names_follow_prometheus_conventions() -> None:
    names = [m.name for m in mn.all_metrics()]
    assert len(names) == len(set(names))
    for m in mn.all_metrics():
        assert m.kind in ("counter", "gauge", "histogram"), m.name
        assert (m.kind == "counter") == m.name.endswith("_total"), m.name
        assert m.name.startswith(("lepton_", "node_")), m.name  # node_*: OpenCost's own names
        assert m.help.endswith("."), m.name
