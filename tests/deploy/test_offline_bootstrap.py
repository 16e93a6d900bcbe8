"""A node with no network at all builds its Python from the packaged artifacts, and it embeds.

``make package`` (here: :func:`build`) writes the wheelhouse of this machine and the converted
TFLite model; ``bootstrap.sh`` then runs in a network namespace of its own (``unshare -n``: no
interface but a loopback that is down), as on an EMR node in a private subnet without NAT. The
environment it builds has no TensorFlow, and runs the embedding pipeline on the 72 real images
as both the driver's and the executors' Python, PySpark coming from the Spark installation (as
EMR provides it).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pyspark
import pytest

from fruits_kedro.deploy.package import build
from fruits_kedro.deploy.wheelhouse import MACHINES
from fruits_kedro.model.engines import TFLiteEngine, artifact_of
from fruits_kedro.model.featurize import featurize
from tests.conftest import PROJECT_ROOT, copy_project, run_command

pytestmark = [pytest.mark.shared, pytest.mark.e2e]
logger = logging.getLogger(__name__)

MACHINE = platform.machine()
MINI_IMAGES = 72
TIMEOUT_S = 300
NO_NETWORK_PROBE = (
    "import socket\n"
    "try:\n"
    "    socket.create_connection(('pypi.org', 443), timeout=5)\n"
    "except OSError as exc:\n"
    "    print(f'no network: {type(exc).__name__}')\n"
    "else:\n"
    "    raise SystemExit('network reachable')\n"
)


def _no_unshare_reason() -> str | None:
    if MACHINE not in MACHINES:
        return f"no wheelhouse for this machine ({MACHINE})"
    if shutil.which("unshare") is None:
        return "needs unshare (util-linux) for a network namespace"
    if os.geteuid() != 0:
        return "needs root for a network namespace (unshare -n)"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        return f"unshare -n refused here: {probe.stderr.decode(errors='replace').strip()}"
    return None


@pytest.fixture(scope="module")
def offline_ready() -> None:
    reason = _no_unshare_reason()
    if reason and os.environ.get("CI"):
        pytest.fail(f"CI must run the offline bootstrap: {reason}")
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def dist(offline_ready, weights_file: Path, tmp_path_factory) -> Path:
    """``make package`` for this machine, the genuine weights converted."""
    folder = tmp_path_factory.mktemp("offline") / "dist"
    build(PROJECT_ROOT, folder, machines=(MACHINE,), weights=str(weights_file))
    return folder


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory) -> tuple[Path, str]:
    """The environment ``bootstrap.sh`` builds in a namespace without network; its output."""
    target = tmp_path_factory.mktemp("offline_venv") / "python"
    script = f'"{sys.executable}" -c "$0" && exec bash "$1/bootstrap.sh" "$1"'
    command = ["unshare", "-n", "bash", "-c", script, NO_NETWORK_PROBE, str(dist)]
    env = {
        **os.environ,
        "FRUITS_ROLE": "executor",
        "FRUITS_VENV": str(target),
        "PIP_NO_CACHE_DIR": "1",  # nothing from this machine's pip cache: only the wheelhouse
    }
    result = run_command(command, None, env, TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return target / "bin" / "python", result.stdout


def test_bootstrap_installs_from_the_wheelhouse_alone(venv, dist: Path, caplog):
    python, output = venv
    caplog.set_level(logging.INFO, logger=__name__)
    logger.info("bootstrap in a namespace without network:\n%s", output)
    lines = output.splitlines()

    assert lines[0].startswith("no network: ")
    assert (
        lines[1] == f"fruits-kedro bootstrap (requirements-executor.txt) on {MACHINE} from {dist}"
    )
    assert lines[2].startswith(f"installing offline from wheelhouse-{MACHINE}.tar (")
    assert lines[-1] == "fruits-kedro ready"
    missing = "import importlib.util as u; print([m for m in {m!r} if u.find_spec(m)])"
    found = run_command(
        [str(python), "-c", missing.format(m=("tensorflow", "keras", "pyspark"))], None, {}, 60
    )
    assert found.stdout.strip() == "[]", found.stderr  # no TensorFlow; PySpark is Spark's own


def test_the_offline_environment_runs_the_embedding(
    venv, dist: Path, mini_dir: Path, tmp_path, caplog
):
    """Driver and executors in the offline-built Python, PySpark from the Spark installation
    (as on EMR): the packaged model, no conversion."""
    python, _ = venv
    spark_home = Path(pyspark.__file__).parent
    spark_python = sorted((spark_home / "python" / "lib").glob("*.zip"))  # pyspark, py4j
    model = dist / "mobilenet_v2_224.tflite"
    project = copy_project(tmp_path / "project")
    command = [str(python), "-m", "kedro", "run", "--env=local", "--pipelines=embedding"]
    command += ["--params", f"input_dir={mini_dir},weights={model}"]
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home),
        "PYTHONPATH": os.pathsep.join(map(str, spark_python)),
        "PYSPARK_PYTHON": str(python),
        "KEDRO_DISABLE_TELEMETRY": "true",
    }

    result = run_command(command, project, env, TIMEOUT_S)

    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert f"TFLite model {model} (224 px), converted when packaged" in log
    data = project / "data"
    reporting = data / "08_reporting"
    counts = json.loads((reporting / "image_counts.json").read_text())
    expected = {"read": MINI_IMAGES, "embedded": MINI_IMAGES, "quarantined": 0, "feature_dim": 1280}
    assert {key: counts.get(key) for key in expected} == expected
    card = json.loads((dist / "mobilenet_v2_224.json").read_text())
    shipped = json.loads((data / "06_models/embedding_model/artifact.json").read_text())
    assert shipped["fingerprint"] == card["fingerprint"]
    caplog.set_level(logging.INFO, logger=__name__)
    logger.info("%s", next(line for line in log.splitlines() if "run complete" in line))
    _assert_features_are_the_models(data / "04_feature", model)


def _assert_features_are_the_models(features_dir: Path, model: Path) -> None:
    """Features of a few images as the offline environment wrote them, against the same
    flatbuffer run here."""
    (table,) = features_dir.glob("image_embeddings*")
    rows = ds.dataset(table, format="parquet").to_table().to_pandas()
    assert len(rows) == MINI_IMAGES and rows["reason"].isna().all()
    some = rows.sort_values("path").head(4)
    contents = [Path(path.removeprefix("file:")).read_bytes() for path in some["path"]]
    engine = TFLiteEngine(artifact_of(model.read_bytes(), "tflite", 224, 1, 8))
    expected, _ = featurize(pd.Series(contents), engine, 224, "bilinear")
    np.testing.assert_allclose(np.stack(some["features"]), np.stack(expected), atol=1e-5)
