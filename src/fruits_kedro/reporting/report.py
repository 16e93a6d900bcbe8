"""The run report: one self-contained HTML page, with the run's saved plots embedded as PNG."""

from __future__ import annotations

import base64
import datetime as dt
from typing import TYPE_CHECKING, Any

import jinja2
import numpy as np

if TYPE_CHECKING:
    import pandas as pd

TEMPLATE = "run_report.html.j2"
SLOWEST_NODES = 8
WORST_CLASSES = 10
# What the page shows, by catalog name: loaded from the run's outputs when the run ends.
INPUTS = (
    "image_counts",
    "pca_variance",
    "classification_metrics",
    "confusion_matrix",
    "accuracy_vs_k",
)
PLOTS = {
    "variance": "pca_variance_plot",
    "scatter": "pca_scatter_plot",
    "accuracy": "accuracy_vs_k_plot",
    "confusion": "confusion_matrix_plot",
}


def png_data_uri(png: bytes) -> str:
    """A PNG file's bytes as an inline ``data:image/png`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


def top_confusions(confusion: pd.DataFrame, n: int) -> list[dict[str, Any]]:
    """The ``n`` most frequent (true, predicted) mistakes."""
    counts = confusion.to_numpy().copy()
    np.fill_diagonal(counts, 0)
    order = np.argsort(-counts, axis=None, kind="stable")[:n]
    rows, cols = np.unravel_index(order, counts.shape)
    return [
        {"label": confusion.index[r], "predicted": confusion.columns[c], "count": int(counts[r, c])}
        for r, c in zip(rows, cols, strict=True)
        if counts[r, c] > 0
    ]


def render_report(
    outputs: dict[str, Any], plots: dict[str, bytes], run_metrics: dict[str, Any]
) -> str:
    """The HTML run report.

    Args:
        outputs: The run's outputs named in :data:`INPUTS`, by catalog name.
        plots: The saved PNG files, by the keys of :data:`PLOTS`, and the plots of the run
            itself (``node_times``, ``throughput``) when they were drawn.
        run_metrics: The finished run's metrics: wall time per node and throughput.
    """
    metrics = outputs["classification_metrics"]
    timings = run_metrics.get("node_wall_time_s", {})
    worst = sorted(metrics["per_class"].items(), key=lambda item: (item[1]["f1"], item[0]))
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("fruits_kedro.reporting", "."),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template(TEMPLATE).render(
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        counts=outputs["image_counts"],
        throughput=run_metrics.get("embedding_images_per_s"),
        wall_time=run_metrics.get("wall_time_s", 0.0),
        slowest=sorted(timings.items(), key=lambda item: -item[1])[:SLOWEST_NODES],
        versions=run_metrics.get("versions", {}),
        pca=outputs["pca_variance"],
        metrics=metrics,
        sweep=sorted(outputs["accuracy_vs_k"]["points"], key=lambda p: p["k"]),
        worst=worst[:WORST_CLASSES],
        confusions=top_confusions(outputs["confusion_matrix"], WORST_CLASSES),
        plots={key: png_data_uri(png) for key, png in plots.items()},
    )
