"""Reporting pipeline: counts, throughput, variance, accuracy and plots on one HTML page."""

from kedro.pipeline import Pipeline, node

from fruits_kedro.pipelines.reporting.nodes import write_report


def create_pipeline(**kwargs) -> Pipeline:
    """Write the run report."""
    return Pipeline(
        [
            node(
                write_report,
                [
                    "image_counts",
                    "run_metrics",
                    "pca_variance",
                    "pca_scatter_points",
                    "classification_metrics",
                    "confusion_matrix",
                    "accuracy_vs_k",
                ],
                "run_report",
                name="write_report",
            )
        ]
    )
