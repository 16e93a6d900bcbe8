"""Reduction pipeline: ``image_embeddings`` -> PCA model, features (Parquet, CSV), variance."""

from kedro.pipeline import Pipeline, node

from fruits_kedro.pipelines.reduction.nodes import (
    fit_pca,
    plot_pca_scatter,
    plot_variance,
    project,
    scatter_points,
    to_csv_rows,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Fit PCA, project every image and report the explained variance."""
    return Pipeline(
        [
            node(
                fit_pca,
                ["image_embeddings", "saved_pca_model", "saved_pca_variance", "params:reduction"],
                ["pca_model", "pca_variance"],
                name="fit_pca",
            ),
            node(project, ["image_embeddings", "pca_model"], "pca_features", name="project_pca"),
            node(
                to_csv_rows,
                ["pca_features", "pca_variance"],
                "pca_features_csv",
                name="export_pca_csv",
            ),
            node(plot_variance, "pca_variance", "pca_variance_plot", name="plot_variance"),
            node(
                scatter_points,
                ["pca_features", "params:reduction"],
                "pca_scatter_points",
                name="pick_scatter_points",
            ),
            node(
                plot_pca_scatter, "pca_scatter_points", "pca_scatter_plot", name="plot_pca_scatter"
            ),
        ],
        namespace="reduction",
        prefix_datasets_with_namespace=False,  # the catalog's names stay
    )
