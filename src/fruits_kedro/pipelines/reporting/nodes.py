"""The run report: one self-contained HTML page (plots embedded as PNG)."""

from __future__ import annotations

import base64
import datetime as dt
import io
from typing import Any

import jinja2
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fruits_kedro.pipelines.classification.plots import plot_accuracy_vs_k, plot_confusion_matrix
from fruits_kedro.pipelines.reduction.nodes import plot_pca_scatter, plot_variance

TEMPLATE = "run_report.html.j2"
SLOWEST_NODES = 8
WORST_CLASSES = 10


def png_data_uri(fig: Figure) -> str:
    """The figure as an inline ``data:image/png`` URI (the figure is closed)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


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


def write_report(  # noqa: PLR0917 - one input per part of the page
    image_counts: dict[str, Any],
    run_metrics: dict[str, Any],
    pca_variance: dict[str, Any],
    pca_scatter_points: pd.DataFrame,
    classification_metrics: dict[str, Any],
    confusion_matrix: pd.DataFrame,
    accuracy_vs_k: dict[str, Any],
) -> str:
    """The HTML run report.

    ``run_metrics`` is read while the run goes on: it holds the wall time of the nodes
    that ran before this one (throughput is shown when the embedding ran in this run).
    """
    timings = run_metrics.get("node_wall_time_s", {})
    per_class = classification_metrics["per_class"]
    worst = sorted(per_class.items(), key=lambda item: (item[1]["f1"], item[0]))[:WORST_CLASSES]
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("fruits_kedro.pipelines.reporting", "."),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template(TEMPLATE).render(
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        counts=image_counts,
        throughput=run_metrics.get("embedding_images_per_s"),
        slowest=sorted(timings.items(), key=lambda item: -item[1])[:SLOWEST_NODES],
        versions=run_metrics.get("versions", {}),
        pca=pca_variance,
        metrics=classification_metrics,
        sweep=sorted(accuracy_vs_k["points"], key=lambda p: p["k"]),
        worst=worst,
        confusions=top_confusions(confusion_matrix, WORST_CLASSES),
        plots={
            "variance": png_data_uri(plot_variance(pca_variance)),
            "scatter": png_data_uri(plot_pca_scatter(pca_scatter_points)),
            "accuracy": png_data_uri(plot_accuracy_vs_k(accuracy_vs_k)),
            "confusion": png_data_uri(plot_confusion_matrix(confusion_matrix)),
        },
    )
