"""Nodes of the classification pipeline: train on ``Training``, evaluate on ``Test``."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import numpy as np
import pandas as pd
from pyspark import inheritable_thread_target
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.base import Estimator
from pyspark.ml.classification import LogisticRegression, MultilayerPerceptronClassifier
from pyspark.ml.feature import (
    IndexToString,
    StandardScaler,
    StandardScalerModel,
    StringIndexer,
    StringIndexerModel,
    VectorSlicer,
)
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fruits_kedro.pipelines.stages import (
    COMPONENTS,
    COMPONENTS_VECTOR,
    k_of,
    labels_of,
    with_component_vector,
)

logger = logging.getLogger(__name__)

LABEL_INDEX = "label_index"
SCALED = "components_scaled"
PREDICTED = "predicted_label"
LOGISTIC_REGRESSION = "logistic_regression"
MLP = "mlp"
SLICED = "components_head"


def _split(pca_features: DataFrame, name: str) -> DataFrame:
    return pca_features.filter(F.col("split") == name)


def _require_rows(rows: int, split: str, key: str) -> int:
    if not rows:
        raise ValueError(
            f"no images in split {split!r} (parameter classification.{key}, "
            "conf/*/parameters_classification.yml): the folders under the input must be "
            "named after the splits, e.g. Training/<Class>/*.jpg and Test/<Class>/*.jpg"
        )
    return rows


def _classifier(
    params: dict[str, Any], inputs: int, classes: int, features: str = SCALED
) -> Estimator:
    kind = params["classifier"]
    if kind == LOGISTIC_REGRESSION:
        lr = params[LOGISTIC_REGRESSION]
        return LogisticRegression(
            featuresCol=features,
            labelCol=LABEL_INDEX,
            family="multinomial",
            standardization=False,  # the scaler stage already standardises
            regParam=float(lr["reg_param"]),
            elasticNetParam=float(lr["elastic_net_param"]),
            maxIter=int(lr["max_iter"]),
            tol=float(lr["tol"]),
        )
    if kind == MLP:
        mlp = params[MLP]
        return MultilayerPerceptronClassifier(
            featuresCol=features,
            labelCol=LABEL_INDEX,
            layers=[inputs, *[int(n) for n in mlp["hidden_layers"]], classes],
            maxIter=int(mlp["max_iter"]),
            blockSize=int(mlp["block_size"]),
            seed=int(mlp["seed"]),
        )
    raise ValueError(
        f"parameter classification.classifier (conf/*/parameters_classification.yml): "
        f"unknown {kind!r}, expected {LOGISTIC_REGRESSION!r} or {MLP!r}"
    )


def _label_indexer(train: DataFrame) -> tuple[Any, list[str]]:
    indexer = StringIndexer(
        inputCol="label", outputCol=LABEL_INDEX, stringOrderType="alphabetAsc"
    ).fit(train)
    labels = list(indexer.labelsArray[0])
    if len(labels) < 2:  # noqa: PLR2004
        raise ValueError(f"the training split has {len(labels)} class(es): at least 2 are needed")
    return indexer, labels


def fit_classifier(train: DataFrame, k: int, params: dict[str, Any]) -> PipelineModel:
    """Fit standardisation of the ``k`` components and the classifier on ``train``.

    The model maps the components' vector to ``predicted_label`` (and ``probability``); the
    labels are indexed alphabetically for the fit only, so unseen labels can still be evaluated.
    """
    indexer, labels = _label_indexer(train)
    return Pipeline(
        stages=[
            StandardScaler(
                inputCol=COMPONENTS_VECTOR, outputCol=SCALED, withMean=True, withStd=True
            ),
            _classifier(params, k, len(labels)),
            IndexToString(inputCol="prediction", outputCol=PREDICTED, labels=labels),
        ]
    ).fit(indexer.transform(train))


def train_classifier(
    pca_features: DataFrame, saved_model: PipelineModel | None, params: dict[str, Any]
) -> PipelineModel:
    """Train the classifier on every principal component of the training split, or keep the
    previous run's.

    Args:
        pca_features: ``label, split, pca`` (the ``k`` components), one row per image.
        saved_model: The previous run's classifier, if any.
        params: ``retrain`` (false: keep the saved classifier; trained anyway when there is
            none), ``train_split``, ``classifier`` and that classifier's settings.

    Raises:
        ValueError: The kept classifier takes another number of components than the PCA.
    """
    if not params.get("retrain", True) and saved_model is not None:
        return _kept(pca_features, saved_model)
    train = with_component_vector(_split(pca_features, params["train_split"])).cache()
    rows = _require_rows(train.count(), params["train_split"], "train_split")
    first = train.select(F.size(COMPONENTS).alias("k")).first()
    k = int(first["k"]) if first else 0
    logger.info("training %s on %d images x %d components", params["classifier"], rows, k)
    start = time.perf_counter()
    model = fit_classifier(train, k, params)
    logger.info("classifier trained in %.1f s", time.perf_counter() - start)
    train.unpersist()
    return model


def _kept(pca_features: DataFrame, saved_model: PipelineModel) -> PipelineModel:
    first = pca_features.select(F.size(COMPONENTS).alias("k")).first()
    k = int(first["k"]) if first else 0
    scaler = saved_model.stages[0]
    inputs = len(scaler.mean.toArray()) if isinstance(scaler, StandardScalerModel) else k
    if inputs != k:
        raise ValueError(
            f"classification.retrain is false but the saved classifier takes {inputs} components"
            f" and the PCA gives {k}: keep the PCA too (reduction.refit: false) or retrain"
        )
    logger.info("classifier kept from the previous run (classification.retrain: false)")
    return saved_model


def metrics_from_confusion(confusion: pd.DataFrame) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class precision/recall/F1 of a confusion matrix
    (rows: true labels, columns: predicted labels, same label order)."""
    counts = confusion.to_numpy(dtype=np.float64)
    predicted = counts.sum(axis=0)
    support = counts.sum(axis=1)
    hits = np.diag(counts)
    precision = np.divide(hits, predicted, out=np.zeros_like(hits), where=predicted > 0)
    recall = np.divide(hits, support, out=np.zeros_like(hits), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(hits), where=both > 0)
    present = support > 0  # macro averages over the classes of the evaluated split
    return {
        "accuracy": float(hits.sum() / counts.sum()) if counts.sum() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "macro_precision": float(precision[present].mean()) if present.any() else 0.0,
        "macro_recall": float(recall[present].mean()) if present.any() else 0.0,
        "per_class": {
            str(label): {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(confusion.index)
            if support[i] or predicted[i]
        },
    }


def confusion_matrix(predictions: DataFrame) -> pd.DataFrame:
    """Counts of (true ``label``, ``predicted_label``), as a square label x label table."""
    pairs = cast("pd.DataFrame", predictions.groupBy("label", PREDICTED).count().toPandas())
    labels = sorted(set(pairs["label"]) | set(pairs[PREDICTED]))
    table = pairs.pivot_table(
        index="label", columns=PREDICTED, values="count", aggfunc="sum", fill_value=0
    )
    table = table.reindex(index=labels, columns=labels, fill_value=0).astype(int)
    table.index.name, table.columns.name = "label", None
    return table


def evaluate_classifier(
    pca_features: DataFrame,
    classifier_model: PipelineModel,
    pca_variance: dict[str, Any],
    params: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame, DataFrame]:
    """Evaluate on the test split.

    Returns:
        ``classification_metrics`` (accuracy, macro-F1, per class, k, variance, counts),
        the confusion matrix and one prediction per test image.
    """
    counts = cast("pd.DataFrame", pca_features.groupBy("split").count().toPandas())
    per_split = counts.set_index("split")["count"]
    _require_rows(int(per_split.get(params["test_split"], 0)), params["test_split"], "test_split")
    test = with_component_vector(_split(pca_features, params["test_split"]))
    predicted = classifier_model.transform(test).cache()
    confusion = confusion_matrix(predicted)
    metrics = {
        "classifier": params["classifier"],
        "k": k_of(classifier_model),
        "explained_variance": pca_variance["total_explained_variance"],
        "train_images": int(per_split.get(params["train_split"], 0)),
        "test_images": int(per_split.get(params["test_split"], 0)),
        "classes": len(labels_of(classifier_model)),
        **metrics_from_confusion(confusion),
    }
    logger.info(
        "test accuracy %.2f %%, macro-F1 %.4f over %d test images (k=%d)",
        100 * metrics["accuracy"],
        metrics["macro_f1"],
        metrics["test_images"],
        metrics["k"],
    )
    probability = vector_to_array(F.col("probability"))
    predictions = predicted.select(
        "image_id",
        "path",
        "label",
        PREDICTED,
        F.array_max(probability).alias("confidence"),
        (F.col("label") == F.col(PREDICTED)).alias("correct"),
    )
    return metrics, confusion, predictions


def accuracy_vs_k(
    pca_features: DataFrame,
    classifier_model: PipelineModel,
    pca_variance: dict[str, Any],
    classification_metrics: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """Test accuracy of the same classifier on the first ``k`` components, for each
    ``sweep_k`` below the model's ``k`` (the model's own point is its evaluation).

    What the refits share is taken from the model or done once: its labels, its scaler
    (standardisation is per component, so the first ``k`` standardised components are the
    standardised first ``k``) and the cached training and test vectors; each refit slices its
    ``k`` leading components.
    """
    k_model = k_of(classifier_model)
    cumulative = pca_variance["cumulative_explained_variance"]
    ks = sorted({int(k) for k in params["sweep_k"] if 0 < int(k) < k_model})
    points = [
        _sweep_point(k, accuracy, cumulative, fit_s)
        for k, accuracy, fit_s in _sweep(pca_features, classifier_model, ks, params)
    ]
    points.append(_sweep_point(k_model, classification_metrics["accuracy"], cumulative, None))
    return {"classifier": params["classifier"], "chosen_k": k_model, "points": points}


def _sweep_point(
    k: int, accuracy: float, cumulative: list[float], fit_s: float | None
) -> dict[str, Any]:
    return {"k": k, "accuracy": accuracy, "explained_variance": cumulative[k - 1], "fit_s": fit_s}


def _sweep(
    pca_features: DataFrame, classifier_model: PipelineModel, ks: list[int], params: dict[str, Any]
) -> list[tuple[int, float, float]]:
    if not ks:
        return []
    train = with_component_vector(_split(pca_features, params["train_split"]))
    test = with_component_vector(_split(pca_features, params["test_split"]))
    scaler, labels = classifier_model.stages[0], labels_of(classifier_model)
    indexer = StringIndexerModel.from_labels(labels, inputCol="label", outputCol=LABEL_INDEX)
    train_vectors = indexer.transform(scaler.transform(train)).select(LABEL_INDEX, SCALED).cache()
    test_vectors = scaler.transform(test).select("label", SCALED).cache()

    def refit(k: int) -> tuple[int, float, float]:
        start = time.perf_counter()
        head = VectorSlicer(inputCol=SCALED, outputCol=SLICED, indices=list(range(k)))
        model = _classifier(params, k, len(labels), SLICED).fit(head.transform(train_vectors))
        predicted = IndexToString(inputCol="prediction", outputCol=PREDICTED, labels=labels)
        scored = predicted.transform(model.transform(head.transform(test_vectors)))
        row = scored.agg(F.avg((F.col(PREDICTED) == F.col("label")).cast("double"))).first()
        accuracy = float((row or [0.0])[0] or 0.0)
        logger.info("sweep k=%d: test accuracy %.2f %%", k, 100 * accuracy)
        return k, accuracy, round(time.perf_counter() - start, 2)

    # Each fit is mostly small Spark jobs, one per iteration: running a few at once keeps the
    # cores busy.
    with ThreadPoolExecutor(max_workers=int(params["sweep_parallelism"])) as pool:
        results = list(pool.map(inheritable_thread_target(train_vectors.sparkSession)(refit), ks))
    train_vectors.unpersist()
    test_vectors.unpersist()
    return results
