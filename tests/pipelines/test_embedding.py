"""Embedding: one pass decodes every image once, embeds the usable ones, quarantines the rest."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from fruits_kedro.model.engines import KERAS, export_artifact, get_engine
from fruits_kedro.model.imaging import decode_image
from fruits_kedro.model.mobilenet import FEATURE_DIM, build_model, preprocess
from fruits_kedro.pipelines.embedding.nodes import (
    QUARANTINE_COLUMNS,
    embed_images,
    quarantine_images,
    reconcile_counts,
)
from tests.conftest import jpeg_bytes, noisy_jpeg_bytes

SIZE = 32
IMAGE = {"input_size": SIZE, "resample": "bilinear"}
PARAMS = {"partitions": None, "partitions_per_core": 3}
SCHEMA = "image_id string, path string, label string, split string, size_bytes long, content binary"


@pytest.fixture(scope="module")
def model():
    return build_model(SIZE, None)


@pytest.fixture(scope="module")
def artifact(model):
    return export_artifact(model.get_weights(), KERAS, SIZE, threads=1, batch_size=4)


def ingested(spark, contents: dict[str, bytes]):
    rows = [
        (f"id-{name}", f"file:/in/Test/Fruit/{name}", "Fruit", "Test", len(c), bytearray(c))
        for name, c in contents.items()
    ]
    return spark.createDataFrame(rows, SCHEMA)


def test_features_are_the_models_for_every_usable_image(spark, model, artifact):
    contents = {f"{i}.jpg": noisy_jpeg_bytes(i) for i in range(9)}

    rows = embed_images(ingested(spark, contents), artifact, IMAGE, PARAMS).collect()

    rows = sorted(rows, key=lambda r: int(r.path.rsplit("/", 1)[1].split(".")[0]))
    assert [r.image_id for r in rows] == [f"id-{i}.jpg" for i in range(9)]
    assert all(r.reason is None for r in rows)
    features = np.array([r.features for r in rows], dtype=np.float32)
    pixels = np.stack([decode_image(noisy_jpeg_bytes(i), SIZE) for i in range(9)])
    assert features.shape == (9, FEATURE_DIM)
    np.testing.assert_allclose(features, model.predict_on_batch(preprocess(pixels)), atol=1e-5)


def test_bad_images_get_a_reason_and_no_features_good_ones_are_not_disturbed(spark, artifact):
    contents = {
        "good.jpg": jpeg_bytes(size=(40, 30)),
        "empty.jpg": b"",
        "text.jpg": b"hello",
        "truncated.jpg": noisy_jpeg_bytes(3)[:2000],
        "good2.jpg": noisy_jpeg_bytes(4),
    }

    embeddings = embed_images(ingested(spark, contents), artifact, IMAGE, PARAMS).cache()

    rows = {r.path.rsplit("/", 1)[1]: r for r in embeddings.collect()}
    assert rows.keys() == contents.keys()
    assert rows["empty.jpg"].reason == "empty file (0 bytes)"
    assert rows["text.jpg"].reason.startswith("not an image")
    assert "truncated" in rows["truncated.jpg"].reason
    for name in ("empty.jpg", "text.jpg", "truncated.jpg"):
        assert rows[name].features is None
    for name in ("good.jpg", "good2.jpg"):
        assert rows[name].reason is None
        assert len(rows[name].features) == FEATURE_DIM
        assert np.std(rows[name].features) > 0  # never a zero vector
    quarantine = quarantine_images(embeddings)
    assert quarantine.columns == QUARANTINE_COLUMNS
    assert sorted(r.path.rsplit("/", 1)[1] for r in quarantine.collect()) == [
        "empty.jpg",
        "text.jpg",
        "truncated.jpg",
    ]
    assert reconcile_counts(ingested(spark, contents), embeddings) == {
        "read": 5,
        "embedded": 2,
        "quarantined": 3,
        "feature_dim": FEATURE_DIM,
    }


def embeddings_of(spark, rows: list[tuple[str, list[float] | None, str | None]]):
    return spark.createDataFrame(rows, "path string, features array<float>, reason string")


def test_reconcile_counts_fails_loudly_when_an_image_is_lost(spark):
    embeddings = embeddings_of(spark, [("a", [0.0], None), ("b", None, "empty file (0 bytes)")])
    with pytest.raises(ValueError, match="read 3 != embedded 1 \\+ quarantined 1"):
        reconcile_counts(spark.range(3), embeddings)


def test_reconcile_counts_fails_loudly_when_an_image_is_counted_twice(spark):
    embeddings = embeddings_of(spark, [("a", [0.0], None), ("a", [0.0], None)])
    with pytest.raises(ValueError, match="1 path\\(s\\) twice"):
        reconcile_counts(spark.range(2), embeddings)


def test_each_python_worker_builds_its_engine_once_across_tasks(spark, artifact):
    shipped = spark.sparkContext.broadcast(artifact)

    def engines_seen(batches):
        for batch in batches:
            yield pd.DataFrame(
                {
                    "pid": [os.getpid()],
                    "engine": [id(get_engine(shipped.value))],
                    "rows": [len(batch)],
                }
            )

    rows = (
        spark.range(400)
        .repartition(12)
        .mapInPandas(engines_seen, "pid long, engine long, rows long")
    )

    seen = rows.collect()
    assert sum(r.rows for r in seen) == 400
    per_worker: dict[int, set[int]] = {}
    for r in seen:
        per_worker.setdefault(r.pid, set()).add(r.engine)
    assert len(seen) >= 12  # many tasks...
    assert all(len(engines) == 1 for engines in per_worker.values())  # ...one engine per worker
