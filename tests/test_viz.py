"""kedro-viz: the pipelines' graph builds without Spark, and shows every node."""

from __future__ import annotations

import json

from tests.conftest import copy_project, run_kedro

PIPELINE_NODES = {
    "ingestion": {"ingestion.label_images"},
    # the listing is not persisted: embedding runs the ingestion node too
    "embedding": {
        "ingestion.label_images",
        "embedding.load_model",
        "embedding.embed_images",
        "embedding.select_embeddings",
        "embedding.quarantine_images",
        "embedding.reconcile_counts",
    },
    "reduction": {
        "reduction.fit_pca",
        "reduction.project_pca",
        "reduction.export_pca_csv",
        "reduction.plot_variance",
        "reduction.pick_scatter_points",
        "reduction.plot_pca_scatter",
    },
    "classification": {
        "classification.select_head",
        "classification.head_inputs",
        "classification.train_classifier",
        "classification.evaluate_classifier",
        "classification.sweep_k",
        "classification.plot_confusion_matrix",
        "classification.plot_accuracy_vs_k",
    },
    # the app models are checked on the held-out images: export runs the listing too
    "export": {
        "ingestion.label_images",
        "export.app_backbones",
        "export.export_app_models",
        "export.evaluate_app_models",
        "export.model_card",
    },
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
        assert {n["full_name"] for n in tasks if pipeline in n["pipelines"]} == names
    assert {n["full_name"] for n in tasks if "__default__" in n["pipelines"]} == set().union(
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
        "app_model",
        "app_model_int8",
        "model_card",
    } <= datasets
    assert "run_report" not in datasets  # written when the run ends, from the saved outputs
    # each stage is a namespace: a group of its own nodes in kedro-viz
    groups = {n["name"] for n in graph["nodes"] if n["type"] == "modularPipeline"}
    assert groups == set(PIPELINE_NODES)
    for task in tasks:
        assert task["modular_pipelines"] == [task["full_name"].split(".")[0]]
    # layers band the datasets, in the data's order
    layers = {n["name"]: n["layer"] for n in graph["nodes"] if n["type"] == "data"}
    assert layers["raw_images"] == "raw"
    assert layers["image_embeddings"] == "feature"
    assert layers["classifier_model"] == "models"
    assert None not in layers.values()
    assert graph["layers"][0] == "raw"
    assert graph["layers"].index("feature") < graph["layers"].index("reporting")
