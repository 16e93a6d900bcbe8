"""The end-of-run hook: the report is written from the saved outputs, or says what is missing."""

from __future__ import annotations

import logging

import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro_datasets.text import TextDataset

from fruits_kedro.datasets import PlotDataset
from fruits_kedro.observe.run_metrics import (
    EMBEDDING_NODE,
    RunMetricsHooks,
    location,
    save_run_plots,
    summary,
    write_report,
)


def test_no_report_without_its_inputs_and_the_run_still_completes(caplog):
    catalog = DataCatalog(
        {
            "run_report": MemoryDataset(),
            "run_metrics": MemoryDataset(),
            "pca_variance": MemoryDataset({"k": 3}),
        }
    )
    hooks = RunMetricsHooks()
    hooks.before_pipeline_run(catalog)

    with caplog.at_level(logging.INFO):
        hooks.after_pipeline_run(Pipeline([]), catalog)

    assert "run report not written: no image_counts" in caplog.text
    assert not catalog.exists("run_report")
    assert catalog.load("run_metrics")["status"] == "complete"


def test_a_report_that_cannot_be_rendered_marks_the_run_failed():
    inputs = {
        name: MemoryDataset({})
        for name in (
            "image_counts",
            "pca_variance",
            "classification_metrics",
            "confusion_matrix",
            "accuracy_vs_k",
            "pca_variance_plot",
            "pca_scatter_plot",
            "accuracy_vs_k_plot",
            "confusion_matrix_plot",
        )
    }
    catalog = DataCatalog({**inputs, "run_report": MemoryDataset(), "run_metrics": MemoryDataset()})
    hooks = RunMetricsHooks()
    hooks.before_pipeline_run(catalog)

    with pytest.raises(KeyError):
        hooks.after_pipeline_run(Pipeline([]), catalog)

    metrics = catalog.load("run_metrics")
    assert metrics["status"] == "failed"
    assert metrics["error"].startswith("run report: KeyError")


def test_write_report_needs_a_report_dataset(caplog):
    with caplog.at_level(logging.INFO):
        write_report(DataCatalog({}), {})
    assert "run report not written" in caplog.text


def test_the_run_plots_are_drawn_saved_and_read_back_as_png(tmp_path):
    catalog = DataCatalog(
        {
            "node_time_plot": PlotDataset(filepath=str(tmp_path / "node_times.png")),
            "embedding_throughput_plot": PlotDataset(filepath=str(tmp_path / "throughput.png")),
        }
    )
    metrics = {
        "node_wall_time_s": {EMBEDDING_NODE: 6.0, "reduction.fit_pca": 2.0},
        "progress": {
            EMBEDDING_NODE: {"started_s": 1.0, "unit": "images", "samples": [[0, 0], [6, 76]]}
        },
    }

    saved = save_run_plots(catalog, metrics)

    assert set(saved) == {"node_times", "throughput"}
    assert saved["node_times"] == (tmp_path / "node_times.png").read_bytes()
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") for png in saved.values())


def test_no_run_plot_without_its_dataset():
    assert save_run_plots(DataCatalog({}), {"node_wall_time_s": {}}) == {}


def test_the_summary_line_has_counts_time_throughput_and_the_report():
    metrics = {
        "wall_time_s": 76.94,
        "images": {
            "read": 76,
            "embedded": 12,
            "reused": 60,
            "quarantined": 4,
            "feature_dim": 1280,
        },
        "embedding_images_per_s": 5.91,
    }
    assert summary(metrics, "data/08_reporting/run_report.html") == (
        "run complete in 76.9 s: 76 images read, 12 embedded, 60 reused, 4 quarantined,"
        " embedding 5.9 images/s; report: data/08_reporting/run_report.html"
    )
    assert summary({"wall_time_s": 1.0, "images": {}}, None) == (
        "run complete in 1.0 s: no images embedded; report: not written"
    )


def test_the_report_location_is_a_path_or_a_url(tmp_path):
    catalog = DataCatalog(
        {
            "local": TextDataset(filepath=str(tmp_path / "run_report.html")),
            "remote": TextDataset(filepath="s3://bucket/fruits/run_report.html"),
            "memory": MemoryDataset(),
        }
    )
    assert location(catalog, "local") == str(tmp_path / "run_report.html")
    assert location(catalog, "remote") == "s3://bucket/fruits/run_report.html"
    assert location(catalog, "memory") is None
    assert location(catalog, "missing") is None
