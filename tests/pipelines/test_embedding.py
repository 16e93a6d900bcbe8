"""Embedding: only what the store lacks is read and sent through the model, a chunk per commit;
bad images are quarantined with their reason; every input is accounted for."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from fruits_kedro.datasets import EmbeddingStoreDataset
from fruits_kedro.datasets.image_reader_dataset import ImageReader, literal_path
from fruits_kedro.model.engines import KERAS, export_artifact, get_engine
from fruits_kedro.model.imaging import decode_image
from fruits_kedro.model.mobilenet import FEATURE_DIM, build_model, preprocess
from fruits_kedro.pipelines.embedding.incremental import RunChanges
from fruits_kedro.pipelines.embedding.nodes import (
    QUARANTINE_COLUMNS,
    quarantine_images,
    reconcile_counts,
)
from tests.conftest import embed_folder, jpeg_bytes, noisy_jpeg_bytes

SIZE = 32
IMAGE = {"input_size": SIZE, "resample": "bilinear"}
PARAMS = {"partitions": None, "partitions_per_core": 2, "chunk_size": 5000}


@pytest.fixture(scope="module")
def model():
    return build_model(SIZE, None)


@pytest.fixture(scope="module")
def artifact(model):
    return export_artifact(model.get_weights(), KERAS, SIZE, threads=1, batch_size=4)


@dataclass
class Run:
    """What one run of the embedding nodes gave, read back."""

    rows: dict[str, Any]  # file name -> row of image_embeddings
    counts: dict[str, int]
    embeddings: Any


def write(folder: Path, files: dict[str, bytes]) -> None:
    for name, content in files.items():
        target = folder / "Test" / "Fruit" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


def run(
    folder: Path,
    store: EmbeddingStoreDataset,
    artifact,
    *,
    image: dict[str, Any] = IMAGE,
    params: dict[str, Any] = PARAMS,
    stop_after: int | None = None,
) -> Run | None:
    """One run of the embedding nodes (``stop_after`` chunks: the run dies there)."""
    done = embed_folder(folder, store, artifact, image=image, params=params, stop_after=stop_after)
    if done is None:
        return None
    embeddings, counts = done
    rows = {r.path.rsplit("/", 1)[1]: r for r in embeddings.collect()}
    return Run(rows, counts, embeddings)


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_features_are_the_models_for_every_usable_image(spark, tmp_path, model, artifact):
    contents = {f"{i}.jpg": noisy_jpeg_bytes(i) for i in range(9)}
    write(tmp_path / "in", contents)

    done = run(tmp_path / "in", EmbeddingStoreDataset(filepath=str(tmp_path / "store")), artifact)

    assert {name: r.image_id for name, r in done.rows.items()} == {
        name: sha(c) for name, c in contents.items()
    }
    assert all(r.reason is None for r in done.rows.values())
    names = [f"{i}.jpg" for i in range(9)]
    features = np.array([done.rows[n].features for n in names], dtype=np.float32)
    pixels = np.stack([decode_image(contents[n], SIZE) for n in names])
    assert features.shape == (9, FEATURE_DIM)
    np.testing.assert_allclose(features, model.predict_on_batch(preprocess(pixels)), atol=1e-5)
    assert done.counts["embedded"] == 9
    assert done.counts["new"] == 9


def test_bad_images_get_a_reason_and_no_features_good_ones_are_not_disturbed(
    spark, tmp_path, artifact
):
    contents = {
        "good.jpg": jpeg_bytes(size=(40, 30)),
        "empty.jpg": b"",
        "text.jpg": b"hello",
        "truncated.jpg": noisy_jpeg_bytes(3)[:2000],
        "good2.jpg": noisy_jpeg_bytes(4),
    }
    write(tmp_path / "in", contents)

    store = EmbeddingStoreDataset(filepath=str(tmp_path / "store"))
    done = run(tmp_path / "in", store, artifact)
    again = run(tmp_path / "in", store, artifact)

    rows = done.rows
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
    quarantine = quarantine_images(done.embeddings)
    assert quarantine.columns == QUARANTINE_COLUMNS
    assert sorted(r.path.rsplit("/", 1)[1] for r in quarantine.collect()) == [
        "empty.jpg",
        "text.jpg",
        "truncated.jpg",
    ]
    assert done.counts == {
        "read": 5,
        "usable": 2,
        "quarantined": 3,
        "erased": 0,
        "embedded": 2,
        "reused": 0,
        "new": 5,
        "changed": 0,
        "unchanged": 0,
        "removed": 0,
        "feature_dim": FEATURE_DIM,
    }
    # the same files again: nothing read or embedded, the bad ones still quarantined
    assert (again.counts["embedded"], again.counts["unchanged"], again.counts["reused"]) == (
        0,
        5,
        5,
    )
    assert again.counts["quarantined"] == 3
    assert again.rows["text.jpg"].reason == rows["text.jpg"].reason
    assert again.rows["good2.jpg"].features == rows["good2.jpg"].features


def test_new_duplicate_changed_and_deleted_files(spark, tmp_path, artifact):
    folder = tmp_path / "in"
    write(folder, {f"{i}.jpg": noisy_jpeg_bytes(i) for i in range(4)})
    store = EmbeddingStoreDataset(filepath=str(tmp_path / "store"))
    first = run(folder, store, artifact)
    changed = folder / "Test/Fruit/2.jpg"
    old_id = first.rows["2.jpg"].image_id

    write(folder, {"new.jpg": noisy_jpeg_bytes(50), "copy.jpg": noisy_jpeg_bytes(50)})
    write(folder, {"copy-of-0.jpg": noisy_jpeg_bytes(0)})  # bytes already stored
    changed.write_bytes(noisy_jpeg_bytes(60))
    os.utime(changed, (changed.stat().st_atime, changed.stat().st_mtime + 10))
    (folder / "Test/Fruit/3.jpg").unlink()
    second = run(folder, store, artifact)

    assert second.counts["embedded"] == 2  # new.jpg (once for two paths) and 2.jpg's new bytes
    assert second.counts["new"] == 3
    assert second.counts["changed"] == 1
    assert second.counts["removed"] == 1
    assert second.counts["unchanged"] == 2
    assert "3.jpg" not in second.rows
    assert second.rows["new.jpg"].features == second.rows["copy.jpg"].features
    assert second.rows["copy-of-0.jpg"].features == first.rows["0.jpg"].features
    assert second.rows["2.jpg"].image_id == sha(noisy_jpeg_bytes(60)) != old_id
    assert old_id not in {r.image_id for r in second.rows.values()}
    assert second.counts["read"] == len(second.rows) == 6


def test_chunks_commit_one_by_one_and_a_killed_run_resumes(spark, tmp_path, artifact):
    contents = {f"{i}.jpg": noisy_jpeg_bytes(i) for i in range(7)}
    contents["twin.jpg"] = contents["0.jpg"]
    write(tmp_path / "in", contents)
    store = EmbeddingStoreDataset(filepath=str(tmp_path / "store"))
    params = {**PARAMS, "chunk_size": 3}

    assert run(tmp_path / "in", store, artifact, params=params, stop_after=1) is None
    committed = store.load().embeddings.count()
    resumed = run(tmp_path / "in", store, artifact, params=params)

    assert 0 < committed < 7
    assert committed + resumed.counts["embedded"] == 7  # each distinct image once, in all
    assert resumed.counts["reused"] >= committed
    assert resumed.rows["twin.jpg"].features == resumed.rows["0.jpg"].features
    history = store.table("embeddings").history().filter(F.col("operation") == "MERGE")
    assert history.count() >= 3  # one commit per chunk (8 files, 3 per chunk)


def test_another_model_key_re_embeds_everything_under_its_own(spark, tmp_path, artifact):
    write(tmp_path / "in", {f"{i}.jpg": noisy_jpeg_bytes(i) for i in range(3)})
    store = EmbeddingStoreDataset(filepath=str(tmp_path / "store"))
    first = run(tmp_path / "in", store, artifact)

    other = run(tmp_path / "in", store, artifact, image={**IMAGE, "resample": "nearest"})
    again = run(tmp_path / "in", store, artifact)

    assert other.counts["embedded"] == 3
    assert other.rows["0.jpg"].features != first.rows["0.jpg"].features
    assert store.load().embeddings.select("model_key").distinct().count() == 2
    assert again.counts["embedded"] == 0


def test_erased_images_leave_the_store_and_are_never_embedded_again(spark, tmp_path, artifact):
    contents = {f"{i}.jpg": noisy_jpeg_bytes(i) for i in range(3)}
    write(tmp_path / "in", contents)
    store = EmbeddingStoreDataset(filepath=str(tmp_path / "store"))
    run(tmp_path / "in", store, artifact)

    store.erase(spark.createDataFrame([(sha(contents["1.jpg"]),)], "image_id string"))
    after = run(tmp_path / "in", store, artifact)

    assert "1.jpg" not in after.rows
    assert after.counts["erased"] == 1
    assert after.counts["embedded"] == 0
    assert after.counts["read"] == 3
    ids = {r.image_id for r in store.load().embeddings.collect()}
    assert sha(contents["1.jpg"]) not in ids
    assert store.load().erasures.count() == 1

    assert sha(contents["1.jpg"]) in ids_in_files(tmp_path / "store/embeddings")  # old versions
    spark.conf.set(RETENTION_CHECK, "false")
    try:
        store.vacuum(0)
    finally:
        spark.conf.unset(RETENTION_CHECK)
    assert sha(contents["1.jpg"]) not in ids_in_files(tmp_path / "store/embeddings")
    assert sha(contents["0.jpg"]) in ids_in_files(tmp_path / "store/embeddings")


RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"


def ids_in_files(table: Path) -> set[str]:
    """The ``image_id`` values in every Parquet file of a Delta table's folder, any version."""
    return {i for part in table.glob("*.parquet") for i in pd.read_parquet(part)["image_id"]}


def empty_changes(spark) -> RunChanges:
    return RunChanges(
        files=spark.createDataFrame([], "path string, change string"),
        inferred=spark.createDataFrame([], "image_id string, reason string"),
    )


def embeddings_of(spark, rows: list[tuple[str, list[float] | None, str | None]]):
    return spark.createDataFrame(
        [(f"id-{p}", p, *rest) for p, *rest in rows],
        "image_id string, path string, features array<float>, reason string",
    )


def test_reconcile_counts_fails_loudly_when_an_image_is_lost(spark):
    embeddings = embeddings_of(
        spark, [("a", [0.0], None), ("b", None, "empty file (0 bytes)"), ("c", None, None)]
    )
    with pytest.raises(ValueError, match="1 without features or reason"):
        reconcile_counts(spark.range(3), embeddings, empty_changes(spark))


def test_reconcile_counts_fails_loudly_when_an_image_is_counted_twice(spark):
    embeddings = embeddings_of(spark, [("a", [0.0], None), ("a", [0.0], None)])
    with pytest.raises(ValueError, match="1 path\\(s\\) twice"):
        reconcile_counts(spark.range(2), embeddings, empty_changes(spark))


def test_the_reader_reads_exactly_the_files_named(spark, tmp_path):
    write(tmp_path, {"a[1].jpg": b"one", "b.jpg": b"two", "c.jpg": b"", "d.jpg": b"four"})
    folder = tmp_path / "Test/Fruit"
    named = [(f"file:{folder / n}", (folder / n).stat().st_size) for n in ("a[1].jpg", "c.jpg")]

    read = ImageReader().read(named)
    rows = read.collect()

    assert sorted((Path(r.path).name, bytes(r.content)) for r in rows) == [
        ("a[1].jpg", b"one"),
        ("c.jpg", b""),
    ]
    assert literal_path("x/a[1]*.jpg") == "x/a\\[1\\]\\*.jpg"
    # The zero-byte row is made in the JVM: no Python RDD, hence no Python worker to read.
    assert "ExistingRDD" not in read._jdf.queryExecution().executedPlan().toString()


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
