"""Nodes of the classification pipeline: choose the head on a validation part of ``Training``,
train it on ``Training``, evaluate it on ``Test``, and sweep the accuracy against PCA's ``k``."""

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
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from fruits_kedro.pipelines.frames import embedded
from fruits_kedro.pipelines.stages import (
    COMPONENTS,
    COMPONENTS_VECTOR,
    k_of,
    labels_of,
    with_component_vector,
)

logger = logging.getLogger(__name__)

LABEL_INDEX = "label_index"
INPUTS = "inputs"  # the head's input: the principal components, or the (transformed) features
INPUTS_VECTOR = "inputs_vector"
SCALED = "inputs_scaled"
PREDICTED = "predicted_label"
PCA, EMBEDDINGS = "pca", "embeddings"
SQRT, NONE = "sqrt", "none"
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


def _checked_head(head: dict[str, Any], where: str) -> dict[str, Any]:
    features, transform = str(head.get("features")), str(head.get("transform", NONE))
    if features not in (PCA, EMBEDDINGS) or transform not in (NONE, SQRT):
        raise ValueError(
            f"{where} (conf/*/parameters_classification.yml): features {features!r} and transform"
            f" {transform!r}; expected features {PCA!r} or {EMBEDDINGS!r}, transform {NONE!r} or"
            f" {SQRT!r}"
        )
    if features == PCA and transform != NONE:
        raise ValueError(f"{where}: the transform applies to the embeddings, not to PCA's output")
    checked = {"features": features, "transform": transform, "reg_param": float(head["reg_param"])}
    if "max_iter" in head:  # else the logistic regression's
        checked["max_iter"] = int(head["max_iter"])
    return checked


def head_inputs(
    pca_features: DataFrame, image_embeddings: DataFrame, head: dict[str, Any]
) -> DataFrame:
    """``image_id, path, label, split, inputs``: what the head reads, lazily.

    Args:
        pca_features: The principal components of each image (``pca``).
        image_embeddings: The images' 1280 features (``features``).
        head: ``features`` (``pca`` or ``embeddings``) and ``transform`` (``none`` or ``sqrt``:
            the square root of each feature, a power normalisation of pooled ReLU activations).
    """
    ids = ["image_id", "path", "label", "split"]
    if head["features"] == PCA:
        return pca_features.select(*ids, F.col(COMPONENTS).alias(INPUTS))
    features = F.col("features")
    if head["transform"] == SQRT:
        features = F.transform(features, lambda x: F.sqrt(F.greatest(x, F.lit(0.0))))
    return embedded(image_embeddings).select(*ids, features.cast("array<float>").alias(INPUTS))


def select_head(
    pca_features: DataFrame, image_embeddings: DataFrame, params: dict[str, Any]
) -> dict[str, Any]:
    """The head with the best accuracy on a validation part of the training split, among
    ``select.candidates`` (``features``, ``transform``, ``reg_param``); ties go to the first.

    Without candidates, or when the saved classifier is kept (``retrain: false``), the head is
    ``head`` as configured. ``select.validation_share`` of the training images, in whole blocks
    of ``select.block`` neighbouring frames (:func:`validation_images`), validate; the best
    accuracy wins, then the lowest log-loss.
    """
    configured = _checked_head(params["head"], "parameter classification.head")
    candidates = [
        _checked_head(c, f"parameter classification.select.candidates[{i}]")
        for i, c in enumerate(params.get("select", {}).get("candidates") or [])
    ]
    if not candidates or not params.get("retrain", True):
        return {**configured, "validation": []}
    select = params["select"]
    share, held_out = float(select["validation_share"]), validation_images(int(select["block"]))
    held_out = held_out < int(1000 * share)
    training = _split(pca_features, params["train_split"])
    fit_classes = training.filter(~held_out).select("label").distinct().count()
    if fit_classes < 2 or training.filter(held_out).isEmpty():  # noqa: PLR2004
        logger.info("too few training images to hold some out: the head as configured")
        return {**configured, "validation": []}
    scores = []
    for candidate in candidates:
        start = time.perf_counter()
        inputs = head_inputs(pca_features, image_embeddings, candidate)
        train = with_inputs_vector(_split(inputs, params["train_split"])).cache()
        width = _width(train)
        model = fit_classifier(train.filter(~held_out), width, _with_reg_param(params, candidate))
        accuracy, log_loss, images = _validation_scores(model, train.filter(held_out))
        train.unpersist()
        scores.append(
            {
                **candidate,
                "validation_accuracy": accuracy,
                "validation_log_loss": log_loss,
                "fit_s": _since(start),
            }
        )
        logger.info(
            "head %s/%s L2 %.0e: validation accuracy %.2f %%, log-loss %.4f (%d images)",
            candidate["features"],
            candidate["transform"],
            candidate["reg_param"],
            100 * accuracy,
            log_loss,
            images,
        )
    best = min(
        range(len(scores)),
        key=lambda i: (-scores[i]["validation_accuracy"], scores[i]["validation_log_loss"], i),
    )
    return {**candidates[best], "validation_share": share, "validation": scores}


def validation_images(block: int) -> Column:
    """A number in ``[0, 1000)`` per image, the same for neighbouring frames of one capture.

    Photos whose names differ only by a frame number (``r_12_100.jpg``, ``r_13_100.jpg``) are
    near-duplicates: they fall into one block of ``block`` consecutive numbers, and a block is
    held out whole, so that validation sees frames the fit has no neighbour of.
    """
    name = F.element_at(F.split("path", "/"), -1)
    number = F.regexp_extract(name, r"(\d+)", 1).cast("long")
    stem = F.regexp_replace(name, r"\d+", "#")
    folder = F.regexp_replace("path", r"/[^/]*$", "")
    group = F.concat_ws("|", folder, stem, F.coalesce(F.floor(number / block), F.lit(-1)))
    return F.abs(F.xxhash64(group)) % 1000


def _validation_scores(model: PipelineModel, held: DataFrame) -> tuple[float, float, int]:
    """Accuracy, mean log-loss of the true labels and the count of ``held``."""
    labels = labels_of(model)
    index = F.array_position(F.array(*[F.lit(label) for label in labels]), F.col("label"))
    truth = F.when(
        index > 0, F.element_at(vector_to_array(F.col("probability")), index.cast("int"))
    )
    row = (
        model.transform(held)
        .agg(
            F.avg((F.col(PREDICTED) == F.col("label")).cast("double")).alias("accuracy"),
            F.avg(-F.log(F.greatest(F.coalesce(truth, F.lit(0.0)), F.lit(1e-15)))).alias(
                "log_loss"
            ),
            F.count("*").alias("images"),
        )
        .first()
    )
    if row is None or not row["images"]:
        raise ValueError("no validation images: raise classification.select.validation_share")
    return float(row["accuracy"]), round(float(row["log_loss"]), 6), int(row["images"])


def _since(start: float) -> float:
    return round(time.perf_counter() - start, 2)


def _width(frame: DataFrame) -> int:
    first = frame.select(F.size(INPUTS).alias("width")).first()
    return int(first["width"]) if first else 0


def _with_reg_param(params: dict[str, Any], head: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the head's L2 strength (and iterations, if it names them)."""
    lr = {**params[LOGISTIC_REGRESSION], "reg_param": head["reg_param"]}
    if "max_iter" in head:
        lr["max_iter"] = head["max_iter"]
    return {**params, LOGISTIC_REGRESSION: lr}


def with_inputs_vector(frame: DataFrame) -> DataFrame:
    """``frame`` plus the head's inputs as a Spark ML vector (JVM side, no Python)."""
    return frame.withColumn(INPUTS_VECTOR, array_to_vector(F.col(INPUTS)))


def fit_classifier(train: DataFrame, width: int, params: dict[str, Any]) -> PipelineModel:
    """Fit standardisation of the ``width`` inputs and the classifier on ``train``.

    The model maps the inputs' vector to ``predicted_label`` (and ``probability``); the
    labels are indexed alphabetically for the fit only, so unseen labels can still be evaluated.
    """
    indexer, labels = _label_indexer(train)
    return Pipeline(
        stages=[
            StandardScaler(inputCol=INPUTS_VECTOR, outputCol=SCALED, withMean=True, withStd=True),
            _classifier(params, width, len(labels)),
            IndexToString(inputCol="prediction", outputCol=PREDICTED, labels=labels),
        ]
    ).fit(indexer.transform(train))


def train_classifier(
    head_inputs: DataFrame,
    saved_model: PipelineModel | None,
    params: dict[str, Any],
    head: dict[str, Any],
) -> PipelineModel:
    """Train the head on the training split, or keep the previous run's.

    Args:
        head_inputs: ``label, split, inputs``, one row per image.
        saved_model: The previous run's classifier, if any.
        params: ``retrain`` (false: keep the saved classifier; trained anyway when there is
            none), ``train_split``, ``classifier`` and that classifier's settings.
        head: The chosen head (its ``reg_param`` is the logistic regression's).

    Raises:
        ValueError: The kept classifier takes another number of inputs than the head gets.
    """
    if not params.get("retrain", True) and saved_model is not None:
        return _kept(head_inputs, saved_model)
    train = with_inputs_vector(_split(head_inputs, params["train_split"])).cache()
    rows = _require_rows(train.count(), params["train_split"], "train_split")
    width = _width(train)
    logger.info(
        "training %s on %d images x %d %s inputs",
        params["classifier"],
        rows,
        width,
        head["features"],
    )
    start = time.perf_counter()
    model = fit_classifier(train, width, _with_reg_param(params, head))
    logger.info("classifier trained in %.1f s", time.perf_counter() - start)
    train.unpersist()
    return model


def _kept(head_inputs: DataFrame, saved_model: PipelineModel) -> PipelineModel:
    width = _width(head_inputs)
    scaler = saved_model.stages[0]
    takes = len(scaler.mean.toArray()) if isinstance(scaler, StandardScalerModel) else None
    if takes != width or scaler.getOrDefault("inputCol") != INPUTS_VECTOR:
        raise ValueError(
            f"classification.retrain is false but the saved classifier takes {takes} inputs"
            f" and the head gets {width}: keep the PCA too (reduction.refit: false) and the same"
            " classification.head, or retrain"
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
    head_inputs: DataFrame,
    classifier_model: PipelineModel,
    pca_variance: dict[str, Any],
    params: dict[str, Any],
    head: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame, DataFrame]:
    """Evaluate on the test split.

    Returns:
        ``classification_metrics`` (accuracy, macro-F1, per class, the head and its validation
        scores, PCA's k and variance, counts), the confusion matrix and one prediction per test
        image.
    """
    counts = cast("pd.DataFrame", head_inputs.groupBy("split").count().toPandas())
    per_split = counts.set_index("split")["count"]
    _require_rows(int(per_split.get(params["test_split"], 0)), params["test_split"], "test_split")
    test = with_inputs_vector(_split(head_inputs, params["test_split"]))
    predicted = classifier_model.transform(test).cache()
    confusion = confusion_matrix(predicted)
    metrics = {
        "classifier": params["classifier"],
        "head": head,
        "inputs": k_of(classifier_model),
        "k": int(pca_variance["k"]),
        "explained_variance": pca_variance["total_explained_variance"],
        "train_images": int(per_split.get(params["train_split"], 0)),
        "test_images": int(per_split.get(params["test_split"], 0)),
        "classes": len(labels_of(classifier_model)),
        **metrics_from_confusion(confusion),
    }
    logger.info(
        "test accuracy %.2f %%, macro-F1 %.4f over %d test images (head: %s/%s, %d inputs)",
        100 * metrics["accuracy"],
        metrics["macro_f1"],
        metrics["test_images"],
        head["features"],
        head["transform"],
        metrics["inputs"],
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
    """Test accuracy of the same classifier on the first ``k`` principal components, for each
    ``sweep_k`` below PCA's ``k``, and at ``k`` (the model's own evaluation when the head reads
    the components).

    What the refits share is done once: the labels, the standardisation (per component, so the
    first ``k`` standardised components are the standardised first ``k``) and the cached
    training and test vectors; each refit slices its ``k`` leading components.
    """
    k_pca = int(pca_variance["k"])
    own = classification_metrics.get("head", {}).get("features", PCA) == PCA
    cumulative = pca_variance["cumulative_explained_variance"]
    ks = sorted({int(k) for k in params["sweep_k"] if 0 < int(k) < k_pca})
    if not own:  # the model reads the features: PCA's own k is a refit too
        ks.append(k_pca)
    labels = labels_of(classifier_model)
    points = [
        _sweep_point(k, accuracy, cumulative, fit_s)
        for k, accuracy, fit_s in _sweep(pca_features, labels, ks, params)
    ]
    if own:
        points.append(_sweep_point(k_pca, classification_metrics["accuracy"], cumulative, None))
    return {"classifier": params["classifier"], "chosen_k": k_pca, "points": points}


def _sweep_point(
    k: int, accuracy: float, cumulative: list[float], fit_s: float | None
) -> dict[str, Any]:
    return {"k": k, "accuracy": accuracy, "explained_variance": cumulative[k - 1], "fit_s": fit_s}


def _sweep(
    pca_features: DataFrame, labels: list[str], ks: list[int], params: dict[str, Any]
) -> list[tuple[int, float, float]]:
    if not ks:
        return []
    train = with_component_vector(_split(pca_features, params["train_split"]))
    test = with_component_vector(_split(pca_features, params["test_split"]))
    scaler = StandardScaler(
        inputCol=COMPONENTS_VECTOR, outputCol=SCALED, withMean=True, withStd=True
    ).fit(train)
    indexer = StringIndexerModel.from_labels(labels, inputCol="label", outputCol=LABEL_INDEX)
    train_vectors = indexer.transform(scaler.transform(train)).select(LABEL_INDEX, SCALED).cache()
    test_vectors = scaler.transform(test).select("label", SCALED).cache()
    sweep_params = _with_reg_param(params, {"reg_param": params[LOGISTIC_REGRESSION]["reg_param"]})

    def refit(k: int) -> tuple[int, float, float]:
        start = time.perf_counter()
        head = VectorSlicer(inputCol=SCALED, outputCol=SLICED, indices=list(range(k)))
        model = _classifier(sweep_params, k, len(labels), SLICED).fit(head.transform(train_vectors))
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
