"""A report's files under its folder: plots/*.png, report.json, report.html."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eval.report_html import render_html
from eval.report_plots import plot_diffs, plot_distributions, plot_means


def write_report(report: dict[str, Any], out_dir: Path) -> dict[str, str]:
    """Write plots/*.png, report.json and report.html under out_dir; return their paths."""
    out_dir = Path(out_dir)
    plots_dir = out_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    plots = {
        "means": plots_dir / "means.png",
        "diffs": plots_dir / "diffs.png",
        "distributions": plots_dir / "distributions.png",
    }
    plot_means(report, plots["means"])
    if len(report["arms"]) > 1:
        plot_diffs(report, plots["diffs"])
    else:
        plots.pop("diffs")
    plot_distributions(report, plots["distributions"])
    files = {
        "json": str(out_dir / "report.json"),
        "html": str(out_dir / "report.html"),
        "plots": {k: str(v) for k, v in plots.items()},
    }
    report["files"] = files
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    (out_dir / "report.html").write_text(render_html(report, plots), encoding="utf-8")
    return files
