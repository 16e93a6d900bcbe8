"""Ingestion: the catalog's binaryFile reader, and label/split from the path."""

from __future__ import annotations

from pathlib import Path

import yaml
from kedro_datasets.spark import SparkDatasetV2
from pyspark.sql import functions as F

from fruits_kedro.pipelines.ingestion.nodes import label_from_path, label_images, split_from_path
from tests.conftest import PROJECT_ROOT, jpeg_bytes

SPLITS = ["Training", "Test"]


def raw_images_dataset(folder: Path) -> SparkDatasetV2:
    """The project's own ``raw_images`` entry, pointed at ``folder``."""
    entry = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog.yml").read_text())["raw_images"]
    return SparkDatasetV2(
        filepath=str(folder), file_format=entry["file_format"], load_args=entry["load_args"]
    )


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
    assert set(labelled.columns) >= {"image_id", "path", "label", "split", "content", "size_bytes"}


def test_image_id_is_the_content_hash(spark, tmp_path):
    import hashlib

    (tmp_path / "Test/Kiwi").mkdir(parents=True)
    content = jpeg_bytes((1, 2, 3))
    (tmp_path / "Test/Kiwi/x.jpg").write_bytes(content)
    (tmp_path / "Test/Kiwi/copy.jpg").write_bytes(content)

    rows = label_images(raw_images_dataset(tmp_path).load(), {"splits": SPLITS}).collect()

    assert {r.image_id for r in rows} == {hashlib.sha256(content).hexdigest()}
    assert all(r.size_bytes == len(content) for r in rows)


def test_zero_byte_files_are_kept_although_spark_skips_them(spark, tmp_path):
    (tmp_path / "Training/Fig 1").mkdir(parents=True)
    (tmp_path / "Training/Fig 1/ok.jpg").write_bytes(jpeg_bytes())
    (tmp_path / "Training/Fig 1/empty.jpg").write_bytes(b"")
    raw = raw_images_dataset(tmp_path).load()
    assert raw.count() == 1  # what Spark's scan alone gives

    rows = {Path(r.path).name: r for r in label_images(raw, {"splits": SPLITS}).collect()}

    assert rows.keys() == {"ok.jpg", "empty.jpg"}
    assert (rows["empty.jpg"].size_bytes, bytes(rows["empty.jpg"].content)) == (0, b"")
    assert rows["empty.jpg"].label == rows["ok.jpg"].label == "Fig 1"
