"""The end-of-run hook: the report is written from the saved outputs, or says what is missing."""

from __future__ import annotations

import logging

import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline

from fruits_kedro.run_metrics import RunMetricsHooks, write_report


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
