"""``SwapSparkDataset``: a CSV folder output that a failed save leaves at its previous version."""

from __future__ import annotations

import pytest
import yaml
from kedro.io import AbstractDataset, DatasetError
from pyspark.sql import functions as F

from fruits_kedro.datasets import SwapSparkDataset
from fruits_kedro.datasets.swap import OLD
from tests.conftest import PROJECT_ROOT


def csv_dataset(filepath: str) -> SwapSparkDataset:
    """The project's own ``pca_features_csv`` entry (header, gzip), pointed at ``filepath``."""
    entry = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog.yml").read_text())["pca_features_csv"]
    dataset = AbstractDataset.from_config("pca_features_csv", {**entry, "filepath": filepath})
    assert isinstance(dataset, SwapSparkDataset)
    return dataset


def rows(frame) -> list[tuple]:
    return sorted(tuple(row) for row in frame.collect())


@pytest.fixture
def first(spark):
    return spark.createDataFrame(
        [("a.jpg", "Apple", 0.5), ("b.jpg", "Kiwi", -1.25)],
        "path string, label string, pc_1 double",
    )


def test_a_csv_round_trip(spark, tmp_path, first):
    dataset = csv_dataset(str(tmp_path / "features.csv"))

    dataset.save(first)
    loaded = dataset.load()

    assert loaded.columns == ["path", "label", "pc_1"]
    assert rows(loaded) == [("a.jpg", "Apple", 0.5), ("b.jpg", "Kiwi", -1.25)]
    parts = [p.name for p in (tmp_path / "features.csv").iterdir() if p.name.startswith("part-")]
    assert parts
    assert all(name.endswith(".csv.gz") for name in parts)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.csv"]


def test_a_second_save_replaces_the_first(spark, tmp_path, first):
    dataset = csv_dataset(str(tmp_path / "features.csv"))
    dataset.save(first)

    dataset.save(first.filter("label = 'Kiwi'").withColumn("pc_1", F.lit(2.0)))

    assert rows(dataset.load()) == [("b.jpg", "Kiwi", 2.0)]


def test_a_failed_save_leaves_the_previous_version(spark, tmp_path, first):
    dataset = csv_dataset(str(tmp_path / "features.csv"))
    dataset.save(first)
    failing = first.withColumn(
        "pc_1", F.when(F.col("label") == "Kiwi", F.raise_error(F.lit("bad row"))).otherwise(1.0)
    )

    with pytest.raises(DatasetError, match="bad row"):
        dataset.save(failing)

    assert rows(dataset.load()) == [("a.jpg", "Apple", 0.5), ("b.jpg", "Kiwi", -1.25)]
    assert rows(csv_dataset(str(tmp_path / "features.csv")).load()) == rows(first)


def test_a_cut_swap_is_loaded_from_the_previous_version(spark, tmp_path, first):
    dataset = csv_dataset(str(tmp_path / "features.csv"))
    dataset.save(first)
    (tmp_path / "features.csv").rename(tmp_path / ("features.csv" + OLD))

    assert rows(dataset.load()) == rows(first)
    dataset.save(first.limit(0).unionByName(first.filter("label = 'Apple'")))
    assert rows(dataset.load()) == [("a.jpg", "Apple", 0.5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.csv"]


def test_partitioned_saves_keep_their_partitions(spark, tmp_path, first):
    dataset = SwapSparkDataset(
        filepath=str(tmp_path / "quarantine.csv"),
        file_format="csv",
        load_args={"header": True},
        save_args={"header": True, "partitionBy": "label"},
    )

    dataset.save(first)

    assert sorted(p.name for p in (tmp_path / "quarantine.csv").glob("label=*")) == [
        "label=Apple",
        "label=Kiwi",
    ]
    assert sorted((r.path, r.label) for r in dataset.load().collect()) == [
        ("a.jpg", "Apple"),
        ("b.jpg", "Kiwi"),
    ]
