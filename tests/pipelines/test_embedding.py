"""Embedding: the Spark stage computes the engine's features for every usable image."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from fruits_kedro.model.engines import KERAS, export_artifact, get_engine
from fruits_kedro.model.imaging import decode_image
from fruits_kedro.model.mobilenet import FEATURE_DIM, build_model, preprocess
from fruits_kedro.pipelines.embedding.nodes import embed_images, reconcile_counts
from tests.conftest import noisy_jpeg_bytes

SIZE = 32
IMAGE = {"input_size": SIZE, "resample": "bilinear"}
PARAMS = {"partitions": None, "partitions_per_core": 3}


@pytest.fixture(scope="module")
def model():
    return build_model(SIZE, None)


def preprocessed(spark, n: int, bad: int = 0):
    rows = [
        (
            f"id{i}",
            f"file:/in/Test/Fruit/{i}.jpg",
            "Fruit",
            "Test",
            bytearray(noisy_jpeg_bytes(i)),
            None,
        )
        for i in range(n)
    ]
    rows += [
        (
            f"bad{i}",
            f"file:/in/Test/Fruit/bad{i}.jpg",
            "Fruit",
            "Test",
            bytearray(b""),
            "empty file (0 bytes)",
        )
        for i in range(bad)
    ]
    return spark.createDataFrame(
        rows,
        "image_id string, path string, label string, split string, content binary, reason string",
    )


def test_features_are_the_models_for_every_usable_image(spark, model):
    artifact = export_artifact(model.get_weights(), KERAS, SIZE, threads=1, batch_size=4)

    embeddings = embed_images(preprocessed(spark, 9, bad=2), artifact, IMAGE, PARAMS)

    rows = sorted(embeddings.collect(), key=lambda r: int(r.image_id[2:]))
    assert [r.image_id for r in rows] == [f"id{i}" for i in range(9)]
    features = np.array([r.features for r in rows], dtype=np.float32)
    pixels = np.stack([decode_image(noisy_jpeg_bytes(i), SIZE) for i in range(9)])
    assert features.shape == (9, FEATURE_DIM)
    np.testing.assert_allclose(features, model.predict_on_batch(preprocess(pixels)), atol=1e-5)


def test_reconcile_counts_accounts_for_every_image(spark):
    ingested = spark.range(5)
    embeddings = spark.createDataFrame([([0.0] * 3,)] * 3, "features array<float>")
    quarantine = spark.range(2)

    counts = reconcile_counts(ingested, embeddings, quarantine)

    assert counts == {"read": 5, "embedded": 3, "quarantined": 2, "feature_dim": 3}


def test_reconcile_counts_fails_loudly_when_an_image_is_lost(spark):
    embeddings = spark.createDataFrame([([0.0],)] * 3, "features array<float>")
    with pytest.raises(ValueError, match="read 6 != embedded 3 \\+ quarantined 2"):
        reconcile_counts(spark.range(6), embeddings, spark.range(2))


def test_each_python_worker_builds_its_engine_once_across_tasks(spark, model):
    artifact = export_artifact(model.get_weights(), KERAS, SIZE, threads=1, batch_size=4)
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
