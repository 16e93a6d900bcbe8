"""Exported models: the artifact folder and the app's model file on any fsspec filesystem."""

from __future__ import annotations

import fsspec
import numpy as np
import pytest
from kedro.io import DatasetError

from fruits_kedro.datasets import BytesDataset, ModelArtifactDataset
from fruits_kedro.model.bundle import load_artifact, save_artifact
from fruits_kedro.model.engines import artifact_of


@pytest.mark.parametrize(
    ("payload", "engine"),
    [
        (b"\x00flatbuffer\xff", "tflite"),
        ([np.arange(6.0).reshape(2, 3), np.ones(4, np.float32)], "keras"),
    ],
)
def test_an_artifact_round_trips_through_a_folder(tmp_path, payload, engine):
    artifact = artifact_of(payload, engine, 96, 1, 4)
    fs = fsspec.filesystem("file")

    save_artifact(fs, str(tmp_path / "a"), artifact)
    loaded = load_artifact(fs, str(tmp_path / "a"))

    assert loaded.fingerprint == artifact.fingerprint
    assert (loaded.engine, loaded.input_size) == (engine, 96)
    if isinstance(payload, bytes):
        assert loaded.payload == payload
    else:
        for ours, theirs in zip(loaded.payload, payload, strict=True):
            np.testing.assert_array_equal(ours, theirs)


def test_saving_replaces_the_previous_model(tmp_path):
    fs = fsspec.filesystem("file")
    folder = str(tmp_path / "m")
    save_artifact(fs, folder, artifact_of([np.zeros(2)], "keras", 96, 1, 1))
    save_artifact(fs, folder, artifact_of(b"tfl", "tflite", 96, 1, 1))

    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["artifact.json", "model.tflite"]
    assert load_artifact(fs, folder).payload == b"tfl"


def test_a_file_dataset_writes_on_a_remote_filesystem_and_empty_bytes_remove_it():
    dataset = BytesDataset(filepath="memory://models/app/model.tflite")
    assert not dataset.exists()
    assert dataset.load() == b""

    dataset.save(b"TFL3 model")
    assert dataset.exists()
    assert dataset.load() == b"TFL3 model"

    dataset.save(b"")  # not exported this time: no stale file is left
    assert not dataset.exists()


def test_a_missing_artifact_folder_is_named():
    artifact = ModelArtifactDataset(filepath="memory://models/nothing-here")
    with pytest.raises(DatasetError, match="memory://models/nothing-here"):
        artifact.load()
