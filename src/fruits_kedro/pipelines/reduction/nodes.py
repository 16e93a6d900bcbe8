"""Nodes of the reduction pipeline: fit PCA, project, report the explained variance."""

from __future__ import annotations

import logging
import operator
import pickle
from collections.abc import Iterable, Iterator
from typing import Any, cast

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pyarrow as pa
from matplotlib.figure import Figure
from pyspark.ml import PipelineModel
from pyspark.ml.common import _py2java
from pyspark.ml.feature import PCAModel, StandardScalerModel
from pyspark.ml.linalg import DenseMatrix, DenseVector
from pyspark.ml.util import Identifiable
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, FloatType, StructField, StructType

from fruits_kedro.model.pca import Moments, Spectrum, moments_of, spectrum_of
from fruits_kedro.model.pca import project as pca_project
from fruits_kedro.pipelines.frames import embedded
from fruits_kedro.pipelines.stages import COMPONENTS, pca_stage

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


def k_for_variance(cumulative: list[float], target: float) -> int:
    """The fewest leading components whose cumulative explained variance reaches ``target``."""
    for k, share in enumerate(cumulative, start=1):
        if share >= target - 1e-12:
            return k
    return len(cumulative)


def check_k_params(params: dict[str, Any]) -> tuple[int | None, float | None]:
    """``(k, None)`` when ``k`` is set (it wins), else ``(None, target_variance)``."""
    k, target = params.get("k"), params.get("target_variance")
    where = "parameter reduction.{} (conf/*/parameters_reduction.yml or --params)"
    if k is not None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"{where.format('k')}: a positive integer or null, got {k!r}")
        return k, None
    if target is None:
        raise ValueError(f"{where.format('k')}: set k or target_variance, both are null")
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 < target <= 1:
        raise ValueError(
            f"{where.format('target_variance')}: a share in (0, 1] or null, got {target!r}"
        )
    return None, float(target)


def _moments(images: DataFrame, dims: int) -> Moments:
    """One pass over the embeddings: each partition's moments, merged on the executors."""

    def partial(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        found = moments_of((_matrix(batch.column(0), dims) for batch in batches), dims)
        yield pa.RecordBatch.from_pydict({"moments": [pickle.dumps(found)]})

    partials = images.select(FEATURES).mapInArrow(partial, "moments binary").rdd
    return partials.map(lambda row: pickle.loads(row[0])).treeReduce(operator.add)


def _matrix(features: pa.Array, dims: int) -> np.ndarray:
    """An Arrow list column of ``dims`` floats per row as an ``(n, dims)`` array."""
    return np.asarray(features.flatten().to_numpy(zero_copy_only=False)).reshape(-1, dims)


def spark_model(spectrum: Spectrum, k: int) -> PipelineModel:
    """Centering + the ``k`` leading axes as Spark ML's own models, which project new
    embeddings with ``transform`` and save and load as usual."""
    spark = SparkSession.getActiveSession()
    assert spark is not None
    sc = spark.sparkContext
    jvm = sc._jvm
    assert jvm is not None
    dims = len(spectrum.mean)
    mean = DenseVector(spectrum.mean)
    centering = StandardScalerModel(
        jvm.org.apache.spark.ml.feature.StandardScalerModel(
            Identifiable._randomUID(), _py2java(sc, DenseVector(np.ones(dims))), _py2java(sc, mean)
        )
    )
    centering._set(inputCol=VECTOR, outputCol=CENTERED, withMean=True, withStd=False)
    axes = DenseMatrix(dims, k, spectrum.components[:, :k].flatten(order="F"))
    pca = PCAModel(
        jvm.org.apache.spark.ml.feature.PCAModel(
            Identifiable._randomUID(),
            _py2java(sc, axes),
            _py2java(sc, DenseVector(spectrum.explained_variance_ratio[:k])),
        )
    )
    pca._set(k=k, inputCol=CENTERED, outputCol=PCA_VECTOR)
    return PipelineModel(stages=[centering, pca])


def _cumulative(model: PipelineModel) -> tuple[list[float], list[float]]:
    ratios = [float(r) for r in pca_stage(model).explainedVariance.toArray()]
    return ratios, [float(c) for c in np.cumsum(ratios)]


def fit_pca(
    image_embeddings: DataFrame,
    saved_model: PipelineModel | None,
    saved_variance: dict[str, Any] | None,
    params: dict[str, Any],
) -> tuple[PipelineModel, dict]:
    """Fit centering + PCA on the embedded images in one pass (the whole spectrum; the model
    keeps the ``k`` leading components), or keep the previous run's.

    Args:
        image_embeddings: ``features`` arrays, one row per image (quarantined ones left out).
        saved_model: The previous run's PCA model, if any.
        saved_variance: ... and its variance report.
        params: ``refit`` (false: keep the saved model, so that the components stay the same
            from run to run; fitted anyway when there is none), and either ``k``, the number
            of components, or ``target_variance``, the share of the variance to keep (the
            smallest such ``k`` is chosen from the fit).

    Returns:
        The Spark ML pipeline model and the explained-variance report of its fit.
    """
    if not params.get("refit", True):
        if saved_model is not None and saved_variance is not None:
            logger.info(
                "PCA kept from the previous fit (reduction.refit: false), k=%d", saved_variance["k"]
            )
            return saved_model, saved_variance
        logger.info("no saved PCA to keep (reduction.refit: false): fitting one")
    return _fit_pca(image_embeddings, params)


def _fit_pca(image_embeddings: DataFrame, params: dict[str, Any]) -> tuple[PipelineModel, dict]:
    k_wanted, target = check_k_params(params)
    images = embedded(image_embeddings)
    first = images.select(F.size(FEATURES).alias("dims")).first()
    dims = int(first["dims"]) if first else 0
    effective_k(dims, int(first is not None), dims)
    logger.info("fitting PCA over the embeddings' %d dims (one pass)", dims)
    moments = _moments(images, dims)
    rows = moments.count
    found = spectrum_of(moments)
    spectrum = [float(c) for c in np.cumsum(found.explained_variance_ratio)][: min(rows, dims)]
    k = effective_k(k_wanted, rows, dims) if k_wanted else k_for_variance(spectrum, target or 1.0)
    model = spark_model(found, k)
    ratios, cumulative = _cumulative(model)
    report = {
        "k": k,
        "k_requested": k_wanted,
        "target_variance": target,
        "images": rows,
        "input_dim": dims,
        "explained_variance_ratio": ratios,
        "cumulative_explained_variance": cumulative,
        "total_explained_variance": cumulative[-1],
        "full_spectrum_cumulative": spectrum,
    }
    logger.info("PCA k=%d explains %.1f %% of the variance", k, 100 * cumulative[-1])
    return model, report


def project(image_embeddings: DataFrame, pca_model: PipelineModel) -> DataFrame:
    """One row per embedded image: ``image_id, path, label, split, pca`` (``k`` floats).

    What ``pca_model.transform`` computes, as one matrix product per Arrow batch.
    """
    centering, pca = pca_model.stages[0], pca_stage(pca_model)
    assert isinstance(centering, StandardScalerModel)
    mean, axes = centering.mean.toArray(), pca.pc.toArray()
    shipped = image_embeddings.sparkSession.sparkContext.broadcast((mean, axes))
    columns = ["image_id", *LABEL_COLUMNS]
    images = embedded(image_embeddings).select(*columns, FEATURES)
    schema = StructType(
        [*(images.schema[c] for c in columns), StructField(COMPONENTS, ArrayType(FloatType()))]
    )

    def components(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        centre, matrix = shipped.value
        for batch in batches:
            found = pca_project(_matrix(batch.column(FEATURES), len(centre)), centre, matrix)
            values = pa.array(found.ravel(), type=pa.float32())
            offsets = pa.array(np.arange(0, found.size + 1, found.shape[1], dtype=np.int32))
            yield pa.RecordBatch.from_arrays(
                [*(batch.column(c) for c in columns), pa.ListArray.from_arrays(offsets, values)],
                names=[*columns, COMPONENTS],
            )

    return images.mapInArrow(components, schema)


def to_csv_rows(pca_features: DataFrame, pca_variance: dict[str, Any]) -> DataFrame:
    """The CSV export: ``path, label, split, pc_1 .. pc_k``, one part file per task (written
    in parallel; a single file would be one task's work at any scale)."""
    components = [F.col(COMPONENTS)[i].alias(f"pc_{i + 1}") for i in range(pca_variance["k"])]
    return pca_features.select(*LABEL_COLUMNS, *components)


def plot_variance(pca_variance: dict[str, Any]) -> Figure:
    """Explained variance per component (bars) and cumulative (line; the full spectrum
    when ``k`` was chosen from a target, with the target and ``k`` marked)."""
    ratios = pca_variance["explained_variance_ratio"]
    cumulative = (
        pca_variance.get("full_spectrum_cumulative")
        or pca_variance["cumulative_explained_variance"]
    )
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.bar(range(1, len(ratios) + 1), ratios, color="tab:blue", label="per component")
    ax.set_xlabel("principal component")
    ax.set_ylabel("explained variance ratio")
    cum_ax = ax.twinx()
    cum_ax.plot(range(1, len(cumulative) + 1), cumulative, color="tab:orange", label="cumulative")
    if pca_variance.get("target_variance"):
        cum_ax.axhline(pca_variance["target_variance"], color="grey", linestyle=":")
        cum_ax.axvline(pca_variance["k"], color="grey", linestyle=":", label="chosen k")
    cum_ax.set_ylim(0, 1.0)
    cum_ax.set_ylabel("cumulative explained variance")
    ax.set_title(
        f"PCA of {pca_variance['images']} MobileNetV2 embeddings: k={pca_variance['k']} "
        f"explains {100 * pca_variance['total_explained_variance']:.1f} %"
    )
    fig.legend(loc="center right", bbox_to_anchor=(0.88, 0.5))
    fig.tight_layout()
    return fig


def spread_classes(labels: list[str], n: int) -> list[str]:
    """``n`` class names evenly spread over the sorted names (varied fruit, not 12 apples)."""
    ordered = sorted(set(labels))
    if n >= len(ordered):
        return ordered
    return [ordered[int(i)] for i in np.unique(np.linspace(0, len(ordered) - 1, n).round())]


def scatter_points(pca_features: DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """``label, split, pc_1, pc_2`` of ``scatter_classes`` classes spread over the names,
    at most ``scatter_points_per_class`` images each: a readable 2-D picture."""
    per_class = int(params["scatter_points_per_class"])
    labels = [row["label"] for row in pca_features.select("label").distinct().collect()]
    classes = spread_classes(labels, int(params["scatter_classes"]))
    first = F.try_element_at(F.col(COMPONENTS), F.lit(1))
    second = F.coalesce(F.try_element_at(F.col(COMPONENTS), F.lit(2)), first)  # k = 1: pc_1
    rank = F.row_number().over(Window.partitionBy("label").orderBy("image_id"))
    chosen = (
        pca_features.filter(F.col("label").isin(classes))
        .withColumn("rank", rank)
        .filter(F.col("rank") <= per_class)
        .select("label", "split", first.alias("pc_1"), second.alias("pc_2"))
    )
    return cast("pd.DataFrame", chosen.toPandas()).sort_values(["label", "pc_1"], ignore_index=True)


def plot_pca_scatter(points: pd.DataFrame) -> Figure:
    """The images on the first two principal components, one colour per class."""
    fig, ax = plt.subplots(figsize=(9, 6.5))
    colours = plt.get_cmap("tab20")
    for i, (label, group) in enumerate(points.groupby("label", sort=True)):
        ax.scatter(
            group["pc_1"], group["pc_2"], s=10, alpha=0.7, color=colours(i % 20), label=label
        )
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.set_title(f"First two principal components: {points['label'].nunique()} classes")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=2)
    fig.tight_layout()
    return fig
