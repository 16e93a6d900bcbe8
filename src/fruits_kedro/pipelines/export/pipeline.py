"""Export pipeline: ``model_artifact``, ``pca_model``, ``classifier_model`` -> ``predictor``."""

from kedro.pipeline import Pipeline, node

from fruits_kedro.pipelines.export.nodes import export_predictor


def create_pipeline(**kwargs) -> Pipeline:
    """Bundle what ``fruits-predict`` runs, as plain arrays."""
    return Pipeline(
        [
            node(
                export_predictor,
                [
                    "model_artifact",
                    "pca_model",
                    "classifier_model",
                    "params:image",
                    "classification_metrics",
                ],
                "predictor",
                name="export_predictor",
            )
        ],
        namespace="export",
        prefix_datasets_with_namespace=False,  # the catalog's names stay
    )
