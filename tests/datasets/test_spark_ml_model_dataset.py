"""``SparkMLModelDataset``: a fitted Spark ML pipeline, saved beside the previous one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from kedro.io import DatasetError
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import StandardScaler
from pyspark.ml.functions import array_to_vector

from fruits_kedro.datasets import SparkMLModelDataset
from fruits_kedro.datasets.swap import OLD


def scaler(spark, values: list[float]) -> PipelineModel:
    """A one-stage pipeline whose fitted mean is ``mean(values)``."""
    frame = spark.createDataFrame([([v],) for v in values], "x array<double>").select(
        array_to_vector("x").alias("v")
    )
    return Pipeline(stages=[StandardScaler(inputCol="v", outputCol="s", withMean=True)]).fit(frame)


def mean_of(model: PipelineModel) -> float:
    return float(model.stages[0].mean.toArray()[0])


def test_a_second_save_is_the_one_loaded(spark, tmp_path):
    dataset = SparkMLModelDataset(filepath=str(tmp_path / "model"))
    assert not dataset.exists()

    dataset.save(scaler(spark, [1.0, 3.0]))
    dataset.save(scaler(spark, [10.0, 30.0]))

    assert dataset.exists()
    assert mean_of(SparkMLModelDataset(filepath=str(tmp_path / "model")).load()) == 20.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


class HalfWritten:
    """A model whose save is killed after writing part of its folder."""

    def write(self) -> HalfWritten:
        return self

    def save(self, folder: str) -> None:
        Path(folder).mkdir(parents=True)
        (Path(folder) / "metadata").write_text("half")
        raise RuntimeError("killed mid-save")


def test_a_failed_save_keeps_the_previous_model(spark, tmp_path):
    dataset = SparkMLModelDataset(filepath=str(tmp_path / "model"))
    dataset.save(scaler(spark, [1.0, 3.0]))

    with pytest.raises(DatasetError, match="killed mid-save"):
        dataset.save(HalfWritten())  # type: ignore[arg-type]

    assert mean_of(dataset.load()) == 2.0


def test_a_cut_swap_is_loaded_from_the_previous_model(spark, tmp_path):
    dataset = SparkMLModelDataset(filepath=str(tmp_path / "model"))
    dataset.save(scaler(spark, [1.0, 3.0]))
    (tmp_path / "model").rename(tmp_path / ("model" + OLD))

    assert dataset.exists()
    np.testing.assert_allclose(dataset.load().stages[0].mean.toArray(), [2.0])


def test_a_missing_model_names_its_path(spark, tmp_path):
    with pytest.raises(DatasetError, match=r"cannot load Spark ML model from .*absent"):
        SparkMLModelDataset(filepath=str(tmp_path / "absent")).load()
