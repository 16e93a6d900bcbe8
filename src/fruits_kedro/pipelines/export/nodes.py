"""Nodes of the export pipeline: the app's model files (MobileNetV2 and the folded head in one
TFLite graph, fp32 and int8, with their metadata and labels), their accuracy on the held-out
split and their model card."""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd
from pyspark import Broadcast
from pyspark.ml import PipelineModel
from pyspark.ml.classification import (
    LogisticRegressionModel,
    MultilayerPerceptronClassificationModel,
)
from pyspark.ml.feature import StandardScalerModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from fruits_kedro.model import cache as model_cache
from fruits_kedro.model.app_model import (
    AppModel,
    Head,
    chained,
    folded,
    standardisation,
    with_head,
)
from fruits_kedro.model.engines import TFLITE, TFLITE_INT8, ModelArtifact, export_artifact
from fruits_kedro.model.imaging import ImageDecodeError, decode_image
from fruits_kedro.model.mobilenet import load_weights
from fruits_kedro.model.quantize import to_weight_int8_tflite
from fruits_kedro.model.tflite_metadata import ModelCard, read_labels, with_metadata
from fruits_kedro.pipelines.embedding.incremental import model_key
from fruits_kedro.pipelines.stages import labels_of, pca_stage

logger = logging.getLogger(__name__)

FP32, INT8 = "fp32", "int8"


def _stage(model: PipelineModel, kind: type) -> Any:
    found = [s for s in model.stages if isinstance(s, kind)]
    if len(found) != 1:
        raise TypeError(f"expected one {kind.__name__} stage, found {len(found)}")
    return found[0]


def dense_layers(classifier: Any) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The classifier as dense layers ``(weights (inputs, outputs), bias)``."""
    if isinstance(classifier, LogisticRegressionModel):
        coefficients = classifier.coefficientMatrix.toArray()  # (classes, inputs)
        return ((coefficients.T.copy(), classifier.interceptVector.toArray()),)
    if isinstance(classifier, MultilayerPerceptronClassificationModel):
        flat, sizes = classifier.weights.toArray(), classifier.getLayers()
        layers, offset = [], 0
        for inputs, outputs in itertools.pairwise(sizes):
            # Spark keeps each layer as an (outputs x inputs) column-major matrix, then the bias
            weights = flat[offset : offset + inputs * outputs].reshape(inputs, outputs)
            offset += inputs * outputs
            layers.append((weights, flat[offset : offset + outputs]))
            offset += outputs
        return tuple(layers)
    raise TypeError(f"cannot export a {type(classifier).__name__}")


def fold_head(
    pca_model: PipelineModel, classifier_model: PipelineModel, head: dict[str, Any]
) -> Head:
    """The trained stages after the backbone as one head: the classifier's standardisation
    (and, when the head reads the principal components, PCA's centring and projection) fold
    into its first dense layer, all affine; a square root of the features stays before it."""
    scaler = _stage(classifier_model, StandardScalerModel)
    standardise = standardisation(scaler.mean.toArray(), scaler.std.toArray())
    if head.get("features", "pca") == "pca":
        centering = _stage(pca_model, StandardScalerModel)
        components = pca_stage(pca_model).pc.toArray()  # (features, k)
        mean = centering.mean.toArray()
        affine = chained(
            (np.eye(len(mean)), -mean), (components, np.zeros(components.shape[1])), standardise
        )
    else:
        affine = standardise
    layers = dense_layers(classifier_model.stages[-2])
    return folded(affine, layers, str(head.get("transform", "none")))


def app_backbones(
    model_artifact: ModelArtifact,
    image: dict[str, Any],
    embedding: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, bytes]:
    """The TFLite MobileNetV2 of each app file.

    fp32: the run's own model (converted here when the run used Keras). int8, when
    ``params["int8"]`` is set: the run's model when it is the full-integer one (the head was
    trained on its features), else MobileNetV2 with int8 weights and float activations, whose
    features are close enough to fp32's for the head trained on them. Converted weights
    (a ``.tflite`` packaged for a cluster without TensorFlow) give no int8 file.
    """
    size, source = int(image["input_size"]), str(embedding["weights"])
    if model_artifact.engine == TFLITE and isinstance(model_artifact.payload, bytes):
        fp32 = model_artifact.payload
    else:
        fp32 = _converted(source, size, TFLITE)
    backbones = {FP32: fp32}
    if not params["int8"]:
        return backbones
    if model_artifact.engine == TFLITE_INT8 and isinstance(model_artifact.payload, bytes):
        backbones[INT8] = model_artifact.payload
    elif model_cache.read_converted(source, TFLITE, size) is not None:
        logger.info("no int8 app file: %s is a converted model, not weights", source)
    else:
        backbones[INT8] = to_weight_int8_tflite(load_weights(source, size), size)
    return backbones


def _converted(source: str, size: int, engine: str) -> bytes:
    converted = model_cache.read_converted(source, engine, size)
    if converted is not None:
        return converted
    artifact = export_artifact(load_weights(source, size), engine, size, 1, 1)
    assert isinstance(artifact.payload, bytes)
    return artifact.payload


def export_app_models(
    *,
    backbones: dict[str, bytes],
    pca_model: PipelineModel,
    classifier_model: PipelineModel,
    classification_head: dict[str, Any],
    image: dict[str, Any],
    params: dict[str, Any],
) -> tuple[bytes, bytes]:
    """The fp32 and int8 app files: a ``uint8`` RGB image in, the class probabilities out,
    with TFLite metadata and ``labels.txt`` (empty for int8 when it is not exported)."""
    head = fold_head(pca_model, classifier_model, classification_head)
    labels = labels_of(classifier_model)
    files: dict[str, bytes] = {}
    for name, backbone in backbones.items():
        card = ModelCard(
            name=f"{params['name']} ({name})",
            version=str(params["version"]),
            description=str(params["description"]).strip(),
            author=str(params["author"]),
            licence=str(params["licence"]),
            labels=tuple(labels),
            input_size=int(image["input_size"]),
        )
        files[name] = with_metadata(with_head(backbone, head, labels), card)
        logger.info("app model %s: %d classes, %.1f MB", name, len(labels), len(files[name]) / 1e6)
    return files[FP32], files.get(INT8, b"")


def evaluate_app_models(
    app_model: bytes,
    app_model_int8: bytes,
    ingested_images: DataFrame,
    image: dict[str, Any],
    classification: dict[str, Any],
) -> dict[str, Any]:
    """Top-1 accuracy of each app file on the held-out split, on the executors (each image
    decoded once, both files run on it)."""
    models = {FP32: app_model, **({INT8: app_model_int8} if app_model_int8 else {})}  # b"": off
    spark = ingested_images.sparkSession
    shipped = spark.sparkContext.broadcast(models)
    size, resample = int(image["input_size"]), str(image["resample"])

    schema = "path string, label string, " + ", ".join(f"{name} string" for name in models)
    held_out = ingested_images.filter(F.col("split") == classification["test_split"])
    predicted = held_out.select("path", "label", "content").mapInPandas(
        lambda batches: classify_batches(batches, shipped, size, resample), schema
    )
    scores = predicted.agg(
        F.count("*").alias("images"),
        *(F.avg((F.col(n) == F.col("label")).cast("double")).alias(n) for n in models),
        *(
            [F.avg((F.col(INT8) == F.col(FP32)).cast("double")).alias("int8_agrees")]
            if INT8 in models
            else []
        ),
    ).first()
    shipped.unpersist()
    result = scores.asDict() if scores is not None else {}
    logger.info("app models on %d held-out images: %s", result.get("images", 0), result)
    return {
        "images": int(result.get("images") or 0),
        "accuracy": {n: round(float(result.get(n) or 0.0), 6) for n in models},
        "int8_top1_agreement_with_fp32": result.get("int8_agrees"),
    }


def classify_batches(
    batches: Iterable[pd.DataFrame],
    shipped: Broadcast[dict[str, bytes]],
    size: int,
    resample: str,
) -> Iterator[pd.DataFrame]:
    """``path``, ``label`` and each app file's top-1 label of the decodable images."""
    runners = {name: AppModel(content) for name, content in shipped.value.items()}
    labels = read_labels(shipped.value[FP32])
    for batch in batches:
        rows = []
        for path, label, content in zip(
            batch["path"], batch["label"], batch["content"], strict=True
        ):
            try:
                pixels = decode_image(bytes(content), size, resample)[None]
            except ImageDecodeError:
                continue  # quarantined by the embedding, with its reason: not scored here
            row = {"path": path, "label": label}
            for name, runner in runners.items():
                row[name] = labels[int(np.argmax(runner(pixels)[0]))]
            rows.append(row)
        yield pd.DataFrame(rows, columns=["path", "label", *runners])


def model_card(
    *,
    app_model: bytes,
    app_model_int8: bytes,
    app_accuracy: dict[str, Any],
    pca_features: DataFrame,
    model_artifact: ModelArtifact,
    classification_metrics: dict[str, Any],
    image: dict[str, Any],
    embedding: dict[str, Any],
    classification: dict[str, Any],
    params: dict[str, Any],
) -> tuple[dict[str, Any], str]:
    """The model card of the app files, as JSON and Markdown."""
    training = pca_features.filter(F.col("split") == classification["train_split"])
    digest_row = training.agg(
        F.sha2(F.concat_ws(",", F.sort_array(F.collect_list("image_id"))), 256).alias("digest")
    ).first()
    files = {FP32: app_model, **({INT8: app_model_int8} if app_model_int8 else {})}
    card = {
        "name": params["name"],
        "version": str(params["version"]),
        "description": str(params["description"]).strip(),
        "author": params["author"],
        "licence": params["licence"],
        "classes": classification_metrics["classes"],
        "labels": read_labels(app_model),
        "train_images": classification_metrics["train_images"],
        "test_images": classification_metrics["test_images"],
        "training_images_digest": digest_row["digest"] if digest_row else None,
        "model_key": model_key(model_artifact, str(image["resample"])),
        "embedding_model": {
            "source": str(embedding["weights"]),
            "architecture": "MobileNetV2 (alpha 1.0, ImageNet, no top, average pooling)",
            "input_size": int(image["input_size"]),
            "resample": str(image["resample"]),
        },
        "head": {
            "classifier": classification_metrics.get("classifier"),
            **classification_metrics.get("head", {}),
            "inputs": classification_metrics.get("inputs"),
            "pipeline_test_accuracy": classification_metrics.get("accuracy"),
        },
        "files": {
            name: {
                "file": f"fruits_classifier{'' if name == FP32 else '_int8'}.tflite",
                "bytes": len(content),
                "sha256": hashlib.sha256(content).hexdigest(),
                "test_accuracy": app_accuracy["accuracy"].get(name),
            }
            for name, content in files.items()
        },
        "held_out_images": app_accuracy["images"],
        "int8_top1_agreement_with_fp32": app_accuracy.get("int8_top1_agreement_with_fp32"),
        "input": "uint8 RGB, (1, size, size, 3); normalisation x / 127.5 - 1 in the graph",
        "output": "the probability of each class, in the order of labels.txt (in the file)",
    }
    return card, card_markdown(card)


def card_markdown(card: dict[str, Any]) -> str:
    """The model card as a Markdown page."""
    rows = "\n".join(
        f"| `{f['file']}` | {f['bytes'] / 1e6:.1f} MB | {_percent(f['test_accuracy'])} |"
        for f in card["files"].values()
    )
    embedding = card["embedding_model"]
    return f"""# {card["name"]} {card["version"]}

{card["description"]}

Author: {card["author"]}. Licence: {card["licence"]}.

| file | size | top-1 on {card["held_out_images"]} held-out images |
|---|---|---|
{rows}

- Classes: {card["classes"]} (`labels.txt`, packed in each file's TFLite metadata).
- Trained on {card["train_images"]} images, tested on {card["test_images"]}; training images'
  content digest `{card["training_images_digest"]}`.
- Embedding model: {embedding["architecture"]}, {embedding["input_size"]} px ({embedding["resample"]}
  resize), from `{embedding["source"]}`; `model_key` `{card["model_key"]}`.
- Head: {card["head"]["classifier"]} on the {card["head"].get("features")} ({card["head"].get("transform")},
  {card["head"].get("inputs")} inputs, L2 {card["head"].get("reg_param")}), folded into one graph with
  the backbone (pipeline test accuracy {card["head"]["pipeline_test_accuracy"]}).
- Input: {card["input"]}. Output: {card["output"]}.
"""


def _percent(share: float | None) -> str:
    return "n/a" if share is None else f"{100 * share:.2f} %"
