"""Pictures of the classifier: confusion matrix heatmap, accuracy against ``k``."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure


def plot_confusion_matrix(confusion_matrix: pd.DataFrame) -> Figure:
    """Heatmap of the confusion counts (log colour scale, so single mistakes show)."""
    counts = confusion_matrix.to_numpy(dtype=float)
    n = len(counts)
    side = min(18.0, max(6.0, 0.16 * n + 3))
    font = max(3.0, min(9.0, 500 / max(n, 1)))
    fig, ax = plt.subplots(figsize=(side, side * 0.9))
    shown = np.ma.masked_equal(counts, 0)
    image = ax.imshow(shown, cmap="viridis", norm=LogNorm(vmin=1, vmax=max(counts.max(), 2)))
    ax.set_xticks(range(n), confusion_matrix.columns, rotation=90, fontsize=font)
    ax.set_yticks(range(n), confusion_matrix.index, fontsize=font)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    wrong = int(counts.sum() - np.trace(counts))
    ax.set_title(f"Confusion matrix of the test split: {wrong} of {int(counts.sum())} wrong")
    fig.colorbar(image, ax=ax, shrink=0.6, label="images")
    fig.tight_layout()
    return fig


def plot_accuracy_vs_k(accuracy_vs_k: dict[str, Any]) -> Figure:
    """Test accuracy (left) and explained variance (right) against the number of components."""
    points = sorted(accuracy_vs_k["points"], key=lambda p: p["k"])
    ks = [p["k"] for p in points]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(ks, [100 * p["accuracy"] for p in points], "o-", color="tab:green", label="accuracy")
    ax.set_xlabel("principal components (k)")
    ax.set_ylabel("test accuracy (%)")
    variance_ax = ax.twinx()
    variance_ax.plot(
        ks,
        [100 * p["explained_variance"] for p in points],
        "s--",
        color="tab:orange",
        label="explained variance",
    )
    variance_ax.set_ylabel("explained variance (%)")
    ax.axvline(accuracy_vs_k["chosen_k"], color="grey", linestyle=":", label="model's k")
    chosen = next(p for p in points if p["k"] == accuracy_vs_k["chosen_k"])
    ax.set_title(
        f"{accuracy_vs_k['classifier']}: {100 * chosen['accuracy']:.2f} % at "
        f"k={chosen['k']} ({100 * chosen['explained_variance']:.1f} % of the variance)"
    )
    fig.legend(loc="lower right", bbox_to_anchor=(0.88, 0.15))
    fig.tight_layout()
    return fig
