"""Ingestion: the catalog's image reader (zero-byte files included), label/split from the path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from kedro.io import DatasetError
from pyspark.sql import functions as F

from fruits_kedro.datasets import ImageFilesDataset
from fruits_kedro.datasets.image_files_dataset import glob_filter
from fruits_kedro.pipelines.ingestion.nodes import label_from_path, label_images, split_from_path
from tests.conftest import PROJECT_ROOT, jpeg_bytes

SPLITS = ["Training", "Test"]


def raw_images_dataset(folder: Path) -> ImageFilesDataset:
    """The project's own ``raw_images`` entry, pointed at ``folder``."""
    entry = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog.yml").read_text())["raw_images"]
    assert entry["type"] == "fruits_kedro.datasets.ImageFilesDataset"
    return ImageFilesDataset(filepath=str(folder), suffixes=entry["suffixes"])


def test_label_and_split_come_from_the_path(spark):
    paths = [
        (
            "file:/data/fruits/Training/Apple Granny Smith/r_12_100.jpg",
            "Apple Granny Smith",
            "Training",
        ),
        ("s3a://bucket/fruits-360/Test/Banana/1_100.jpg", "Banana", "Test"),
        ("file:/photos/Lemon/IMG_1.JPG", "Lemon", "other"),
        ("file:/data/Test/Training/Kiwi/a.jpg", "Kiwi", "Test"),
    ]
    df = spark.createDataFrame([(p,) for p, _, _ in paths], ["path"])
    rows = df.select(
        label_from_path(F.col("path")).alias("label"),
        split_from_path(F.col("path"), SPLITS).alias("split"),
    ).collect()
    assert [(r.label, r.split) for r in rows] == [(label, split) for _, label, split in paths]


def test_reader_takes_image_files_of_any_case_recursively(spark, tmp_path):
    for relative in [
        "Training/Apple/a.jpg",
        "Training/Apple/b.JPEG",
        "Test/Pear/c.Png",
        "Test/Pear/deep/d.jpg",
    ]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(jpeg_bytes())
    (tmp_path / "Training/Apple/readme.txt").write_text("not an image")
    (tmp_path / "Training/Apple/.DS_Store").write_bytes(b"\x00")

    labelled = label_images(raw_images_dataset(tmp_path).load(), {"splits": SPLITS})

    rows = sorted((Path(r.path).name, r.label, r.split) for r in labelled.collect())
    assert rows == [
        ("a.jpg", "Apple", "Training"),
        ("b.JPEG", "Apple", "Training"),
        ("c.Png", "Pear", "Test"),
        ("d.jpg", "deep", "Test"),
    ]
    assert set(labelled.columns) >= {"path", "label", "split", "content", "size_bytes"}


def test_each_file_is_described_by_its_size_and_modification_time(spark, tmp_path):
    """No content hash here: the embedding stage hashes the bytes it reads, and only of the
    files that are new or changed, which these columns tell."""
    (tmp_path / "Test/Kiwi").mkdir(parents=True)
    content = jpeg_bytes((1, 2, 3))
    for name, mtime in [("x.jpg", 1_600_000_000), ("copy.jpg", 1_700_000_000)]:
        (tmp_path / "Test/Kiwi" / name).write_bytes(content)
        os.utime(tmp_path / "Test/Kiwi" / name, (mtime, mtime))

    labelled = label_images(raw_images_dataset(tmp_path).load(), {"splits": SPLITS})

    assert labelled.columns == ["path", "label", "split", "size_bytes", "modified", "content"]
    rows = {Path(r.path).name: r for r in labelled.collect()}
    assert rows["x.jpg"].modified.timestamp() == 1_600_000_000
    assert rows["copy.jpg"].modified.timestamp() == 1_700_000_000
    assert all(r.size_bytes == len(content) for r in rows.values())
    assert all(bytes(r.content) == content for r in rows.values())


def test_zero_byte_files_are_kept_although_spark_skips_them(spark, tmp_path):
    (tmp_path / "Training/Fig 1").mkdir(parents=True)
    (tmp_path / "Training/Fig 1/ok.jpg").write_bytes(jpeg_bytes())
    (tmp_path / "Training/Fig 1/empty.jpg").write_bytes(b"")
    (tmp_path / "Training/Fig 1/empty.txt").write_bytes(b"")  # not an image name
    scanned = (
        spark.read.format("binaryFile").option("recursiveFileLookup", True).load(str(tmp_path))
    )
    assert scanned.count() == 1  # what Spark's scan alone gives: no zero-byte file

    rows = {
        Path(r.path).name: r
        for r in label_images(raw_images_dataset(tmp_path).load(), {"splits": SPLITS}).collect()
    }

    assert rows.keys() == {"ok.jpg", "empty.jpg"}
    plan = raw_images_dataset(tmp_path).load()._jdf.queryExecution().executedPlan().toString()
    assert "ExistingRDD" not in plan  # no Python RDD: the empty rows start no Python worker
    assert (rows["empty.jpg"].size_bytes, bytes(rows["empty.jpg"].content)) == (0, b"")
    assert rows["empty.jpg"].label == rows["ok.jpg"].label == "Fig 1"
    assert rows["empty.jpg"].path == rows["ok.jpg"].path.replace("ok.jpg", "empty.jpg")


def test_the_reader_ships_no_listing_to_the_executors(spark, tmp_path):
    """Only the zero-byte files are added from the walk: the plan has no local relation
    of the whole listing, however many files there are."""
    (tmp_path / "Test/Fig").mkdir(parents=True)
    for i in range(50):
        (tmp_path / f"Test/Fig/{i}.jpg").write_bytes(jpeg_bytes())
    dataset = raw_images_dataset(tmp_path)

    assert list(dataset.empty_files()) == []
    plan = dataset.load()._jdf.queryExecution().optimizedPlan().toString()
    assert "LocalRelation" not in plan
    (tmp_path / "Test/Fig/empty.PNG").write_bytes(b"")
    assert [Path(p).name for p in dataset.empty_files()] == ["empty.PNG"]


def test_glob_filter_matches_each_suffix_in_any_case():
    assert glob_filter(["jpg", "png"]) == "*.{[jJ][pP][gG],[pP][nN][gG]}"


def test_the_reader_is_read_only(tmp_path, spark):
    with pytest.raises(DatasetError, match="read-only"):
        raw_images_dataset(tmp_path).save(spark.createDataFrame([(1,)], ["x"]))
