"""Nodes of the export pipeline: the fitted Spark models as a :class:`Predictor` (no Spark)."""

from __future__ import annotations

import itertools
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.ml.classification import (
    LogisticRegressionModel,
    MultilayerPerceptronClassificationModel,
)
from pyspark.ml.feature import StandardScalerModel

from fruits_kedro.model.engines import ModelArtifact
from fruits_kedro.model.predictor import Dense, Predictor
from fruits_kedro.pipelines.stages import labels_of, pca_stage


def _stage(model: PipelineModel, kind: type) -> Any:
    found = [s for s in model.stages if isinstance(s, kind)]
    if len(found) != 1:
        raise TypeError(f"expected one {kind.__name__} stage, found {len(found)}")
    return found[0]


def dense_layers(classifier: Any) -> tuple[Dense, ...]:
    """The classifier as dense layers ``(inputs, outputs)`` + bias."""
    if isinstance(classifier, LogisticRegressionModel):
        coefficients = classifier.coefficientMatrix.toArray()  # (classes, inputs)
        return (Dense(coefficients.T.copy(), classifier.interceptVector.toArray()),)
    if isinstance(classifier, MultilayerPerceptronClassificationModel):
        flat, sizes = classifier.weights.toArray(), classifier.getLayers()
        layers, offset = [], 0
        for inputs, outputs in itertools.pairwise(sizes):
            # Spark keeps each layer as an (outputs x inputs) column-major matrix, then the bias
            weights = flat[offset : offset + inputs * outputs].reshape(inputs, outputs)
            offset += inputs * outputs
            layers.append(Dense(weights, flat[offset : offset + outputs]))
            offset += outputs
        return tuple(layers)
    raise TypeError(f"cannot export a {type(classifier).__name__}")


def export_predictor(
    model_artifact: ModelArtifact,
    pca_model: PipelineModel,
    classifier_model: PipelineModel,
    image: dict[str, Any],
    classification_metrics: dict[str, Any],
) -> Predictor:
    """Everything ``fruits-predict`` needs, as plain arrays (no Spark to load it)."""
    centering = _stage(pca_model, StandardScalerModel)
    scaler = _stage(classifier_model, StandardScalerModel)
    classifier = classifier_model.stages[-2]
    return Predictor(
        artifact=model_artifact,
        resample=str(image["resample"]),
        pca_mean=centering.mean.toArray(),
        pca_components=pca_stage(pca_model).pc.toArray(),
        scaler_mean=scaler.mean.toArray(),
        scaler_std=scaler.std.toArray(),
        layers=dense_layers(classifier),
        labels=tuple(labels_of(classifier_model)),
        info={
            key: classification_metrics[key]
            for key in ("classifier", "k", "explained_variance", "accuracy", "macro_f1")
        },
    )
