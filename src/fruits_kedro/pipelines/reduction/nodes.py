"""Nodes of the reduction pipeline: fit PCA, project, report the explained variance."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import PCA, PCAModel, StandardScaler
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import functions as F

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from pyspark.sql import DataFrame

logger = logging.getLogger(__name__)

FEATURES = "features"
VECTOR = "features_vector"
CENTERED = "features_centered"
PCA_VECTOR = "pca"
LABEL_COLUMNS = ["path", "label", "split"]


def effective_k(requested: int, rows: int, dims: int) -> int:
    """``requested`` components, capped by the number of images and of dimensions."""
    k = min(requested, rows, dims)
    if k < 1:
        raise ValueError(
            f"PCA needs at least one image and one dimension (rows={rows}, dims={dims})"
        )
    return k


def pca_stage(model: PipelineModel) -> PCAModel:
    """The fitted PCA of the centering + PCA pipeline."""
    stage = model.stages[-1]
    if not isinstance(stage, PCAModel):
        raise TypeError(f"expected a PCA model as the last stage, got {type(stage).__name__}")
    return stage


def fit_pca(image_embeddings: DataFrame, params: dict[str, Any]) -> tuple[PipelineModel, dict]:
    """Fit centering + PCA on the embeddings.

    Args:
        image_embeddings: ``features`` arrays, one row per image.
        params: ``k``, the number of components wanted.

    Returns:
        The fitted Spark ML pipeline model and the explained-variance report.
    """
    shape = image_embeddings.agg(F.count("*").alias("rows"), F.max(F.size(FEATURES)).alias("dims"))
    rows, dims = shape.first() or (0, 0)
    vectors = image_embeddings.select(array_to_vector(F.col(FEATURES)).alias(VECTOR))
    k = effective_k(int(params["k"]), rows, dims or 0)
    logger.info("fitting PCA: k=%d over %d images x %d dims", k, rows, dims)
    model = Pipeline(
        stages=[
            StandardScaler(inputCol=VECTOR, outputCol=CENTERED, withMean=True, withStd=False),
            PCA(k=k, inputCol=CENTERED, outputCol=PCA_VECTOR),
        ]
    ).fit(vectors)
    ratios = [float(r) for r in pca_stage(model).explainedVariance.toArray()]
    cumulative = [sum(ratios[: i + 1]) for i in range(len(ratios))]
    report = {
        "k": k,
        "k_requested": int(params["k"]),
        "images": rows,
        "input_dim": dims,
        "explained_variance_ratio": ratios,
        "cumulative_explained_variance": cumulative,
        "total_explained_variance": cumulative[-1],
    }
    logger.info("PCA k=%d explains %.1f %% of the variance", k, 100 * cumulative[-1])
    return model, report


def project(image_embeddings: DataFrame, pca_model: PipelineModel) -> DataFrame:
    """One row per image: ``image_id, path, label, split, pc_1 .. pc_k``."""
    k = pca_stage(pca_model).getK()
    projected = pca_model.transform(
        image_embeddings.withColumn(VECTOR, array_to_vector(F.col(FEATURES)))
    ).withColumn(PCA_VECTOR, vector_to_array(F.col(PCA_VECTOR), dtype="float32"))
    components = [F.col(PCA_VECTOR)[i].alias(f"pc_{i + 1}") for i in range(k)]
    return projected.select("image_id", *LABEL_COLUMNS, *components)


def to_csv_rows(pca_features: DataFrame) -> DataFrame:
    """The CSV export: ``path, label, split, pc_1 .. pc_k``, one file."""
    return pca_features.drop("image_id").coalesce(1)


def plot_variance(pca_variance: dict[str, Any]) -> Figure:
    """Explained variance per component (bars) and cumulative (line)."""
    ratios = pca_variance["explained_variance_ratio"]
    cumulative = pca_variance["cumulative_explained_variance"]
    components = range(1, len(ratios) + 1)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.bar(components, ratios, color="tab:blue", label="per component")
    ax.set_xlabel("principal component")
    ax.set_ylabel("explained variance ratio")
    cum_ax = ax.twinx()
    cum_ax.plot(components, cumulative, color="tab:orange", label="cumulative")
    cum_ax.set_ylim(0, 1.0)
    cum_ax.set_ylabel("cumulative explained variance")
    ax.set_title(
        f"PCA of {pca_variance['images']} MobileNetV2 embeddings: k={pca_variance['k']} "
        f"explains {100 * pca_variance['total_explained_variance']:.1f} %"
    )
    fig.legend(loc="center right", bbox_to_anchor=(0.88, 0.5))
    fig.tight_layout()
    return fig
