"""``fruits-predict``: one JSON line per photo from the app model file a real run exported."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from typing import TYPE_CHECKING

import pytest

from fruits_kedro.tools.predict import main
from tests.conftest import read_delta

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from tests.conftest import MiniRun

pytestmark = [pytest.mark.shared, pytest.mark.e2e]

APP_FILE = "06_models/app/fruits_classifier.tflite"


def predict(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fruits_kedro.tools.predict", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def spark_predictions(mini_run: MiniRun) -> pd.DataFrame:
    """The pipeline's own predictions for the test split, by local path."""
    table = read_delta(mini_run.data / "07_model_output/test_predictions")
    table["local_path"] = table["path"].str.removeprefix("file:")
    return table.sort_values("local_path", ignore_index=True)


def test_the_console_script_is_installed():
    scripts = {e.name: e.value for e in metadata.entry_points(group="console_scripts")}
    assert scripts["fruits-predict"] == "fruits_kedro.tools.predict:main"


def test_top_labels_match_the_spark_pipeline(mini_run, spark_predictions, tmp_path):
    chosen = spark_predictions.groupby("label").head(1).head(3)
    missing = tmp_path / "missing.jpg"
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo")
    model = mini_run.data / APP_FILE

    result = predict(*chosen["local_path"], missing, text, "--model", model, "--repeat", "2")

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["path"] for line in lines] == [*chosen["local_path"], str(missing), str(text)]
    for line, (_, row) in zip(lines, chosen.iterrows(), strict=False):
        assert len(line["top"]) == 3
        assert line["top"][0]["label"] == row["predicted_label"]
        assert line["top"][0]["probability"] == pytest.approx(row["confidence"], abs=1e-3)
        probabilities = [t["probability"] for t in line["top"]]
        assert probabilities == sorted(probabilities, reverse=True)
    assert lines[3] == {"path": str(missing), "error": "file not found"}
    assert lines[4]["error"].startswith("not an image")
    assert "model loaded in" in result.stderr
    assert "after warm-up" in result.stderr


def test_every_image_failing_exits_non_zero(mini_run, tmp_path):
    result = predict(tmp_path / "nothing.jpg", "--model", mini_run.data / APP_FILE)

    assert result.returncode == 1
    assert json.loads(result.stdout) == {
        "path": str(tmp_path / "nothing.jpg"),
        "error": "file not found",
    }


def test_a_missing_model_says_how_to_make_one(tmp_path):
    result = predict(tmp_path / "a.jpg", "--model", tmp_path / "no-model.tflite")

    assert result.returncode == 2
    assert "no model at" in result.stderr
    assert "kedro run" in result.stderr
    assert result.stdout == ""


def test_main_in_process_prints_one_line_per_image(mini_run, spark_predictions, capsys):
    image = spark_predictions["local_path"].iloc[0]

    status = main([image, "--model", str(mini_run.data / APP_FILE), "--top", "2"])

    out, err = capsys.readouterr()
    assert status == 0
    # in-process, logging may already go to stdout (a Kedro session of another test)
    (line,) = [json.loads(text) for text in out.splitlines() if text.startswith("{")]
    assert line["top"][0]["label"] == spark_predictions["predicted_label"].iloc[0]
    assert len(line["top"]) == 2
    assert "model loaded in" in err


def test_the_int8_file_runs_from_the_project_folder(mini_run, spark_predictions):
    images = spark_predictions["local_path"].head(4).tolist()

    result = subprocess.run(
        [sys.executable, "-m", "fruits_kedro.tools.predict", *images, "--int8", "--top", "1"],
        cwd=mini_run.project,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    agreed = [
        line["top"][0]["label"] == label
        for line, label in zip(lines, spark_predictions["predicted_label"], strict=False)
    ]
    assert len(lines) == 4 and sum(agreed) >= 3  # int8 features are close to fp32's, not equal
