"""The TFLite model converted when packaging: the same artifact as a run's own conversion, loaded
by the embedding stage without TensorFlow, and where the emr environment finds it."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
import yaml
from kedro.config import OmegaConfigLoader

from fruits_kedro import settings
from fruits_kedro.deploy import converted_model
from fruits_kedro.model import cache as model_cache
from fruits_kedro.model.engines import artifact_of
from fruits_kedro.pipelines.embedding.nodes import load_model
from tests.conftest import PROJECT_ROOT

if TYPE_CHECKING:
    from pathlib import Path

SIZE = 32  # the input of the random weights of conftest: a conversion of a few seconds
IMAGE = {"input_size": SIZE, "resample": "bilinear"}


def embedding_params(weights: str, engine: str = "tflite") -> dict[str, object]:
    return {
        "weights": weights,
        "engine": engine,
        "threads_per_worker": 1,
        "batch_size": 8,
        "model_cache": None,
    }


@pytest.fixture(scope="module")
def packaged(random_weights: Path, tmp_path_factory) -> tuple[Path, dict]:
    """``mobilenet_v2_32.tflite`` and its description, as ``make package`` writes them."""
    dist = tmp_path_factory.mktemp("dist")
    model, card = converted_model.write(str(random_weights), SIZE, dist, None)
    assert (model.name, card.name) == ("mobilenet_v2_32.tflite", "mobilenet_v2_32.json")
    return model, json.loads(card.read_text())


def test_the_packaged_model_is_the_artifact_a_run_converts(packaged, random_weights):
    """Same bytes, same fingerprint: converted on the spot or read from the packaged file."""
    model, card = packaged

    from_file = load_model(None, IMAGE, embedding_params(str(model)))
    on_the_spot = load_model(None, IMAGE, embedding_params(str(random_weights)))

    assert from_file.payload == model.read_bytes() == on_the_spot.payload
    assert from_file.fingerprint == on_the_spot.fingerprint == card["fingerprint"]
    assert (from_file.engine, from_file.input_size, from_file.batch_size) == ("tflite", SIZE, 8)
    assert card["weights_sha256"] == hashlib.sha256(random_weights.read_bytes()).hexdigest()
    assert card["tflite_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert (card["engine"], card["input_size"]) == ("tflite", SIZE)


def test_the_packaged_model_loads_without_tensorflow(packaged):
    """What a cluster node runs: ``load_model`` in a fresh process never imports TensorFlow."""
    model, card = packaged
    script = (
        "import sys; from fruits_kedro.pipelines.embedding.nodes import load_model; "
        f"a = load_model(None, {IMAGE!r}, {embedding_params(str(model))!r}); "
        "print(a.fingerprint, sorted({'tensorflow', 'keras'} & set(sys.modules)))"
    )

    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )

    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == [card["fingerprint"], "[]"]


def test_a_packaged_model_must_fit_the_engine_and_the_input_size(packaged, tmp_path):
    model, _ = packaged
    with pytest.raises(ValueError, match=r"embedding\.engine to 'tflite' \(not 'keras'\)"):
        model_cache.read_converted(str(model), "keras", SIZE)
    with pytest.raises(ValueError, match=r"takes 32 px images but image\.input_size is 224"):
        model_cache.read_converted(str(model), "tflite", 224)
    with pytest.raises(FileNotFoundError, match=r"converted model not found: .*absent\.tflite"):
        model_cache.read_converted(str(tmp_path / "absent.tflite"), "tflite", SIZE)
    assert model_cache.read_converted("imagenet", "tflite", SIZE) is None


def test_packaging_reuses_the_model_cache_of_local_runs(random_weights, tmp_path, monkeypatch):
    cache, source = str(tmp_path / "cache"), str(random_weights)
    key = model_cache.cache_key(source, SIZE)
    conversions: list[str] = []

    def export(weights, engine, input_size, threads, batch_size):
        conversions.append(engine)
        return artifact_of(b"flatbuffer", engine, input_size, threads, batch_size)

    monkeypatch.setattr(converted_model, "export_artifact", export)
    monkeypatch.setattr(converted_model, "load_weights", lambda source, size: [])

    first = converted_model.convert(source, SIZE, cache)
    again = converted_model.convert(source, SIZE, cache)

    assert first == again == model_cache.read(cache, key) == b"flatbuffer"
    assert conversions == ["tflite"]  # once: the second came from the cache


def load_parameters(env: str) -> dict:
    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), env=env, **settings.CONFIG_LOADER_ARGS)
    return dict(loader["parameters"])


def test_emr_runs_the_packaged_model_from_the_artifacts_prefix():
    emr, base = load_parameters("emr")["embedding"], load_parameters("base")["embedding"]
    cluster = yaml.safe_load((PROJECT_ROOT / "conf" / "emr" / "cluster.yml").read_text())
    name = f"{converted_model.model_name(224)}.tflite"

    prefix = cluster["artifacts_prefix"].strip("/")
    assert emr["weights"] == f"s3://fruits-results-bucket/fruits-kedro/{prefix}/{name}"
    assert emr["engine"] == "tflite"
    assert {k: v for k, v in emr.items() if k != "weights"} == {
        k: v for k, v in base.items() if k != "weights"
    }
