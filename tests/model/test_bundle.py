"""Exported models: the artifact and predictor folders round-trip on any fsspec filesystem."""

from __future__ import annotations

import fsspec
import numpy as np
import pytest
from kedro.io import DatasetError

from fruits_kedro.datasets import ModelArtifactDataset, PredictorDataset
from fruits_kedro.model.bundle import load_artifact, load_predictor, save_artifact, save_predictor
from fruits_kedro.model.engines import artifact_of
from fruits_kedro.model.predictor import Dense, Predictor


def make_predictor(payload: bytes | list[np.ndarray], engine: str) -> Predictor:
    rng = np.random.default_rng(0)
    return Predictor(
        artifact=artifact_of(payload, engine, 96, 1, 4),
        resample="bicubic",
        pca_mean=rng.normal(size=8),
        pca_components=rng.normal(size=(8, 3)),
        scaler_mean=rng.normal(size=3),
        scaler_std=np.array([1.0, 0.0, 2.0]),  # a constant component
        layers=(
            Dense(rng.normal(size=(3, 4)), rng.normal(size=4)),
            Dense(rng.normal(size=(4, 2)), rng.normal(size=2)),
        ),
        labels=("Apple", "Kiwi"),
        info={"accuracy": 0.99},
    )


@pytest.mark.parametrize(
    ("payload", "engine"),
    [
        (b"\x00flatbuffer\xff", "tflite"),
        ([np.arange(6.0).reshape(2, 3), np.ones(4, np.float32)], "keras"),
    ],
)
def test_predictor_round_trips_through_a_folder(tmp_path, payload, engine):
    predictor = make_predictor(payload, engine)
    fs = fsspec.filesystem("file")

    save_predictor(fs, str(tmp_path / "p"), predictor)
    loaded = load_predictor(fs, str(tmp_path / "p"))

    assert loaded.artifact.fingerprint == predictor.artifact.fingerprint
    assert (loaded.artifact.engine, loaded.artifact.input_size) == (engine, 96)
    if isinstance(payload, bytes):
        assert loaded.artifact.payload == payload
    else:
        for ours, theirs in zip(loaded.artifact.payload, payload, strict=True):
            np.testing.assert_array_equal(ours, theirs)
    assert loaded.labels == ("Apple", "Kiwi")
    assert loaded.resample == "bicubic"
    assert loaded.info == {"accuracy": 0.99}
    features = np.random.default_rng(1).normal(size=(5, 8)).astype(np.float32)
    np.testing.assert_allclose(loaded.probabilities(features), predictor.probabilities(features))


def test_probabilities_are_a_softmax_and_ignore_constant_components():
    predictor = make_predictor(b"x", "tflite")
    features = np.random.default_rng(2).normal(size=(4, 8)).astype(np.float32)

    probabilities = predictor.probabilities(features)

    assert probabilities.shape == (4, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    top = predictor.top(probabilities[0], 5)
    best_first = np.argsort(-probabilities[0])
    assert [t["label"] for t in top] == [predictor.labels[i] for i in best_first]
    assert len(top) == 2


def test_saving_replaces_the_previous_model(tmp_path):
    fs = fsspec.filesystem("file")
    folder = str(tmp_path / "m")
    save_artifact(fs, folder, artifact_of([np.zeros(2)], "keras", 96, 1, 1))
    save_artifact(fs, folder, artifact_of(b"tfl", "tflite", 96, 1, 1))

    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["artifact.json", "model.tflite"]
    assert load_artifact(fs, folder).payload == b"tfl"


def test_datasets_work_on_a_remote_filesystem_and_name_a_missing_folder():
    dataset = PredictorDataset(filepath="memory://models/predictor")
    assert not dataset.exists()
    dataset.save(make_predictor(b"tfl", "tflite"))
    assert dataset.exists()
    assert dataset.load().labels == ("Apple", "Kiwi")

    artifact = ModelArtifactDataset(filepath="memory://models/nothing-here")
    with pytest.raises(DatasetError, match="memory://models/nothing-here"):
        artifact.load()
