"""The app's model file: MobileNetV2 and the folded head in one TFLite graph, its metadata read
by MediaPipe's own schema classes, and MediaPipe's ImageClassifier running the exported files."""

from __future__ import annotations

import importlib
import itertools
from pathlib import Path

import numpy as np
import pytest

from fruits_kedro.model.app_model import AppModel, Head, chained, folded, standardisation, with_head
from fruits_kedro.model.engines import TFLITE, artifact_of, export_artifact, get_engine
from fruits_kedro.model.imaging import decode_image
from fruits_kedro.model.mobilenet import load_weights
from fruits_kedro.model.tflite_metadata import ModelCard, read_labels, with_metadata
from tests.conftest import read_delta

SIZE = 32
LABELS = ("Apple", "Banana", "Cherry")


@pytest.fixture(scope="module")
def backbone(random_weights: Path) -> bytes:
    artifact = export_artifact(load_weights(str(random_weights), SIZE), TFLITE, SIZE, 1, 1)
    assert isinstance(artifact.payload, bytes)
    return artifact.payload


def card(labels: tuple[str, ...] = LABELS) -> ModelCard:
    return ModelCard(
        "Fruits!", "1.2", "A test model.", "Fruits! team", "CC BY-SA 4.0", labels, SIZE
    )


def random_head(rng: np.random.Generator, transform: str, hidden: int | None = None) -> Head:
    sizes = [1280, *([hidden] if hidden else []), len(LABELS)]
    layers = tuple(
        (rng.normal(size=(a, b)) * 0.3, rng.normal(size=b)) for a, b in itertools.pairwise(sizes)
    )
    return Head(layers, transform)


@pytest.mark.parametrize(("transform", "hidden"), [("none", None), ("sqrt", None), ("none", 7)])
def test_the_one_graph_gives_the_head_on_the_backbone_features(backbone, transform, hidden):
    rng = np.random.default_rng(3)
    head = random_head(rng, transform, hidden)
    pixels = rng.integers(0, 256, size=(5, SIZE, SIZE, 3), dtype=np.uint8)
    engine = get_engine(artifact_of(backbone, TFLITE, SIZE, 1, 1))

    app = AppModel(with_head(backbone, head, list(LABELS)))

    assert app.input_size == SIZE
    np.testing.assert_allclose(app(pixels), head(engine(pixels)), atol=1e-5)


def test_folding_the_affine_stages_changes_no_probability():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(6, 10))
    mean, components = rng.normal(size=10), rng.normal(size=(10, 4))
    scale_mean, scale_std = rng.normal(size=4), np.array([1.0, 0.0, 2.0, 0.5])  # one constant
    weights, bias = rng.normal(size=(4, 3)), rng.normal(size=3)
    std = np.where(scale_std > 0, scale_std, 1.0)
    staged = np.where(scale_std > 0, ((x - mean) @ components - scale_mean) / std, 0.0)
    logits = staged @ weights + bias
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

    affine = chained(
        (np.eye(10), -mean), (components, np.zeros(4)), standardisation(scale_mean, scale_std)
    )
    head = folded(affine, ((weights, bias),))

    assert head.layers[0][0].shape == (10, 3)  # one matrix and a bias
    np.testing.assert_allclose(head(x), expected, rtol=1e-6)


def test_the_metadata_is_what_mediapipe_reads(backbone):
    schema = importlib.import_module("mediapipe.tasks.metadata.metadata_schema_py_generated")
    from ai_edge_litert import schema_py_generated as tflite

    head = random_head(np.random.default_rng(5), "none")
    content = with_metadata(with_head(backbone, head, list(LABELS)), card())

    model = tflite.ModelT.InitFromPackedBuf(content, 0)
    (entry,) = [m for m in model.metadata if m.name == b"TFLITE_METADATA"]
    buffer = bytes(model.buffers[entry.buffer].data)
    assert schema.ModelMetadata.ModelMetadataBufferHasIdentifier(buffer, 0)
    metadata = schema.ModelMetadataT.InitFromPackedBuf(buffer, 0)
    assert (metadata.name, metadata.version, metadata.author, metadata.license) == (
        b"Fruits!",
        b"1.2",
        b"Fruits! team",
        b"CC BY-SA 4.0",
    )
    (subgraph,) = metadata.subgraphMetadata
    (image,), (output,) = subgraph.inputTensorMetadata, subgraph.outputTensorMetadata
    assert image.content.contentPropertiesType == schema.ContentProperties.ImageProperties
    assert image.content.contentProperties.colorSpace == schema.ColorSpaceType.RGB
    (normalization,) = image.processUnits
    assert (normalization.options.mean.tolist(), normalization.options.std.tolist()) == (
        [127.5],
        [127.5],
    )
    (labels,) = output.associatedFiles
    assert (labels.name, labels.type) == (
        b"labels.txt",
        schema.AssociatedFileType.TENSOR_AXIS_LABELS,
    )
    assert read_labels(content) == list(LABELS)


@pytest.fixture(scope="module")
def exported(mini_run) -> dict[str, bytes]:
    folder = mini_run.data / "06_models/app"
    return {
        name: (folder / f"fruits_classifier{suffix}.tflite").read_bytes()
        for name, suffix in (("fp32", ""), ("int8", "_int8"))
    }


@pytest.mark.shared
@pytest.mark.e2e
def test_the_exported_file_is_the_pipeline_on_every_test_image(mini_run, exported):
    predictions = read_delta(mini_run.data / "07_model_output/test_predictions")
    app = AppModel(exported["fp32"])
    labels = read_labels(exported["fp32"])
    for path, predicted, confidence in zip(
        predictions["path"], predictions["predicted_label"], predictions["confidence"], strict=True
    ):
        pixels = decode_image(Path(path.removeprefix("file:")).read_bytes(), 224, "bilinear")
        probabilities = app(pixels[None])[0]
        assert labels[int(np.argmax(probabilities))] == predicted
        assert float(probabilities.max()) == pytest.approx(confidence, abs=1e-4)


@pytest.mark.shared
@pytest.mark.e2e
@pytest.mark.parametrize("name", ["fp32", "int8"])
def test_mediapipe_image_classifier_runs_the_exported_file(mini_run, exported, name):
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core import base_options

    options = vision.ImageClassifierOptions(
        base_options=base_options.BaseOptions(model_asset_buffer=exported[name]), max_results=3
    )
    app, labels = AppModel(exported[name]), read_labels(exported[name])
    photos = [
        p for p in sorted((mini_run.images / "Test").rglob("*.jpg")) if p.parent.name in labels
    ]
    assert len(photos) == 24  # the bad files of the run are quarantined, not classified
    agreed = 0
    with vision.ImageClassifier.create_from_options(options) as classifier:
        for photo in photos:
            decoded = decode_image(photo.read_bytes(), 224, "bilinear")
            full = decode_image(photo.read_bytes(), 100, "bilinear")  # MediaPipe resizes itself
            result = classifier.classify(mp.Image(image_format=mp.ImageFormat.SRGB, data=full))
            (classes,) = result.classifications
            top = classes.categories[0]
            assert top.category_name in labels
            assert [c.score for c in classes.categories] == sorted(
                (c.score for c in classes.categories), reverse=True
            )
            agreed += top.category_name == labels[int(np.argmax(app(decoded[None])[0]))]
    assert agreed >= 0.9 * len(photos)
