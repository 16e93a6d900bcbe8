"""``PreviousDataset``: an earlier run's output, or ``None`` before there is one."""

from __future__ import annotations

import pytest
import yaml
from kedro.io import DataCatalog, DatasetError
from pyspark.ml import Pipeline
from pyspark.ml.feature import StandardScaler
from pyspark.ml.functions import array_to_vector

from fruits_kedro.datasets import PreviousDataset
from tests.conftest import PROJECT_ROOT


def json_previous(filepath: str) -> PreviousDataset:
    return PreviousDataset(dataset={"type": "json.JSONDataset", "filepath": filepath})


def test_nothing_saved_yet_loads_none(tmp_path):
    assert json_previous(str(tmp_path / "variance.json")).load() is None


def test_what_was_saved_is_loaded(tmp_path):
    (tmp_path / "variance.json").write_text('{"k": 3, "total_explained_variance": 0.9}')

    loaded = json_previous(str(tmp_path / "variance.json")).load()

    assert loaded == {"k": 3, "total_explained_variance": 0.9}


def test_it_is_read_only(tmp_path):
    with pytest.raises(DatasetError, match="read-only"):
        json_previous(str(tmp_path / "variance.json")).save({"k": 1})


def test_the_catalogs_saved_models_are_what_the_last_run_wrote(spark, tmp_path):
    """The project's entries: ``saved_pca_model`` and ``saved_pca_variance`` read back what
    ``pca_model`` and ``pca_variance`` saved, and are ``None`` on a first run."""
    text = (PROJECT_ROOT / "conf/base/catalog.yml").read_text()
    entries = yaml.safe_load(text.replace("${globals:data_root}", str(tmp_path)))
    names = ["pca_model", "saved_pca_model", "pca_variance", "saved_pca_variance"]
    catalog = DataCatalog.from_config({name: entries[name] for name in names})
    assert catalog.load("saved_pca_model") is None
    assert catalog.load("saved_pca_variance") is None
    frame = spark.createDataFrame([([1.0],), ([3.0],)], "x array<double>").select(
        array_to_vector("x").alias("v")
    )
    model = Pipeline(stages=[StandardScaler(inputCol="v", outputCol="s", withMean=True)]).fit(frame)

    catalog.save("pca_model", model)
    catalog.save("pca_variance", {"k": 1})

    assert catalog.load("saved_pca_model").stages[0].mean.toArray().tolist() == [2.0]
    assert catalog.load("saved_pca_variance") == {"k": 1}
