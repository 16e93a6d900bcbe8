"""The default pipeline through Kedro's session API, on small images made here."""

from __future__ import annotations

import json

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from fruits_kedro.datasets import SparkMLModelDataset
from tests.conftest import copy_project, first_run_counts, read_delta, write_images


def test_default_pipeline_runs_in_a_session(tmp_path, random_weights, spark):
    images = write_images(tmp_path / "images", classes=3, per_split=3)
    (tmp_path / "images/Test/Fruit 0/broken.jpg").write_bytes(b"nope")
    project = copy_project(tmp_path / "project")
    bootstrap_project(project)
    params = {
        "input_dir": str(tmp_path / "images"),
        "weights": str(random_weights),
        "image": {"input_size": 32},
        "embedding": {"engine": "keras"},
        "reduction": {"k": 4},
    }

    session = KedroSession.create(project_path=project, env="local", runtime_params=params)
    try:
        session.run()
    finally:
        session.close()

    data = project / "data"
    metrics = json.loads((data / "08_reporting/run_metrics.json").read_text())
    assert metrics["images"] == first_run_counts(images, 1)
    assert metrics["embedding_images_per_s"] > 0
    features = read_delta(data / "07_model_output/pca_features")
    assert features["pca"].map(len).eq(4).all()
    assert len(features) == images
    model = SparkMLModelDataset(filepath=str(data / "06_models/pca_model")).load()
    assert model.stages[-1].getK() == 4
