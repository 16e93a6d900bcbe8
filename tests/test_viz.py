"""kedro-viz: the pipelines' graph builds without Spark, and shows every node."""

from __future__ import annotations

import json

from tests.conftest import copy_project, run_kedro

PIPELINE_NODES = {
    "ingestion": {"label_images"},
    # the image bytes are read once, not persisted: embedding runs the ingestion node too
    "embedding": {
        "label_images",
        "load_model",
        "embed_images",
        "quarantine_images",
        "reconcile_counts",
    },
    "reduction": {
        "fit_pca",
        "project_pca",
        "export_pca_csv",
        "plot_variance",
        "pick_scatter_points",
        "plot_pca_scatter",
    },
    "classification": {
        "train_classifier",
        "evaluate_classifier",
        "sweep_k",
        "plot_confusion_matrix",
        "plot_accuracy_vs_k",
    },
    "export": {"export_predictor"},
}


def test_viz_build_shows_every_pipeline_and_node(tmp_path):
    project = copy_project(tmp_path / "project")

    result = run_kedro(project, "viz", "build", timeout=300)

    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "SparkSession" not in result.stdout + result.stderr
    graph = json.loads((project / "build/api/main").read_text())
    assert {p["id"] for p in graph["pipelines"]} == {"__default__", *PIPELINE_NODES}
    tasks = [n for n in graph["nodes"] if n["type"] == "task"]
    for pipeline, names in PIPELINE_NODES.items():
        assert {n["name"] for n in tasks if pipeline in n["pipelines"]} == names
    assert {n["name"] for n in tasks if "__default__" in n["pipelines"]} == set().union(
        *PIPELINE_NODES.values()
    )
    datasets = {n["name"] for n in graph["nodes"] if n["type"] == "data"}
    assert {
        "raw_images",
        "image_quarantine",
        "image_embeddings",
        "pca_features",
        "pca_features_csv",
        "pca_variance",
        "pca_model",
        "classification_metrics",
        "confusion_matrix_plot",
        "predictor",
    } <= datasets
    assert "run_report" not in datasets  # written when the run ends, from the saved outputs
